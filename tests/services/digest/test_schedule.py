"""Weekly digests go out on each community's schedule, once, announced on Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.kafka_helpers import read_topic
from tests.services.digest.test_lore import BEFORE, WEEK

from pepite_contracts import DigestPublished, InsightsReportPublished, Topic, decode_event
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
    # Nothing was analyzed into rollups here: no insights report goes with the digest.
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


def _rollups(
    day: date, channel: str, messages: int, kinds: dict[tuple[str, str | None], int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A day of one channel as the classifier's rollups hold it."""
    at = datetime(day.year, day.month, day.day)
    activity = {
        "_id": f"acme|{day}|{channel}",
        "community_id": "acme",
        "channel_id": channel,
        "day": at,
        "messages": messages,
        "sentiment": {"negative": 1, "neutral": messages - 2, "positive": 1},
    }
    counts = [
        {
            "_id": f"acme|{day}|{kind}|{topic}|{channel}",
            "community_id": "acme",
            "channel_id": channel,
            "day": at,
            "kind": kind,
            "topic_id": topic,
            "count": count,
        }
        for (kind, topic), count in kinds.items()
    ]
    return activity, counts


async def test_the_week_s_insights_report_goes_out_with_the_digest(
    mongo_db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    await mongo_db["communities"].insert_one({"_id": "acme", "timezone": "Europe/Paris"})
    await mongo_db["messages"].insert_many([*BEFORE, *WEEK])
    await mongo_db["topics"].insert_many(
        [
            {"_id": f"acme:{name}", "community_id": "acme", "name": name, "active": True}
            | {"created_at": datetime(2024, 5, 1, tzinfo=UTC), "updated_at": datetime.now(UTC)}
            for name in ("login", "export")
        ]
    )
    seeded = [
        _rollups(
            date(2024, 5, 7),
            "c1",
            10,
            {("question", "acme:login"): 4, ("problem", "acme:export"): 2, ("social", None): 4},
        ),
        _rollups(
            date(2024, 5, 8), "c2", 5, {("question", "acme:login"): 1, ("satisfaction", None): 1}
        ),
        # Outside the seven days: the week before, and the day the digest went out.
        _rollups(date(2024, 5, 5), "c1", 7, {("question", "acme:export"): 7}),
        _rollups(date(2024, 5, 13), "c1", 3, {("problem", "acme:export"): 3}),
    ]
    await mongo_db["activity_rollups"].insert_many([activity for activity, _ in seeded])
    await mongo_db["kind_rollups"].insert_many([count for _, counts in seeded for count in counts])
    topic = kafka_settings.topic_name(Topic.NOTIFICATIONS)
    scheduler = DigestScheduler(mongo_db, publisher, notifications_topic=topic)

    assert await scheduler.publish_due(paris(2024, 5, 13, 9, 30)) == ["acme:2024-05-06:2024-05-12"]
    assert await scheduler.publish_due(paris(2024, 5, 13, 10, 30)) == []

    events = [decode_event(value) for value in await read_topic(kafka_settings, topic)]
    assert [type(e) for e in events] == [DigestPublished, InsightsReportPublished]
    report = events[1]
    assert isinstance(report, InsightsReportPublished)
    notice = report.payload
    assert report.community_id == "acme"
    assert notice.report_id == "acme:2024-05-06:2024-05-12"
    assert notice.window_start == datetime(2024, 5, 6, tzinfo=UTC)
    assert notice.window_end == datetime(2024, 5, 13, tzinfo=UTC)
    assert notice.messages == 15
    assert notice.insights == 8
    assert {kind: n for kind, n in notice.kinds.items() if n} == {
        "question": 5,
        "problem": 2,
        "satisfaction": 1,
    }
    assert [(t["name"], t["kind"], t["count"]) for t in notice.top_topics] == [
        ("login", "question", 5),
        ("export", "problem", 2),
    ]
