"""Moderation strikes: confirmed violations against the community's rule, recommended
to a human, never acted on; on the real MongoDB and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from tests.conftest import SyncDb
from tests.kafka_helpers import read_topic
from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_api.moderation import ModerationQueueHandler, ModerationRepository
from pepite_contracts import (
    AlertRaised,
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MessageAnalyzed,
    MessageKind,
    Platform,
    Topic,
    decode_event,
)
from pepite_kit import ensure_topics

pytestmark = pytest.mark.asyncio

BASE = "/v1/communities/acme/moderation"
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
TROLL = "discord:acme:9"


def flagged(number: int, author: str = "9") -> MessageAnalyzed:
    return MessageAnalyzed(
        community_id="acme",
        payload=AnalyzedMessage(
            message_id=f"discord:acme:{number}",
            platform=Platform.DISCORD,
            community_id="acme",
            channel=ChannelRef(id="c1", name="general"),
            author=Member(id=f"discord:acme:{author}", native_id=author, name="someone"),
            created_at=START + timedelta(minutes=number),
            analysis=Analysis(kind=MessageKind.SPAM),
            analyzed_at=START,
        ),
    )


@pytest.fixture
async def admin(api: Api, sync_db: SyncDb) -> AsyncIterator[httpx.AsyncClient]:
    # sync_db: the test's database is dropped afterwards.
    topic = api.settings.topic_name(Topic.NOTIFICATIONS)
    await ensure_topics(api.settings, [topic])
    handler = ModerationQueueHandler(
        ModerationRepository(api.state.db),
        api.state.publisher,
        threshold=0.8,
        notifications_topic=topic,
    )
    await handler([flagged(n) for n in range(1, 5)] + [flagged(5, author="7")])
    async with await api.client_for("acme", Scope.ADMIN) as client:
        yield client


async def decide(client: httpx.AsyncClient, number: int, action: str) -> dict[str, object]:
    response = await client.post(f"{BASE}/discord:acme:{number}/decision", json={"action": action})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_third_confirmed_violation_recommends_a_ban_and_bans_no_one(
    api: Api, admin: httpx.AsyncClient
) -> None:
    warnings_before = strike_alerts("warning")
    first = await decide(admin, 1, "remove")
    assert first["strike"] == {
        "member_id": TROLL,
        "violations": 1,
        "recommendation": "warn",
        "message_ids": ["discord:acme:1"],
        "rule": ["warn", "warn", "ban"],
        "automatic": False,
    }
    # "keep" says the message was fine: no strike.
    assert (await decide(admin, 2, "keep"))["strike"] is None
    second = await decide(admin, 3, "warn")
    assert second["strike"]["violations"] == 2  # type: ignore[index]
    assert second["strike"]["recommendation"] == "warn"  # type: ignore[index]
    third = await decide(admin, 4, "remove")
    strike = third["strike"]
    assert strike["violations"] == 3  # type: ignore[index]
    assert strike["recommendation"] == "ban"  # type: ignore[index]
    assert strike["automatic"] is False  # type: ignore[index]
    # The decision recorded is the moderator's, nothing more: no ban anywhere.
    assert third["decision"]["action"] == "remove"  # type: ignore[index]
    items = (await admin.get(BASE, params={"status": "decided"})).json()["items"]
    assert sorted(i["decision"]["action"] for i in items) == ["keep", "remove", "remove", "warn"]
    assert (await admin.get(f"{BASE}/discord:acme:5")).json()["status"] == "pending"

    standing = (await admin.get(f"{BASE}/members/{TROLL}/strikes")).json()
    assert standing["violations"] == 3
    assert standing["recommendation"] == "ban"
    assert standing["message_ids"] == ["discord:acme:1", "discord:acme:3", "discord:acme:4"]
    other = (await admin.get(f"{BASE}/members/discord:acme:7/strikes")).json()
    assert other["violations"] == 0
    assert other["recommendation"] is None

    # Deciding the same message again is the same strike: the same alert.
    await decide(admin, 4, "remove")
    topic = api.settings.topic_name(Topic.NOTIFICATIONS)
    events = [decode_event(v) for v in await read_topic(api.settings, topic, timeout_s=15)]
    strikes = [
        e for e in events if isinstance(e, AlertRaised) and e.payload.kind == "moderation_strike"
    ]
    assert len(strikes) == 4
    assert len({e.event_id for e in strikes}) == 3
    last = next(e for e in strikes if e.payload.metrics["violations"] == 3)
    assert last.payload.severity == "critical"
    assert last.payload.member_id == TROLL
    assert "recommend" in last.payload.title
    # Counted for the dashboards like the alerts the leaderboard service raises.
    assert strike_alerts("warning") - warnings_before == 2
    assert strike_alerts("critical") >= 2


def strike_alerts(severity: str) -> float:
    labels = {"kind": "moderation_strike", "severity": severity}
    return REGISTRY.get_sample_value("pepite_alerts_raised_total", labels) or 0.0


async def test_the_community_sets_its_own_rule(api: Api, admin: httpx.AsyncClient) -> None:
    assert (await admin.get(f"{BASE}/strike-rule")).json() == {"steps": ["warn", "warn", "ban"]}
    changed = await admin.put(f"{BASE}/strike-rule", json={"steps": ["mute", "ban"]})
    assert changed.status_code == 200, changed.text
    assert (await decide(admin, 1, "remove"))["strike"]["recommendation"] == "mute"  # type: ignore[index]
    assert (await decide(admin, 3, "mute"))["strike"]["recommendation"] == "ban"  # type: ignore[index]
    # Past the last step, the last again.
    assert (await decide(admin, 4, "warn"))["strike"]["recommendation"] == "ban"  # type: ignore[index]

    refused = await admin.put(f"{BASE}/strike-rule", json={"steps": ["explode"]})
    assert refused.status_code == 422
    assert "steps" in refused.text
    async with await api.client_for("acme", Scope.WRITE) as writer:
        forbidden = await writer.put(f"{BASE}/strike-rule", json={"steps": ["warn"]})
    assert forbidden.status_code == 403
