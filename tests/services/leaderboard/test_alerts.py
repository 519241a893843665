"""Alerts on hand-built scenarios with known answers, on the real MongoDB and broker.

A steady community (about 40 messages an hour, a third of them negative, a complaint
now and then on another topic) for four days, then a burst of complaints on one topic:
exactly one alert, carrying exactly the burst's messages, sent once however often the
events are replayed. The same steady days without the burst: no alert. Scam messages
from three members within minutes: one critical alert. A member writing that they want
to die: one critical alert; "that's sad" does not.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.kafka_helpers import read_topic

from pepite_contracts import (
    AlertRaised,
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MemberErased,
    MemberErasure,
    MessageAnalyzed,
    MessageKind,
    ModerationScores,
    Mood,
    Platform,
    Sentiment,
    Topic,
    all_topics,
    decode_event,
    partition_key,
)
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics, event_loop_for
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.alerts_detector import DetectorConfig
from pepite_leaderboard.alerts_handlers import AlertRules, AlertsHandler
from pepite_leaderboard.alerts_repository import ALERT_INDEXES, AlertRepository

pytestmark = pytest.mark.asyncio

COMMUNITY = "acme"
START = datetime(2026, 3, 2, tzinfo=UTC)
BURST_AT = START + timedelta(days=4, hours=14, minutes=10)


def analyzed(
    number: int,
    at: datetime,
    *,
    kind: MessageKind = MessageKind.SOCIAL,
    sentiment: Sentiment = Sentiment.NEUTRAL,
    topic: str | None = None,
    author: str = "m1",
    mood: Mood = Mood.NEUTRAL,
    scam: float = 0.0,
    community: str = COMMUNITY,
) -> MessageAnalyzed:
    message_id = f"discord:{community}:{number}"
    return MessageAnalyzed(
        community_id=community,
        payload=AnalyzedMessage(
            message_id=message_id,
            platform=Platform.DISCORD,
            community_id=community,
            channel=ChannelRef(id="c1", name="general"),
            author=Member(id=f"discord:{community}:{author}", native_id=author, name=author),
            created_at=at,
            analysis=Analysis(
                kind=kind,
                sentiment=sentiment,
                mood=mood,
                moderation=ModerationScores(scam=scam),
            ),
            topic_id=topic,
            analyzed_at=at,
        ),
    )


def steady_days(days: int, seed: int = 7) -> list[MessageAnalyzed]:
    """About 40 messages an hour, a third negative, complaints on topic ``billing``
    now and then."""
    rng = random.Random(seed)
    events = []
    number = 0
    for hour in range(days * 24):
        base = START + timedelta(hours=hour)
        for _ in range(rng.randint(30, 50)):
            number += 1
            at = base + timedelta(seconds=rng.randrange(3600))
            if rng.random() < 0.01:
                events.append(
                    analyzed(
                        number,
                        at,
                        kind=MessageKind.COMPLAINT,
                        sentiment=Sentiment.NEGATIVE,
                        topic="acme:billing",
                        author=f"m{rng.randrange(50)}",
                    )
                )
                continue
            negative = rng.random() < 0.33
            events.append(
                analyzed(
                    number,
                    at,
                    sentiment=Sentiment.NEGATIVE if negative else Sentiment.NEUTRAL,
                    author=f"m{rng.randrange(50)}",
                )
            )
    return events


def burst(size: int = 12) -> list[MessageAnalyzed]:
    """Complaints on topic ``login`` within 40 minutes, from different members."""
    return [
        analyzed(
            100_000 + n,
            BURST_AT + timedelta(minutes=40 * n / size),
            kind=MessageKind.COMPLAINT,
            sentiment=Sentiment.NEGATIVE,
            topic="acme:login",
            author=f"m{n}",
        )
        for n in range(size)
    ]


@pytest.fixture
async def ready(kafka_settings: KafkaSettings, mongo_db: Database) -> Database:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    await ensure_indexes(mongo_db, ALERT_INDEXES)
    return mongo_db


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    async with EventPublisher(kafka_settings, client_id="test-alerts") as events:
        yield events


def handler_for(db: Database, publisher: EventPublisher, settings: KafkaSettings) -> AlertsHandler:
    return AlertsHandler(
        AlertRepository(db),
        publisher,
        notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
        rules=AlertRules(detector=DetectorConfig()),
    )


async def feed(handler: AlertsHandler, events: list[MessageAnalyzed], batch: int = 800) -> None:
    """Hand the events to the handler in batches, in time order, as the loop would."""
    ordered = sorted(events, key=lambda e: e.payload.created_at)
    for start in range(0, len(ordered), batch):
        await handler(ordered[start : start + batch])


async def alerts_published(settings: KafkaSettings, timeout_s: float = 20.0) -> list[AlertRaised]:
    values = await read_topic(
        settings, settings.topic_name(Topic.NOTIFICATIONS), timeout_s=timeout_s
    )
    decoded = [decode_event(value) for value in values]
    return [event for event in decoded if isinstance(event, AlertRaised)]


async def test_a_burst_of_complaints_raises_one_alert_with_its_messages_once(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    handler = handler_for(ready, publisher, kafka_settings)
    spike = burst()
    await feed(handler, [*steady_days(5), *spike])

    (alert,) = await AlertRepository(ready).alerts(COMMUNITY)
    assert alert.kind == "complaints_spike"
    assert alert.series == "complaints:acme:login"
    assert sorted(alert.message_ids) == sorted(e.payload.message_id for e in spike)
    (event,) = await alerts_published(kafka_settings)
    assert event.payload.alert_id == alert.alert_id
    assert sorted(event.payload.message_ids) == sorted(alert.message_ids)
    assert event.payload.metrics["observed"] == len(spike)

    # A replay of everything (and of the burst alone) changes nothing and sends nothing.
    await feed(handler, [*steady_days(5), *spike], batch=3000)
    await handler(spike)
    assert [a.alert_id for a in await AlertRepository(ready).alerts(COMMUNITY)] == [alert.alert_id]
    assert len(await alerts_published(kafka_settings)) == 1


async def test_a_steady_rate_with_noise_raises_nothing(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    handler = handler_for(ready, publisher, kafka_settings)
    # Seven days, different noise: the hours vary from 30 to 50 messages.
    await feed(handler, steady_days(7, seed=11))
    assert await AlertRepository(ready).alerts(COMMUNITY) == []
    assert await alerts_published(kafka_settings, timeout_s=3.0) == []


async def test_a_small_burst_below_the_minimum_is_not_a_spike(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    handler = handler_for(ready, publisher, kafka_settings)
    await feed(handler, [*steady_days(5), *burst(size=4)])
    assert await AlertRepository(ready).alerts(COMMUNITY) == []


async def test_a_complaint_moved_to_another_topic_leaves_its_old_bucket(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    handler = handler_for(ready, publisher, kafka_settings)
    first = analyzed(1, START, kind=MessageKind.COMPLAINT, topic=None)
    await handler([first])
    placed = analyzed(1, START, kind=MessageKind.COMPLAINT, topic="acme:login")
    await handler([placed])
    repository = AlertRepository(ready)
    hour = START
    assert await repository.counts(COMMUNITY, "complaints:unassigned", hour, hour) == {hour: 0}
    assert await repository.counts(COMMUNITY, "complaints:acme:login", hour, hour) == {hour: 1}
    assert await repository.counts(COMMUNITY, "volume", hour, hour) == {hour: 1}


async def test_a_scam_wave_is_escalated_at_once_through_the_consumer_loop(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    at = START + timedelta(hours=3)
    wave = [
        analyzed(n, at + timedelta(minutes=4 * n), kind=MessageKind.SCAM, scam=0.9, author=a)
        for n, a in enumerate(["s1", "s2", "s1", "s3", "s4"], start=1)
    ]
    # Two scammers only, in another community: not a wave.
    pair = [
        analyzed(10 + n, at + timedelta(minutes=n), scam=0.95, author=f"x{n}", community="other")
        for n in range(2)
    ]
    topic = kafka_settings.topic_name(Topic.MESSAGES_ANALYZED)
    for event in [*wave, *pair]:
        await publisher.publish(
            topic, event, key=partition_key(event.community_id, event.payload.channel.id)
        )
    await publisher.flush()
    loop = event_loop_for(
        name="alerts",
        settings=kafka_settings,
        group_id=f"{kafka_settings.kafka_topic_prefix}alerts",
        handlers={topic: handler_for(ready, publisher, kafka_settings)},
        publisher=publisher,
    )
    task = asyncio.create_task(loop.run())
    repository = AlertRepository(ready)
    try:
        for _ in range(300):
            if len(await ready["alert_observations"].distinct("_id")) == 7:
                break
            await asyncio.sleep(0.1)
    finally:
        loop.stop()
        await task
    (alert,) = await repository.alerts(COMMUNITY)
    assert alert.kind == "scam_wave"
    assert alert.severity == "critical"
    assert set(alert.message_ids) == {e.payload.message_id for e in wave}
    assert await repository.alerts("other") == []
    (event,) = await alerts_published(kafka_settings)
    assert event.payload.kind == "scam_wave"
    assert event.payload.metrics["authors"] == 4


async def test_a_member_in_distress_is_escalated_and_erasure_reaches_the_alert(
    ready: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    texts = {
        1: ("I want to die, nothing works anymore", Mood.SAD),
        2: ("that's sad, sorry :(", Mood.SAD),
        3: ("read https://example.org/Suicide-Linux-joke first", Mood.CURIOUS),
        4: ("honestly I can't go on like this", Mood.NEUTRAL),
    }
    await ready["messages"].insert_many(
        [
            {"_id": f"discord:{COMMUNITY}:{n}", "community_id": COMMUNITY, "text": text}
            for n, (text, _) in texts.items()
        ]
    )
    handler = handler_for(ready, publisher, kafka_settings)
    events = [
        analyzed(n, START + timedelta(minutes=n), mood=mood, author=f"m{n}")
        for n, (_, mood) in texts.items()
    ]
    await handler(events)
    await handler(events)
    repository = AlertRepository(ready)
    (alert,) = await repository.alerts(COMMUNITY)
    assert alert.kind == "member_distress"
    assert alert.severity == "critical"
    assert alert.message_ids == [f"discord:{COMMUNITY}:1"]
    assert alert.member_id == f"discord:{COMMUNITY}:m1"
    (event,) = await alerts_published(kafka_settings)
    assert event.payload.member_id == alert.member_id

    await handler(
        [
            MemberErased(
                community_id=COMMUNITY,
                payload=MemberErasure(
                    member_id=f"discord:{COMMUNITY}:m1",
                    community_id=COMMUNITY,
                    pseudonym="erased:abc",
                    requested_at=START,
                ),
            )
        ]
    )
    (alert,) = await repository.alerts(COMMUNITY)
    assert alert.member_id == "erased:abc"
    assert (
        await ready["alert_observations"].count_documents({"author_id": f"discord:{COMMUNITY}:m1"})
        == 0
    )
