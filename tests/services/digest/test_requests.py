"""Digests asked for through the API: built, stored, announced, and their request finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from tests.kafka_helpers import read_topic
from tests.services.digest.test_lore import BEFORE, WEEK

from pepite_contracts import (
    DigestPublished,
    DigestRequest,
    DigestRequested,
    Event,
    Topic,
    community_key,
    decode_event,
    deterministic_event_id,
)
from pepite_digest.handlers import DigestRequestHandler
from pepite_digest.requests_repository import DigestRequestRepository
from pepite_digest.service import DigestService
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics, event_loop_for

REQUESTED_AT = datetime(2024, 5, 20, 8, tzinfo=UTC)


def requested(request_id: str, first: date, last: date) -> DigestRequested:
    return DigestRequested(
        community_id="acme",
        payload=DigestRequest(
            request_id=request_id, first=first, last=last, requested_at=REQUESTED_AT
        ),
    )


async def pending(db: Database, event: DigestRequested) -> None:
    """As the API writes it."""
    request = event.payload
    await db["digest_requests"].insert_one(
        {
            "_id": request.request_id,
            "community_id": event.community_id,
            "first": request.first.isoformat(),
            "last": request.last.isoformat(),
            "status": "pending",
            "requested_at": REQUESTED_AT,
        }
    )


async def request_doc(db: Database, request_id: str) -> dict[str, Any]:
    doc = await db["digest_requests"].find_one({"_id": request_id})
    assert doc is not None
    return doc


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names([Topic.NOTIFICATIONS]))
    async with EventPublisher(kafka_settings, client_id="test-digest-requests") as events:
        yield events


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await mongo_db["communities"].insert_one(
        {"_id": "acme", "name": "Acme Users", "timezone": "Europe/Paris"}
    )
    await mongo_db["messages"].insert_many([*BEFORE, *WEEK])
    return mongo_db


@pytest.fixture
def handler(
    db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> DigestRequestHandler:
    return DigestRequestHandler(
        DigestService(db),
        DigestRequestRepository(db),
        publisher,
        notifications_topic=kafka_settings.topic_name(Topic.NOTIFICATIONS),
    )


async def test_a_requested_week_is_built_stored_announced_and_done(
    db: Database, handler: DigestRequestHandler, kafka_settings: KafkaSettings
) -> None:
    week = requested("r-week", date(2024, 5, 6), date(2024, 5, 12))
    await pending(db, week)
    await handler([week])

    doc = await request_doc(db, "r-week")
    assert (doc["status"], doc["digest_id"], doc["error"]) == (
        "done",
        "acme:2024-05-06:2024-05-12",
        None,
    )
    assert doc["requested_at"] == REQUESTED_AT
    stored = await db["digests"].find_one({"_id": "acme:2024-05-06:2024-05-12"})
    assert stored is not None
    assert stored["period_start"] == datetime(2024, 5, 5, 22, tzinfo=UTC)

    # A replayed event finds the request done: nothing is built or announced again.
    await db["digests"].delete_many({})
    await handler([week])
    assert await db["digests"].count_documents({}) == 0

    topic = kafka_settings.topic_name(Topic.NOTIFICATIONS)
    events = [decode_event(value) for value in await read_topic(kafka_settings, topic)]
    assert len(events) == 1
    [event] = events
    assert isinstance(event, DigestPublished)
    assert event.community_id == "acme"
    assert event.payload.digest_id == "acme:2024-05-06:2024-05-12"
    assert event.event_id == deterministic_event_id(
        "digest.published", "acme:2024-05-06:2024-05-12", "r-week"
    )


async def test_an_empty_period_and_a_reversed_one_end_the_request_not_the_consumer(
    db: Database, handler: DigestRequestHandler
) -> None:
    quiet = requested("r-quiet", date(2023, 1, 2), date(2023, 1, 8))
    reversed_period = requested("r-reversed", date(2024, 5, 12), date(2024, 5, 6))
    await pending(db, quiet)
    await pending(db, reversed_period)
    await handler([quiet, reversed_period])

    empty = await request_doc(db, "r-quiet")
    assert (empty["status"], empty["digest_id"]) == ("empty", None)
    assert "no messages" in empty["error"]
    failed = await request_doc(db, "r-reversed")
    assert (failed["status"], failed["digest_id"]) == ("failed", None)
    assert "before it starts" in failed["error"]
    assert await db["digests"].count_documents({}) == 0


async def test_a_request_whose_document_is_missing_is_recorded_from_its_event(
    db: Database, handler: DigestRequestHandler
) -> None:
    week = requested("r-lost", date(2024, 5, 6), date(2024, 5, 12))
    await handler([week])
    doc = await request_doc(db, "r-lost")
    assert (doc["status"], doc["community_id"], doc["first"], doc["last"]) == (
        "done",
        "acme",
        "2024-05-06",
        "2024-05-12",
    )


async def test_the_consumer_loop_finishes_requests_read_from_the_topic(
    db: Database,
    handler: DigestRequestHandler,
    publisher: EventPublisher,
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.topic_name(Topic.DIGEST_REQUESTS)
    await ensure_topics(kafka_settings, kafka_settings.topic_names([Topic.DIGEST_REQUESTS]))
    week = requested("r-topic", date(2024, 5, 6), date(2024, 5, 12))
    reversed_period = requested("r-topic-bad", date(2024, 5, 12), date(2024, 5, 6))
    for event in (reversed_period, week):
        await pending(db, event)
        await publisher.publish(topic, event, key=community_key("acme"))
    await publisher.flush()

    both_finished = asyncio.Event()

    async def handle(events: Sequence[Event]) -> None:
        await handler(events)
        if not await db["digest_requests"].count_documents({"status": "pending"}):
            both_finished.set()

    loop = event_loop_for(
        name="digest-requests",
        settings=kafka_settings,
        group_id=f"{kafka_settings.kafka_topic_prefix}digest-requests",
        handlers={topic: handle},
        publisher=publisher,
    )
    running = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(both_finished.wait(), timeout=20)
    finally:
        loop.stop()
        await running
    assert (await request_doc(db, "r-topic"))["status"] == "done"
    assert (await request_doc(db, "r-topic-bad"))["status"] == "failed"
