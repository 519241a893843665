"""Members' journals over the API: read page by page, exported as Markdown, refused without
consent, and kept within their community."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_api.privacy import PrivacyRepository
from pepite_contracts import ConsentFlags
from pepite_digest.journal_repository import JournalRepository
from pepite_reports.journals import (
    JournalEntry,
    JournalStats,
    MoodOfDay,
    Quoted,
    UnlockedTitle,
    journal_entry_id,
)

pytestmark = pytest.mark.asyncio

ANN, BOB = "discord:acme:ann", "discord:acme:bob"
BASE = "/v1/communities/acme/members"
DAYS = [date(2024, 5, 5), date(2024, 5, 6), date(2024, 5, 7)]


def entry(day: date) -> JournalEntry:
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return JournalEntry(
        entry_id=journal_entry_id(ANN, day),
        community_id="acme",
        member_id=ANN,
        member_name="ann",
        day=day,
        timezone="Europe/Paris",
        generated_at=at,
        mood=MoodOfDay(dominant="joyful", moods={"joyful": 2}, sentiments={"positive": 2}),
        challenges=[],
        wins=[
            Quoted(
                message_id="discord:acme:1",
                channel_name="help",
                created_at=at,
                excerpt="it works now",
            )
        ],
        actions=[],
        stats=JournalStats(
            messages=2,
            channels=1,
            replies_received=1,
            reactions_received=0,
            questions_asked=0,
            questions_answered=0,
            streak_days=1,
        ),
        titles_unlocked=[
            UnlockedTitle(
                title_id="first_words", name="First words", description="Wrote a first message."
            )
        ]
        if day == DAYS[0]
        else [],
    )


@pytest.fixture
async def reader(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """Ann keeps a journal of three days (stored as the digest service stores it); Bob,
    a member too, chose nothing."""
    db = api.state.db
    await db["members"].insert_many(
        [
            {"_id": ANN, "community_id": "acme", "name": "ann", "platform": "discord"},
            {"_id": BOB, "community_id": "acme", "name": "bob", "platform": "discord"},
        ]
    )
    await PrivacyRepository(db).set_consent("acme", ANN, ConsentFlags(journal=True))
    for day in DAYS:
        await JournalRepository(db).save(entry(day))
    async with await api.client_for("acme", Scope.READ) as client:
        yield client


async def test_read_page_by_page(reader: httpx.AsyncClient) -> None:
    url = f"{BASE}/{ANN}/journal"
    first = await reader.get(url, params={"from": "2024-05-01", "to": "2024-05-31", "limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [e["day"] for e in page["items"]] == ["2024-05-05", "2024-05-06"]
    assert page["items"][0]["titles_unlocked"][0]["name"] == "First words"
    second = await reader.get(
        url, params={"from": "2024-05-01", "to": "2024-05-31", "cursor": page["next_cursor"]}
    )
    assert [e["day"] for e in second.json()["items"]] == ["2024-05-07"]
    assert second.json()["next_cursor"] is None
    one_day = await reader.get(url, params={"from": "2024-05-06", "to": "2024-05-06"})
    assert [e["entry_id"] for e in one_day.json()["items"]] == [f"{ANN}:2024-05-06"]


async def test_markdown_export(reader: httpx.AsyncClient) -> None:
    response = await reader.get(
        f"{BASE}/{ANN}/journal.md", params={"from": "2024-05-01", "to": "2024-05-31"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"] == (
        'attachment; filename="journal-ann-2024-05-01-2024-05-31.md"'
    )
    text = response.text
    assert text.startswith("# Journal of ann\n")
    assert text.count("\n## ") == 3
    assert "## Monday 06 May 2024" in text
    assert "“it works now” (#help, 12:00, `discord:acme:1`)" in text


async def test_refused_without_consent_or_member(reader: httpx.AsyncClient) -> None:
    for path in ("journal", "journal.md"):
        refused = await reader.get(f"{BASE}/{BOB}/{path}")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert "has not consented to a journal" in refused.json()["detail"]
        unknown = await reader.get(f"{BASE}/discord:acme:nobody/{path}")
        assert unknown.status_code == 404
    backwards = await reader.get(
        f"{BASE}/{ANN}/journal", params={"from": "2024-05-07", "to": "2024-05-01"}
    )
    assert backwards.status_code == 422
    assert "query.to" in backwards.json()["detail"]
    bad_day = await reader.get(f"{BASE}/{ANN}/journal", params={"from": "May 1st"})
    assert bad_day.status_code == 422
    assert bad_day.json()["errors"][0]["location"] == "query.from"


async def test_other_tenants_see_nothing(api: Api, reader: httpx.AsyncClient) -> None:
    async with await api.client_for("other", Scope.ADMIN) as other:
        # Ann under the other community's address: no such member there.
        assert (await other.get(f"/v1/communities/other/members/{ANN}/journal")).status_code == 404
        # The other community's key on Acme's address: refused outright.
        assert (await other.get(f"{BASE}/{ANN}/journal.md")).status_code == 403


async def test_member_export_carries_the_journal(api: Api, reader: httpx.AsyncClient) -> None:
    async with await api.client_for("acme", Scope.ADMIN) as admin:
        document = (await admin.get(f"{BASE}/{ANN}/export")).json()
    assert [j["_id"] for j in document["journals"]] == [journal_entry_id(ANN, d) for d in DAYS]
