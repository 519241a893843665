"""Leaderboard routes on scores kept by the real update path, on the real MongoDB."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from tests.services.api.conftest import Api
from tests.services.leaderboard.test_scores import COMMUNITY, helpful_community, member_id

from pepite_api.keys import Scope
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.scores_handlers import ScoresHandler
from pepite_leaderboard.scores_repository import SCORES_INDEXES, ScoresRepository
from pepite_leaderboard.scores_service import DEFAULT_DAILY_CAPS, ScoreUpdater, ScoringPolicy

pytestmark = pytest.mark.asyncio

BASE = f"/v1/communities/{COMMUNITY}/leaderboards"


async def seed(api: Api) -> None:
    db = api.state.db
    await ensure_indexes(db, SCORES_INDEXES)
    chat = helpful_community()
    await chat.store(db)
    handler = ScoresHandler(
        ScoreUpdater(ScoresRepository(db), ScoringPolicy(daily_caps=DEFAULT_DAILY_CAPS))
    )
    await handler(chat.events)


async def test_rankings_page_by_page_and_how_a_score_was_made(api: Api) -> None:
    await seed(api)
    async with await api.client_for(COMMUNITY, Scope.READ) as client:
        first = await client.get(f"{BASE}/helpfulness", params={"period": "2024-05", "limit": 1})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["members"] == 3
        assert [(e["rank"], e["member_id"], e["points"]) for e in body["entries"]] == [
            (1, member_id("alice"), 40.0)
        ]
        assert body["entries"][0]["name"] == "alice"
        rest = await client.get(
            f"{BASE}/helpfulness",
            params={"period": "2024-05", "limit": 5, "cursor": body["next_cursor"]},
        )
        assert [(e["rank"], e["member_id"]) for e in rest.json()["entries"]] == [
            (2, member_id("bob")),
            (2, member_id("carol")),
        ]
        assert rest.json()["next_cursor"] is None
        season = await client.get(f"{BASE}/activity", params={"period": "2024-Q2"})
        assert member_id("helpbot") not in {e["member_id"] for e in season.json()["entries"]}

        alice = quote(member_id("alice"), safe="")
        url = f"{BASE}/helpfulness/members/{alice}"
        page = await client.get(url, params={"from": "2024-05-01", "to": "2024-05-31", "limit": 10})
        assert page.status_code == 200, page.text
        standing = page.json()
        assert (standing["rank"], standing["points"]) == (1, 40.0)
        assert standing["metrics"]["accepted_answers"] == 5
        assert [t["title_id"] for t in standing["titles"]] == ["helping-hand"]
        more = await client.get(
            url,
            params={"from": "2024-05-01", "to": "2024-05-31", "cursor": standing["next_cursor"]},
        )
        items = standing["contributions"] + more.json()["contributions"]
        assert len(items) == 15
        assert len({i["contribution_id"] for i in items}) == 15
        assert sum(i["counted"] for i in items) == 40.0
        assert {i["reason"] for i in items if i["source"] == "thanks"} == {"thanked by 1 member"}

        dave = quote(member_id("dave"), safe="")
        own = (await client.get(f"{BASE}/helpfulness/members/{dave}?period=2024-05")).json()
        assert own["rank"] is None
        assert [i["reason"] for i in own["contributions"]] == [
            "reply to one's own message: counts for nothing"
        ] * 2


async def test_bad_periods_other_tenants_and_missing_events_are_refused(api: Api) -> None:
    await seed(api)
    async with await api.client_for(COMMUNITY, Scope.READ) as client:
        bad = await client.get(f"{BASE}/helpfulness", params={"period": "2024-13"})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "query.period" in bad.json()["detail"]
        both = await client.get(
            f"{BASE}/helpfulness", params={"period": "2024-05", "from": "2024-05-01"}
        )
        assert both.status_code == 422
        half = await client.get(f"{BASE}/helpfulness", params={"from": "2024-05-01"})
        assert "query.to" in half.json()["detail"]
        assert (await client.get(f"{BASE}/wisdom")).status_code == 422
        assert (await client.get(f"{BASE}/helpfulness?event=nope")).status_code == 404
        stranger = quote("discord:other:alice", safe="")
        assert (await client.get(f"{BASE}/helpfulness/members/{stranger}")).status_code == 404
    async with await api.client_for("other", Scope.ADMIN) as client:
        assert (await client.get(f"{BASE}/helpfulness?period=2024-05")).status_code == 403


async def test_titles_and_events_are_configured_by_admins(api: Api) -> None:
    await seed(api)
    sage = {
        "title_id": "sage",
        "name": "Sage",
        "theme": "helpfulness",
        "metric": "accepted_answers",
        "threshold": 5,
    }
    async with await api.client_for(COMMUNITY, Scope.READ) as reader:
        defaults = (await reader.get(f"{BASE}/titles")).json()
        assert defaults["is_default"] is True
        assert "sage" in {t["title_id"] for t in defaults["titles"]}
        refused = await reader.put(f"{BASE}/titles", json={"titles": [sage]})
        assert refused.status_code == 403
    async with await api.client_for(COMMUNITY, Scope.ADMIN) as admin:
        twice = await admin.put(f"{BASE}/titles", json={"titles": [sage, sage]})
        assert twice.status_code == 422
        wrong = await admin.put(f"{BASE}/titles", json={"titles": [{**sage, "metric": "karma"}]})
        assert wrong.status_code == 422
        assert (await admin.put(f"{BASE}/titles", json={"titles": [sage]})).status_code == 200
        top = (await admin.get(f"{BASE}/helpfulness?period=2024-05")).json()["entries"][0]
        assert [t["name"] for t in top["titles"]] == ["Sage"]

        event = {"name": "Week one", "first": "2024-05-06", "last": "2024-05-08"}
        put = await admin.put(f"{BASE}/events/week-one", json=event)
        assert put.status_code == 200, put.text
        backwards = await admin.put(f"{BASE}/events/oops", json={**event, "first": "2024-05-09"})
        assert backwards.status_code == 422
        assert [e["event_id"] for e in (await admin.get(f"{BASE}/events")).json()] == ["week-one"]
        ranked = (await admin.get(f"{BASE}/helpfulness?event=week-one")).json()
        assert ranked["period"]["kind"] == "event"
        # Three days: three answers to questions, three thanks (days 0-2 of five).
        assert ranked["entries"][0]["points"] == 3 * 3 + 3 * 2
        assert (await admin.delete(f"{BASE}/events/week-one")).status_code == 204
        assert (await admin.delete(f"{BASE}/events/week-one")).status_code == 404
