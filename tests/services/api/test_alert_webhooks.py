"""Alerts reach webhook subscribers end to end, on the real broker and MongoDB.

Analyzed messages are published on ``messages.analyzed``; the leaderboard service's
alerts loop (built from its settings, as the service builds it) consumes them, finds a
burst of complaints on one topic after quiet days and a member writing that they want
to die, and publishes ``alert.raised`` on the notifications topic; the API's webhook
worker consumes that topic and delivers to a local HTTP receiver. The receiver checks
the signature with the verifier written from docs/webhooks.md, and the payload names
the alert's kind, severity and messages. Another community, whose messages raise
nothing, has a subscription that receives nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.services.api.conftest import Api
from tests.services.api.test_webhooks import (
    BASE,
    COMMUNITY,
    Receiver,
    Workers,
    admin,
    api_settings,
    get_json,
    receiver,
    subscribe,
    verify,
    workers,
)

from pepite_api.keys import Scope
from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MessageAnalyzed,
    MessageKind,
    Mood,
    Platform,
    Sentiment,
    Topic,
    all_topics,
    partition_key,
)
from pepite_kit import ensure_topics, event_loop_for
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.alerts_handlers import AlertsHandler, alert_rules
from pepite_leaderboard.alerts_repository import ALERT_INDEXES, AlertRepository
from pepite_leaderboard.settings import Settings as LeaderboardSettings

pytestmark = pytest.mark.asyncio

__all__ = ["admin", "api_settings", "receiver", "workers"]

OTHER = "other"
START = datetime(2026, 3, 2, tzinfo=UTC)
#: After three and a half quiet days: enough history for the detector to judge.
BURST_AT = START + timedelta(days=3, hours=14, minutes=5)


def analyzed(
    community: str,
    number: int,
    at: datetime,
    *,
    kind: MessageKind = MessageKind.SOCIAL,
    sentiment: Sentiment = Sentiment.NEUTRAL,
    mood: Mood = Mood.NEUTRAL,
    topic: str | None = None,
    author: str = "m1",
) -> MessageAnalyzed:
    return MessageAnalyzed(
        community_id=community,
        payload=AnalyzedMessage(
            message_id=f"discord:{community}:{number}",
            platform=Platform.DISCORD,
            community_id=community,
            channel=ChannelRef(id="c1", name="general"),
            author=Member(id=f"discord:{community}:{author}", native_id=author, name=author),
            created_at=at,
            analysis=Analysis(kind=kind, sentiment=sentiment, mood=mood),
            topic_id=topic,
            analyzed_at=at,
        ),
    )


def quiet_days(community: str) -> list[MessageAnalyzed]:
    """Two ordinary messages an hour up to the burst."""
    hours = int((BURST_AT - START) / timedelta(hours=1))
    return [
        analyzed(community, 2 * hour + n, START + timedelta(hours=hour, minutes=20 * n + 5))
        for hour in range(hours)
        for n in range(2)
    ]


def complaints_burst() -> list[MessageAnalyzed]:
    """Twelve members complaining about logging in within forty minutes."""
    return [
        analyzed(
            COMMUNITY,
            10_000 + n,
            BURST_AT + timedelta(minutes=3 * n),
            kind=MessageKind.COMPLAINT,
            sentiment=Sentiment.NEGATIVE,
            topic=f"{COMMUNITY}:login",
            author=f"c{n}",
        )
        for n in range(12)
    ]


@pytest.fixture
async def other_deliveries(
    api: Api, receiver: Receiver
) -> AsyncIterator[Callable[[], Awaitable[list[Any]]]]:
    """Subscribes the receiver (on ``/other``) to the other community's alerts; yields
    how to read that subscription's deliveries."""
    async with await api.client_for(OTHER, Scope.ADMIN) as client:
        response = await client.post(
            f"/v1/communities/{OTHER}/webhooks",
            json={"url": receiver.url("/other"), "event_types": ["alert.raised"]},
        )
        assert response.status_code == 201, response.text
        path = f"/v1/communities/{OTHER}/webhooks/{response.json()['webhook_id']}/deliveries"

        async def deliveries() -> list[Any]:
            items: list[Any] = (await get_json(client, path))["items"]
            return items

        yield deliveries


@pytest.fixture
def leaderboard_settings(api: Api) -> LeaderboardSettings:
    return LeaderboardSettings(
        mongodb_uri=api.settings.mongodb_uri,
        mongodb_db=api.settings.mongodb_db,
        kafka_bootstrap=api.settings.kafka_bootstrap,
        kafka_topic_prefix=api.settings.kafka_topic_prefix,
        kafka_partitions=api.settings.kafka_partitions,
        alerts_consumer_group=f"{api.settings.kafka_topic_prefix}leaderboard-alerts",
    )


