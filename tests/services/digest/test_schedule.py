"""Weekly digests go out on each community's schedule, once, announced on Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from tests.kafka_helpers import read_topic
from tests.services.digest.test_lore import BEFORE, WEEK

from pepite_contracts import DigestPublished, Topic, decode_event
from pepite_digest.schedule import DigestScheduler, Schedule, due_week
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)  # type: ignore[misc]


def test_the_week_due_is_the_one_before_the_latest_scheduled_moment() -> None:
    monday_nine = Schedule("acme", "Europe/Paris", weekday=0, hour=9)
    assert due_week(paris(2024, 5, 13, 8, 59), monday_nine) == (date(2024, 4, 29), date(2024, 5, 5))
    assert due_week(paris(2024, 5, 13, 9, 0), monday_nine) == (date(2024, 5, 6), date(2024, 5, 12))
    assert due_week(paris(2024, 5, 16, 15, 0), monday_nine) == (date(2024, 5, 6), date(2024, 5, 12))
    friday_five = Schedule("acme", "America/New_York", weekday=4, hour=17)
    # Friday May 17, 17:00 in New York is 23:00 in Paris, 21:00 UTC.
    assert due_week(datetime(2024, 5, 17, 21, 0, tzinfo=UTC), friday_five) == (
        date(2024, 5, 10),
        date(2024, 5, 16),
    )


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names([Topic.NOTIFICATIONS]))
    async with EventPublisher(kafka_settings, client_id="test-digest") as events:
        yield events


async def test_due_digests_are_published_once_and_announced(
    mongo_db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    await mongo_db["communities"].insert_many(
        [
            {"_id": "acme", "timezone": "Europe/Paris"},  # default: Mondays at 9:00
            {"_id": "quiet", "timezone": "Europe/Paris"},  # nothing said: nothing announced
            {"_id": "off", "timezone": "UTC", "digest": {"enabled": False}},
        ]
    )
    await mongo_db["messages"].insert_many([*BEFORE, *WEEK])
    topic = kafka_settings.topic_name(Topic.NOTIFICATIONS)
    scheduler = DigestScheduler(mongo_db, publisher, notifications_topic=topic)

    assert await scheduler.publish_due(paris(2024, 5, 13, 9, 30)) == ["acme:2024-05-06:2024-05-12"]
    # Later looks, or a second scheduler, find the week done.
    assert await scheduler.publish_due(paris(2024, 5, 13, 10, 30)) == []
    assert (
        await DigestScheduler(mongo_db, publisher, notifications_topic=topic).publish_due(
            paris(2024, 5, 14, 9, 0)
        )
        == []
    )

    events = [decode_event(value) for value in await read_topic(kafka_settings, topic)]
    assert len(events) == 1
    [event] = events
    assert isinstance(event, DigestPublished)
    assert event.community_id == "acme"
    assert event.payload.digest_id == "acme:2024-05-06:2024-05-12"
    assert event.payload.period_start == datetime(2024, 5, 5, 22, tzinfo=UTC)
    assert "questions" in event.payload.summary
    assert await mongo_db["digests"].find_one({"_id": "acme:2024-05-06:2024-05-12"}) is not None
    runs = {doc["_id"]: doc["outcome"] async for doc in mongo_db["digest_runs"].find({})}
    assert runs == {
        "acme:2024-05-06:2024-05-12": "published",
        "quiet:2024-05-06:2024-05-12": "empty",
    }
