"""The consumer loop against a real broker and MongoDB."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import UpdateOne
from pymongo.errors import AutoReconnect

from pepite_contracts import (
    ChannelRef,
    Event,
    Member,
    MessageIngested,
    NormalizedMessage,
    Platform,
    Topic,
    encode_event,
    partition_key,
    stable_id,
)
from pepite_kit import ConsumerLoop, Database, EventPublisher, KafkaSettings, ensure_topics
from pepite_kit.consumer import LoopState, event_loop_for

pytestmark = pytest.mark.asyncio

COMMUNITY = "acme"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def message_event(n: int, text: str | None = None) -> MessageIngested:
    message = NormalizedMessage(
        id=stable_id("discord", COMMUNITY, str(n)),
        platform=Platform.DISCORD,
        community_id=COMMUNITY,
        native_id=str(n),
        channel=ChannelRef(id="c1", name="general"),
        author=Member(id=stable_id("discord", COMMUNITY, "u1"), native_id="u1", name="ann"),
        text=text if text is not None else f"message {n}",
        created_at=T0 + timedelta(seconds=n),
    )
    return MessageIngested(community_id=COMMUNITY, payload=message)


class StoreHandler:
    """Upserts each message by id, the way real handlers write."""

    def __init__(self, db: Database, *, fail_on_text: str | None = None) -> None:
        self.db = db
        self.fail_on_text = fail_on_text
        self.calls = 0
        self.transient_failures_left = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.transient_failures_left > 0:
            self.transient_failures_left -= 1
            raise AutoReconnect("mongodb went away")
        for event in events:
            assert isinstance(event, MessageIngested)
            if self.fail_on_text is not None and event.payload.text == self.fail_on_text:
                raise ValueError(f"cannot handle message {event.payload.id}")
        await self.db["messages"].bulk_write(
            [
                UpdateOne({"_id": e.payload.id}, {"$set": {"text": e.payload.text}}, upsert=True)
                for e in events
                if isinstance(e, MessageIngested)
            ]
        )


async def produce(settings: KafkaSettings, records: Sequence[bytes]) -> None:
    await ensure_topics(
        settings, settings.topic_names([Topic.MESSAGES_RAW, Topic.MESSAGES_RAW.dlq])
    )
    async with EventPublisher(settings) as publisher:
        for value in records:
            await publisher.send(
                settings.topic_name(Topic.MESSAGES_RAW), value, key=partition_key(COMMUNITY, "c1")
            )


def make_loop(
    settings: KafkaSettings, publisher: EventPublisher, handler: StoreHandler, group: str
) -> ConsumerLoop[Event]:
    return event_loop_for(
        name="test",
        settings=settings,
        # The test's own group: a group shared with tests running elsewhere on the broker
        # rebalances with their members.
        group_id=f"{settings.kafka_topic_prefix}{group}",
        handlers={settings.topic_name(Topic.MESSAGES_RAW): handler},
        publisher=publisher,
    )


async def run_until(
    loop: ConsumerLoop[Event], condition: Callable[[], Awaitable[bool]], within_s: float = 30.0
) -> None:
    """Run the loop until ``condition`` holds, then stop it gracefully."""
    task = asyncio.create_task(loop.run())
    try:
        deadline = asyncio.get_running_loop().time() + within_s
        while not await condition():
            if task.done():
                task.result()
                raise AssertionError("loop ended early")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.1)
    finally:
        loop.stop()
        await asyncio.wait_for(task, timeout=30)


async def read_dlq(settings: KafkaSettings, expected: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        settings.topic_name(Topic.MESSAGES_RAW.dlq),
        bootstrap_servers=settings.kafka_bootstrap,
        # No group: the reader takes every partition at once, without a group join.
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend((r.value or b"", dict(r.headers)) for r in records)
        # Give a stray extra record a chance to show up.
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            found.extend((r.value or b"", dict(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return found


async def test_batches_are_stored_and_committed(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    await produce(kafka_settings, [encode_event(message_event(n)) for n in range(500)])
    handler = StoreHandler(mongo_db)
    async with EventPublisher(kafka_settings) as publisher:
        loop = make_loop(kafka_settings, publisher, handler, "g1")

        async def all_stored() -> bool:
            return await mongo_db["messages"].count_documents({}) == 500

        await run_until(loop, all_stored)
        assert loop.state is LoopState.STOPPED

        # Same group again: offsets were committed, nothing is handed over a second time.
        second = StoreHandler(mongo_db)
        again = make_loop(kafka_settings, publisher, second, "g1")
        task = asyncio.create_task(again.run())
        await asyncio.sleep(3)
        again.stop()
        await task
        assert second.calls == 0


async def test_poison_records_go_to_the_dlq_and_the_loop_keeps_going(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    not_json = b"\x00\x01 definitely not json"
    wrong_shape = b'{"type": "message.ingested", "community_id": "acme", "payload": {"id": 3}}'
    await produce(
        kafka_settings,
        [encode_event(message_event(1)), not_json, wrong_shape, encode_event(message_event(2))],
    )
    handler = StoreHandler(mongo_db)
    async with EventPublisher(kafka_settings) as publisher:
        loop = make_loop(kafka_settings, publisher, handler, "g1")

        async def good_stored() -> bool:
            return await mongo_db["messages"].count_documents({}) == 2

        await run_until(loop, good_stored)

    dead = await read_dlq(kafka_settings, 2)
    assert sorted(value for value, _ in dead) == sorted([not_json, wrong_shape])
    for _, headers in dead:
        assert headers["pepite-dlq-stage"] == b"decode"
        assert (
            headers["pepite-dlq-source-topic"] == kafka_settings.topic_name("messages.raw").encode()
        )
        assert b"ValidationError" in headers["pepite-dlq-error"]


async def test_a_record_the_handler_rejects_is_isolated_and_dead_lettered(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    events = [message_event(n) for n in range(20)]
    events[7] = message_event(7, text="boom")
    await produce(kafka_settings, [encode_event(e) for e in events])
    handler = StoreHandler(mongo_db, fail_on_text="boom")
    async with EventPublisher(kafka_settings) as publisher:
        loop = make_loop(kafka_settings, publisher, handler, "g1")

        async def others_stored() -> bool:
            return await mongo_db["messages"].count_documents({}) == 19

        await run_until(loop, others_stored)

    dead = await read_dlq(kafka_settings, 1)
    assert len(dead) == 1
    value, headers = dead[0]
    assert value == encode_event(events[7])
    assert headers["pepite-dlq-stage"] == b"handler"
    assert b"cannot handle message discord:acme:7" in headers["pepite-dlq-error"]
    assert await mongo_db["messages"].find_one({"_id": "discord:acme:7"}) is None


async def test_infrastructure_failures_are_retried_not_dead_lettered(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    await produce(kafka_settings, [encode_event(message_event(n)) for n in range(10)])
    handler = StoreHandler(mongo_db)
    # More transient failures than the handler's attempt budget: must still not dead-letter.
    handler.transient_failures_left = kafka_settings.kafka_handler_attempts + 3
    async with EventPublisher(kafka_settings) as publisher:
        loop = make_loop(kafka_settings, publisher, handler, "g1")

        async def stored() -> bool:
            return await mongo_db["messages"].count_documents({}) == 10

        await run_until(loop, stored)
    assert await read_dlq(kafka_settings, 0) == []


async def test_stop_during_an_outage_releases_the_batch_uncommitted(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    await produce(kafka_settings, [encode_event(message_event(n)) for n in range(5)])
    down = StoreHandler(mongo_db)
    down.transient_failures_left = 10**6
    async with EventPublisher(kafka_settings) as publisher:
        loop = make_loop(kafka_settings, publisher, down, "g1")

        async def tried() -> bool:
            return down.calls >= 2

        await run_until(loop, tried)
        assert loop.state is LoopState.STOPPED
        assert await mongo_db["messages"].count_documents({}) == 0

        # The batch was not committed: the next consumer of the group gets it again.
        up = StoreHandler(mongo_db)
        again = make_loop(kafka_settings, publisher, up, "g1")

        async def stored() -> bool:
            return await mongo_db["messages"].count_documents({}) == 5

        await run_until(again, stored)