@pytest.fixture
async def services(
    api: Api, workers: Workers, leaderboard_settings: LeaderboardSettings
) -> AsyncIterator[LeaderboardSettings]:
    """The webhook worker, and the leaderboard service's alerts loop on the app's database
    and producer; yields the leaderboard settings."""
    settings = leaderboard_settings
    await ensure_topics(settings, settings.topic_names(all_topics()))
    await ensure_indexes(api.state.db, ALERT_INDEXES)
    handler = AlertsHandler(
        AlertRepository(api.state.db),
        api.state.publisher,
        notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
        rules=alert_rules(settings),
    )
    loop = event_loop_for(
        name="alerts",
        settings=settings,
        group_id=settings.alerts_consumer_group,
        handlers={
            settings.topic_name(Topic.MESSAGES_ANALYZED): handler,
            settings.topic_name(Topic.MEMBERS_EVENTS): handler,
        },
        publisher=api.state.publisher,
    )
    task = asyncio.create_task(loop.run())
    await workers.start()
    try:
        yield settings
    finally:
        loop.stop()
        await task


async def test_spikes_and_crises_are_delivered_signed_to_their_community_only(
    api: Api,
    admin: httpx.AsyncClient,
    other_deliveries: Callable[[], Awaitable[list[Any]]],
    receiver: Receiver,
    services: LeaderboardSettings,
) -> None:
    created = await subscribe(admin, receiver.url("/acme"), ("alert.raised",))

    # The distress check reads the words from the stored messages.
    distress_id = f"discord:{COMMUNITY}:20000"
    await api.state.db["messages"].insert_many(
        [
            {"_id": distress_id, "community_id": COMMUNITY, "text": "I want to die, nothing works"},
            {"_id": f"discord:{OTHER}:20000", "community_id": OTHER, "text": "that's sad, sorry"},
        ]
    )
    burst = complaints_burst()
    later = BURST_AT + timedelta(hours=2)
    events = [
        *quiet_days(COMMUNITY),
        *quiet_days(OTHER),
        *burst,
        analyzed(COMMUNITY, 20_000, later, mood=Mood.SAD, author="d1"),
        # The same mood and a sad word in the other community: nothing to raise.
        analyzed(OTHER, 20_000, later, mood=Mood.SAD, author="d1"),
    ]
    topic = services.topic_name(Topic.MESSAGES_ANALYZED)
    for event in sorted(events, key=lambda e: e.payload.created_at):
        await api.state.publisher.publish(
            topic, event, key=partition_key(event.community_id, event.payload.channel.id)
        )
    await api.state.publisher.flush()

    requests = await receiver.wait_for(2, within_s=30)
    # Anything meant for the other community would have come by now as well.
    await asyncio.sleep(1.0)
    assert [r.path for r in receiver.requests] == ["/acme", "/acme"]
    assert await other_deliveries() == []

    stored = {a.kind: a for a in await AlertRepository(api.state.db).alerts(COMMUNITY)}
    assert sorted(stored) == ["complaints_spike", "member_distress"]
    assert await AlertRepository(api.state.db).alerts(OTHER) == []
    payloads = {}
    for request in requests:
        assert request.headers["pepite-event"] == "alert.raised"
        assert verify(
            created["secret"], request.headers["pepite-signature"], request.body, now=time.time()
        )
        body = json.loads(request.body)
        assert body["type"] == "alert.raised"
        assert body["community_id"] == COMMUNITY
        payloads[body["payload"]["kind"]] = body["payload"]

    spike = payloads["complaints_spike"]
    assert spike["severity"] == stored["complaints_spike"].severity
    assert spike["severity"] in {"warning", "critical"}
    assert sorted(spike["message_ids"]) == sorted(e.payload.message_id for e in burst)
    assert spike["metrics"]["observed"] == len(burst)
    assert spike["alert_id"] == stored["complaints_spike"].alert_id

    distress = payloads["member_distress"]
    assert distress["severity"] == "critical"
    assert distress["message_ids"] == [distress_id]
    assert distress["member_id"] == f"discord:{COMMUNITY}:d1"

    delivered = await get_json(admin, f"{BASE}/{created['webhook_id']}/deliveries")
    assert sorted(d["status"] for d in delivered["items"]) == ["delivered", "delivered"]
