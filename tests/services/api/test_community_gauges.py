"""The API worker's community and dead-letter gauges, on seeded data with known answers.

Messages, daily rollups and alerts are written the way the classifier and the leaderboard
service store them, a dead-letter topic is filled on the real broker, and the refresher's
gauges are read back from the Prometheus registry.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from tests.conftest import Stack

from pepite_api.community_gauges import ALERT_KINDS
from pepite_api.community_gauges_refresher import GaugeRefresher
from pepite_api.community_gauges_repository import COMMUNITY_GAUGE_INDEXES
from pepite_api.settings import Settings
from pepite_classifier.repository import INDEXES as CLASSIFIER_INDEXES
from pepite_contracts import Topic
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics
from pepite_kit.mongo import ensure_indexes
from pepite_kit.offsets import TopicSizes
from pepite_leaderboard.alerts_repository import ALERT_INDEXES
from pepite_reports.rollups import day_start

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def series(name: str, community: str) -> dict[str, float]:
    """The samples of a community gauge with a second label, by that label's value."""
    found: dict[str, float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("community") == community:
                other = [v for k, v in sample.labels.items() if k != "community"]
                found[other[0]] = sample.value
    return found


def _message(
    community: str, n: int, created_at: datetime, stored_at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "_id": f"discord:{community}:{n}",
        "community_id": community,
        "channel": {"id": "c1"},
        "author": {"id": f"discord:{community}:u{n % 3}"},
        "text": "hello",
        "created_at": created_at,
        "stored_at": stored_at,
        **extra,
    }


async def seed(db: Database) -> None:
    """Two communities with known figures at ``NOW``.

    alpha: 5 messages of the last 24 h (+1 deleted, +2 older); last stored 1 h ago.
    beta: 2 messages of the last 24 h; last stored 3 days ago.
    """
    await ensure_indexes(db, [*CLASSIFIER_INDEXES, *COMMUNITY_GAUGE_INDEXES, *ALERT_INDEXES])
    hour = timedelta(hours=1)
    alpha = [_message("alpha", n, NOW - n * hour, NOW - 5 * hour) for n in range(5)]
    alpha.append(_message("alpha", 5, NOW - 2 * hour, NOW - hour))  # the newest stored
    alpha[0]["deleted_at"] = NOW
    alpha += [_message("alpha", 10 + n, NOW - 30 * hour, NOW - 30 * hour) for n in range(2)]
    beta = [_message("beta", n, NOW - 3 * hour, NOW - 72 * hour) for n in range(2)]
    await db["messages"].insert_many([*alpha, *beta])

    def kinds(community: str, days_ago: int, kind: str, count: int) -> dict[str, Any]:
        day = TODAY - timedelta(days=days_ago)
        return {
            "_id": f"{community}|{day}|{kind}|-|c1",
            "community_id": community,
            "day": day_start(day),
            "channel_id": "c1",
            "kind": kind,
            "topic_id": None,
            "count": count,
        }

    await db["kind_rollups"].insert_many(
        [
            kinds("alpha", 0, "question", 4),
            kinds("alpha", 6, "question", 3),  # first day of the window
            kinds("alpha", 7, "question", 100),  # one day too old
            kinds("alpha", 2, "problem", 2),
            kinds("alpha", 2, "complaint", 1),
            kinds("alpha", 1, "social", 50),  # not an insight kind
            kinds("beta", 1, "feature_request", 7),
        ]
    )

    def activity(community: str, days_ago: int, neg: int, neu: int, pos: int) -> dict[str, Any]:
        day = TODAY - timedelta(days=days_ago)
        return {
            "_id": f"{community}|{day}|c1",
            "community_id": community,
            "day": day_start(day),
            "channel_id": "c1",
            "messages": neg + neu + pos,
            "sentiment": {"negative": neg, "neutral": neu, "positive": pos},
        }

    await db["activity_rollups"].insert_many(
        [
            activity("alpha", 0, 1, 2, 3),
            activity("alpha", 5, 10, 20, 30),
            activity("alpha", 9, 500, 500, 500),  # too old
            activity("beta", 0, 0, 4, 0),
        ]
    )

    def alert(n: int, community: str, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "_id": f"alert-{n}",
            "community_id": community,
            "kind": kind,
            "series": "volume",
            "hour": NOW - timedelta(hours=n),
            "severity": "warning",
            "message_ids": [],
            "member_id": None,
            "raised_at": NOW,
            **extra,
        }

    await db["alerts"].insert_many(
        [
            alert(1, "alpha", "volume_spike"),
            alert(2, "alpha", "volume_spike"),
            alert(3, "alpha", "volume_spike", acknowledged_at=NOW),
            alert(4, "alpha", "scam_wave"),
            alert(5, "alpha", "scam_wave", resolved_at=NOW),
            alert(6, "alpha", "made_up_kind"),
            alert(7, "beta", "member_distress"),
        ]
    )


def settings_for(stack: Stack, db_name: str, kafka: KafkaSettings, **extra: Any) -> Settings:
    return Settings(
        mongodb_uri=stack.mongodb_uri,
        mongodb_db=db_name,
        kafka_bootstrap=kafka.kafka_bootstrap,
        kafka_topic_prefix=kafka.kafka_topic_prefix,
        kafka_partitions=kafka.kafka_partitions,
        **extra,
    )


async def test_gauges_give_the_seeded_figures(
    mongo_db: Database, stack: Stack, db_name: str, kafka_settings: KafkaSettings
) -> None:
    await seed(mongo_db)
    refresher = GaugeRefresher(mongo_db, settings_for(stack, db_name, kafka_settings))
    before = datetime.now(UTC).timestamp()

    report = await refresher.refresh_once(None, now=NOW)

    assert report.communities is not None
    assert [g.activity.community_id for g in report.communities] == ["alpha", "beta"]
    assert gauge("pepite_community_messages_24h", community="alpha") == 5
    assert gauge("pepite_community_messages_24h", community="beta") == 2
    assert gauge("pepite_community_last_ingested_timestamp_seconds", community="alpha") == (
        (NOW - timedelta(hours=1)).timestamp()
    )
    assert gauge("pepite_community_last_ingested_timestamp_seconds", community="beta") == (
        (NOW - timedelta(hours=72)).timestamp()
    )
    assert series("pepite_community_insights_7d", "alpha") == {
        "question": 7,
        "problem": 2,
        "feature_request": 0,
        "satisfaction": 0,
        "complaint": 1,
    }
    assert series("pepite_community_insights_7d", "beta")["feature_request"] == 7
    assert series("pepite_community_sentiment_7d", "alpha") == {
        "negative": 11,
        "neutral": 22,
        "positive": 33,
    }
    assert series("pepite_community_sentiment_7d", "beta") == {
        "negative": 0,
        "neutral": 4,
        "positive": 0,
    }
    assert series("pepite_community_open_alerts", "alpha") == {
        **dict.fromkeys(ALERT_KINDS, 0.0),
        "volume_spike": 2,
        "scam_wave": 1,
        "other": 1,
    }
    assert series("pepite_community_open_alerts", "beta")["member_distress"] == 1
    refreshed = gauge("pepite_community_gauges_refreshed_timestamp_seconds")
    assert refreshed is not None
    assert refreshed >= before


async def test_only_the_most_active_are_exported_and_gone_ones_are_removed(
    mongo_db: Database, stack: Stack, db_name: str, kafka_settings: KafkaSettings
) -> None:
    await seed(mongo_db)
    settings = settings_for(stack, db_name, kafka_settings, community_gauges_max_communities=1)
    refresher = GaugeRefresher(mongo_db, settings)

    await refresher.refresh_once(None, now=NOW)
    assert gauge("pepite_community_messages_24h", community="alpha") == 5
    assert gauge("pepite_community_messages_24h", community="beta") is None
    assert series("pepite_community_insights_7d", "beta") == {}

    # beta becomes the busier one: it takes alpha's place, and alpha's series go.
    more = [_message("beta", 100 + n, NOW - timedelta(minutes=n), NOW) for n in range(10)]
    await mongo_db["messages"].insert_many(more)
    await refresher.refresh_once(None, now=NOW)
    assert gauge("pepite_community_messages_24h", community="beta") == 12
    assert gauge("pepite_community_messages_24h", community="alpha") is None
    assert series("pepite_community_open_alerts", "alpha") == {}

    # A community whose messages are all gone is no longer exported at all.
    await mongo_db["messages"].delete_many({"community_id": "beta"})
    await refresher.refresh_once(None, now=NOW)
    assert gauge("pepite_community_messages_24h", community="beta") is None
    assert gauge("pepite_community_messages_24h", community="alpha") == 5


async def test_dead_letter_gauge_counts_the_records_waiting(
    mongo_db: Database, stack: Stack, db_name: str, kafka_settings: KafkaSettings
) -> None:
    settings = settings_for(stack, db_name, kafka_settings)
    await ensure_topics(settings, [settings.topic_name(t.dlq) for t in Topic])
    # Written as the consumer loop dead-letters: one record at a time, each acknowledged.
    async with EventPublisher(settings) as publisher:
        for n in range(7):
            await publisher.send(
                settings.topic_name(Topic.MESSAGES_RAW.dlq), b"poison", key=f"k{n}".encode()
            )
            await publisher.flush()
        for n in range(2):
            await publisher.send(
                settings.topic_name(Topic.NOTIFICATIONS.dlq), b"poison", key=f"k{n}".encode()
            )
            await publisher.flush()
    refresher = GaugeRefresher(mongo_db, settings)

    async with TopicSizes(settings) as sizes:
        report = await refresher.refresh_once(sizes, now=NOW)

    # Labels are the topics' names without this deployment's prefix.
    assert report.dead_letters == {
        "messages.raw.dlq": 7,
        "messages.analyzed.dlq": 0,
        "members.events.dlq": 0,
        "notifications.dlq": 2,
        "digests.requests.dlq": 0,
    }
    assert gauge("pepite_dead_letter_records", topic="messages.raw.dlq") == 7
    assert gauge("pepite_dead_letter_records", topic="notifications.dlq") == 2


async def test_a_failed_refresh_is_counted_and_keeps_the_previous_values(
    mongo_db: Database, stack: Stack, db_name: str, kafka_settings: KafkaSettings
) -> None:
    await seed(mongo_db)
    settings = settings_for(stack, db_name, kafka_settings)
    await GaugeRefresher(mongo_db, settings).refresh_once(None, now=NOW)
    refreshed = gauge("pepite_community_gauges_refreshed_timestamp_seconds")
    errors = gauge("pepite_gauges_refresh_errors_total", part="communities") or 0.0
    # Nothing listens on port 9: every query fails after the short selection timeout.
    dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=200
    )
    try:
        report = await GaugeRefresher(dead[db_name], settings).refresh_once(None, now=NOW)
    finally:
        await dead.close()

    assert report.communities is None
    assert gauge("pepite_gauges_refresh_errors_total", part="communities") == errors + 1
    assert gauge("pepite_community_messages_24h", community="alpha") == 5
    assert gauge("pepite_community_gauges_refreshed_timestamp_seconds") == refreshed


async def test_the_worker_refreshes_in_the_background(
    mongo_db: Database, stack: Stack, db_name: str, kafka_settings: KafkaSettings
) -> None:
    await seed(mongo_db)
    settings = settings_for(stack, db_name, kafka_settings, community_gauges_seconds=0.05)
    task = asyncio.create_task(GaugeRefresher(mongo_db, settings).run_forever())
    try:
        for _ in range(200):
            # On the real clock, months after NOW, alpha has no message of the last 24 h.
            if gauge("pepite_community_messages_24h", community="alpha") == 0:
                break
            await asyncio.sleep(0.05)
        assert gauge("pepite_community_messages_24h", community="alpha") == 0
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
