"""Stored digests served as JSON, Markdown and HTML; members' personalized digests only
with their consent; another community's digests are not found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_api.privacy import PrivacyRepository
from pepite_contracts import ConsentFlags
from pepite_kit import Database
from pepite_reports.digests import (
    Cited,
    Digest,
    KeyNumber,
    Section,
    SectionKind,
    Statement,
    to_markdown,
)

pytestmark = pytest.mark.asyncio

MONDAY = datetime(2024, 5, 6, tzinfo=UTC)
ANN = "discord:acme:ann"
BOB = "discord:acme:bob"


def digest(community_id: str, week: int, *, member_id: str | None = None) -> Digest:
    start = MONDAY + timedelta(weeks=week)
    end = start + timedelta(days=7)
    community_digest_id = f"{community_id}:{start:%Y-%m-%d}:{end - timedelta(days=1):%Y-%m-%d}"
    cited = f"discord:{community_id}:{week + 100}"
    return Digest(
        digest_id=f"{community_digest_id}:{member_id}" if member_id else community_digest_id,
        community_id=community_id,
        member_id=member_id,
        title=f"{community_id}: the week of {start:%B} {start.day}",
        period_start=start,
        period_end=end,
        timezone="UTC",
        generated_at=end,
        writer="extractive",
        summary=f"{week + 10} messages from 3 members",
        numbers=[KeyNumber(name="messages", value=week + 10, previous=9)],
        sections=[
            Section(
                kind=SectionKind.HIGHLIGHTS,
                title="Highlights",
                statements=[Statement(text=f"secret-{community_id} <b>", message_ids=[cited])],
            )
        ],
        sources=[
            Cited(
                message_id=cited,
                channel_name="help",
                author_name="ann",
                created_at=start,
                excerpt="How do I log in?",
            )
        ],
    )


async def store(db: Database, collection: str, *digests: Digest) -> None:
    """As the digest service stores them: the model dump, its id as ``_id``."""
    for item in digests:
        document = item.model_dump(mode="python")
        document["_id"] = document.pop("digest_id")
        await db[collection].insert_one(document)


@pytest.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    db = api.state.db
    await store(db, "digests", *(digest("acme", week) for week in range(3)), digest("other", 0))
    await store(
        db,
        "personal_digests",
        digest("acme", 0, member_id=ANN),
        digest("acme", 1, member_id=ANN),
        digest("acme", 1, member_id=BOB),
    )
    async with await api.client_for("acme", Scope.READ) as reader:
        yield reader


async def test_digests_are_listed_newest_period_first_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.get("/v1/communities/acme/digests", params={"limit": 2})).json()
    assert [d["digest_id"] for d in first["items"]] == [
        "acme:2024-05-20:2024-05-26",
        "acme:2024-05-13:2024-05-19",
    ]
    assert first["items"][0] == {
        "digest_id": "acme:2024-05-20:2024-05-26",
        "title": "acme: the week of May 20",
        "period_start": "2024-05-20T00:00:00Z",
        "period_end": "2024-05-27T00:00:00Z",
        "timezone": "UTC",
        "summary": "12 messages from 3 members",
        "writer": "extractive",
        "generated_at": "2024-05-27T00:00:00Z",
    }
    second = (
        await client.get(
            "/v1/communities/acme/digests", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [d["digest_id"] for d in second["items"]] == ["acme:2024-05-06:2024-05-12"]
    assert second["next_cursor"] is None


async def test_a_digest_as_json_markdown_and_html(client: httpx.AsyncClient) -> None:
    url = "/v1/communities/acme/digests/acme:2024-05-06:2024-05-12"
    stored = digest("acme", 0)

    as_json = await client.get(url)
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert Digest.model_validate(as_json.json()) == stored

    markdown = await client.get(url, params={"format": "markdown"})
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text == to_markdown(stored)

    html = await client.get(url, params={"format": "html"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "<b>" not in html.text  # statements are escaped
    assert "secret-acme &lt;b&gt;" in html.text

    bad = await client.get(url, params={"format": "pdf"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["location"] for e in bad.json()["errors"]] == ["query.format"]


async def test_another_communitys_digest_is_not_found_nor_reachable(
    client: httpx.AsyncClient,
) -> None:
    mine = await client.get("/v1/communities/acme/digests/other:2024-05-06:2024-05-12")
    assert mine.status_code == 404
    assert mine.headers["content-type"] == "application/problem+json"
    assert "secret-other" not in mine.text
    for url in (
        "/v1/communities/other/digests",
        "/v1/communities/other/digests/other:2024-05-06:2024-05-12",
    ):
        theirs = await client.get(url)
        assert theirs.status_code == 403
    listed = (await client.get("/v1/communities/acme/digests")).json()["items"]
    assert all(d["digest_id"].startswith("acme:") for d in listed)


async def test_personalized_digests_only_while_the_member_consents(
    api: Api, client: httpx.AsyncClient
) -> None:
    mine = f"/v1/communities/acme/members/{ANN}/digests"
    refused = await client.get(mine)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "consent" in refused.json()["detail"]

    privacy = PrivacyRepository(api.state.db)
    await privacy.set_consent("acme", ANN, ConsentFlags(personalization=True))
    listed = (await client.get(mine)).json()
    assert [d["digest_id"] for d in listed["items"]] == [
        f"acme:2024-05-13:2024-05-19:{ANN}",
        f"acme:2024-05-06:2024-05-12:{ANN}",
    ]
    one = await client.get(f"{mine}/acme:2024-05-13:2024-05-19:{ANN}", params={"format": "json"})
    assert one.status_code == 200
    assert one.json()["member_id"] == ANN
    markdown = await client.get(
        f"{mine}/acme:2024-05-13:2024-05-19:{ANN}", params={"format": "markdown"}
    )
    assert markdown.text == to_markdown(digest("acme", 1, member_id=ANN))
    # Bob's digest is not Ann's to read, even by its id.
    bobs = await client.get(f"{mine}/acme:2024-05-13:2024-05-19:{BOB}")
    assert bobs.status_code == 404

    await privacy.set_consent("acme", ANN, ConsentFlags(personalization=False))
    assert (await client.get(mine)).status_code == 403
    assert (await client.get(f"{mine}/acme:2024-05-13:2024-05-19:{ANN}")).status_code == 403
