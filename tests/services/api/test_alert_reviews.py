"""Alerts over the API: listed newest first, acknowledged and resolved by a person, kept
within their community; a replayed alert never undoes a review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_contracts import ChannelRef
from pepite_leaderboard.alerts_repository import AlertRepository, StoredAlert

pytestmark = pytest.mark.asyncio

BASE = "/v1/communities/acme/alerts"
HOUR = datetime(2024, 5, 6, 14, tzinfo=UTC)


def spike(n: int, *, community_id: str = "acme", kind: str = "complaints_spike") -> StoredAlert:
    return StoredAlert(
        alert_id=f"{kind}:{community_id}:{n}",
        community_id=community_id,
        kind=kind,
        series=f"{kind}:{n}",
        hour=HOUR + timedelta(hours=n),
        severity="critical" if kind == "member_distress" else "warning",
        message_ids=[f"discord:{community_id}:{n}{i}" for i in range(3)],
        member_id=f"discord:{community_id}:9" if kind == "member_distress" else None,
        title=f"Complaints spike #{n}",
        detail="12 messages in the 1 h from 14:00 UTC, where about 1 are usual.",
        channel=ChannelRef(id="c1", name="help"),
        metrics={"observed": 12.0, "expected": 1.0},
    )


async def store(api: Api, *alerts: StoredAlert) -> None:
    # Stored by the leaderboard service's own repository, as the alerts loop does.
    repository = AlertRepository(api.state.db)
    for alert in alerts:
        await repository.store_alert(alert)


async def test_alerts_are_listed_newest_first_with_what_they_say(api: Api) -> None:
    await store(
        api, spike(1), spike(2), spike(3, kind="member_distress"), spike(4, community_id="other")
    )
    async with await api.client_for("acme", Scope.READ) as reader:
        first = (await reader.get(BASE, params={"limit": 2})).json()
        second = (
            await reader.get(BASE, params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        distress = (await reader.get(BASE, params={"kind": "member_distress"})).json()["items"]
    listed = first["items"] + second["items"]
    # Stored one after the other: the last stored is the newest.
    assert [a["alert_id"] for a in listed] == [
        "member_distress:acme:3",
        "complaints_spike:acme:2",
        "complaints_spike:acme:1",
    ]
    assert second["next_cursor"] is None
    one = listed[1]
    assert one["title"] == "Complaints spike #2"
    assert (one["channel"]["id"], one["channel"]["name"]) == ("c1", "help")
    assert one["message_ids"] == ["discord:acme:20", "discord:acme:21", "discord:acme:22"]
    assert one["metrics"] == {"observed": 12.0, "expected": 1.0}
    assert one["status"] == "open"
    assert [(a["alert_id"], a["member_id"], a["severity"]) for a in distress] == [
        ("member_distress:acme:3", "discord:acme:9", "critical")
    ]


async def test_acknowledge_then_resolve(api: Api) -> None:
    await store(api, spike(1), spike(2))
    async with await api.client_for("acme", Scope.WRITE) as writer:
        acknowledged = await writer.post(
            f"{BASE}/complaints_spike:acme:1/acknowledge", json={"note": "looking into it"}
        )
        assert acknowledged.status_code == 200, acknowledged.text
        body = acknowledged.json()
        assert body["status"] == "acknowledged"
        assert body["acknowledged_at"] is not None
        assert body["acknowledged_by"]
        assert body["note"] == "looking into it"
        # Twice is once: the first acknowledgement stands.
        again = (await writer.post(f"{BASE}/complaints_spike:acme:1/acknowledge")).json()
        assert again["acknowledged_at"] == body["acknowledged_at"]

        open_ones = (await writer.get(BASE, params={"status": "open"})).json()["items"]
        assert [a["alert_id"] for a in open_ones] == ["complaints_spike:acme:2"]

        # Resolving an alert nobody acknowledged acknowledges it on the way.
        resolved = (
            await writer.post(f"{BASE}/complaints_spike:acme:2/resolve", json={"note": "a bug"})
        ).json()
        assert resolved["status"] == "resolved"
        assert resolved["acknowledged_at"] is not None
        assert resolved["resolved_at"] is not None
        assert resolved["note"] == "a bug"
        renoted = (
            await writer.post(
                f"{BASE}/complaints_spike:acme:2/resolve", json={"note": "fixed in 2.1"}
            )
        ).json()
        assert renoted["resolved_at"] == resolved["resolved_at"]
        assert renoted["note"] == "fixed in 2.1"
        # A resolved alert cannot go back to acknowledged.
        late = (await writer.post(f"{BASE}/complaints_spike:acme:2/acknowledge")).json()
        assert late["status"] == "resolved"
        assert (await writer.get(BASE, params={"status": "open"})).json()["items"] == []

    # The alerts loop storing the same alert again (a replay) keeps the review.
    await store(api, spike(1), spike(2))
    async with await api.client_for("acme", Scope.READ) as reader:
        statuses = {a["alert_id"]: a["status"] for a in (await reader.get(BASE)).json()["items"]}
    assert statuses == {
        "complaints_spike:acme:1": "acknowledged",
        "complaints_spike:acme:2": "resolved",
    }
    doc = await api.state.db["alerts"].find_one({"_id": "complaints_spike:acme:1"})
    assert doc is not None
    # What the community gauges count as open: neither acknowledged nor resolved.
    assert doc["acknowledged_at"] is not None


async def test_a_read_key_cannot_review_and_tenants_stay_apart(api: Api) -> None:
    await store(api, spike(1), spike(1, community_id="other"))
    async with await api.client_for("acme", Scope.READ) as reader:
        refused = await reader.post(f"{BASE}/complaints_spike:acme:1/acknowledge")
        assert refused.status_code == 403
    async with await api.client_for("acme", Scope.WRITE) as writer:
        # Another community's alert under Acme's address does not exist.
        missing = await writer.post(f"{BASE}/complaints_spike:other:1/resolve")
        assert missing.status_code == 404
        assert (await writer.get(f"{BASE}/complaints_spike:other:1")).status_code == 404
        assert (await writer.get(f"{BASE}/complaints_spike:acme:1")).json()["status"] == "open"
        bad = await writer.get(BASE, params={"kind": "Robert'); DROP"})
        assert bad.status_code == 422
        too_long = await writer.post(
            f"{BASE}/complaints_spike:acme:1/resolve", json={"note": "x" * 2001}
        )
        assert too_long.status_code == 422
    async with await api.client_for("other", Scope.WRITE) as other:
        assert (await other.get(BASE)).status_code == 403
        theirs = (await other.get("/v1/communities/other/alerts")).json()["items"]
        assert [a["alert_id"] for a in theirs] == ["complaints_spike:other:1"]
