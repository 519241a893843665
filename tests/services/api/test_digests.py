"""Stored digests served as JSON, Markdown and HTML; members' personalized digests only
with their consent; another community's digests are not found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from tests.kafka_helpers import read_topic
from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_api.privacy import PrivacyRepository
from pepite_contracts import ConsentFlags, DigestRequested, Topic, decode_event
from pepite_kit import Database, ensure_topics
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


# ----- a digest of any period, asked for -----


@pytest.fixture
async def writer(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(api.settings, [api.settings.topic_name(Topic.DIGEST_REQUESTS)])
    async with await api.client_for("acme", Scope.WRITE) as client:
        yield client


async def test_a_requested_digest_is_queued_and_its_status_followed(
    api: Api, writer: httpx.AsyncClient
) -> None:
    answer = await writer.post(
        "/v1/communities/acme/digests", json={"from": "2024-05-06", "to": "2024-05-12"}
    )
    assert answer.status_code == 202
    request = answer.json()
    assert request["status"] == "pending"
    assert (request["first"], request["last"]) == ("2024-05-06", "2024-05-12")
    location = answer.headers["location"]
    assert location == f"/v1/communities/acme/digest-requests/{request['request_id']}"
    assert (await writer.get(location)).json() == request

    records = await read_topic(api.settings, api.settings.topic_name(Topic.DIGEST_REQUESTS))
    events = [decode_event(value) for value in records]
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, DigestRequested)
    assert event.community_id == "acme"
    assert event.payload.request_id == request["request_id"]
    assert (event.payload.first, event.payload.last) == (date(2024, 5, 6), date(2024, 5, 12))

    # The digest service finishes it in the same document.
    await api.state.db["digest_requests"].update_one(
        {"_id": request["request_id"]}, {"$set": {"status": "done", "digest_id": "acme:d"}}
    )
    done = (await writer.get(location)).json()
    assert (done["status"], done["digest_id"]) == ("done", "acme:d")


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"from": "2024-05-12", "to": "2024-05-06"}, "body.to"),
        ({"from": "2024-01-01", "to": "2024-04-02"}, "body.to"),
        ({"from": str(date.today() + timedelta(days=2)), "to": "2099-01-01"}, "body.from"),
        ({"from": "2024-05-06"}, "body.to"),
        ({"from": "yesterday", "to": "2024-05-06"}, "body.from"),
    ],
)
async def test_a_bad_period_is_refused_naming_the_field(
    api: Api, writer: httpx.AsyncClient, period: dict[str, str], field: str
) -> None:
    answer = await writer.post("/v1/communities/acme/digests", json=period)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["location"] for e in answer.json()["errors"]]
    assert await api.state.db["digest_requests"].count_documents({}) == 0


async def test_a_92_day_period_is_accepted(writer: httpx.AsyncClient) -> None:
    answer = await writer.post(
        "/v1/communities/acme/digests", json={"from": "2024-01-01", "to": "2024-04-01"}
    )
    assert answer.status_code == 202


async def test_asking_needs_write_and_the_community(
    writer: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    period = {"from": "2024-05-06", "to": "2024-05-12"}
    assert (await client.post("/v1/communities/acme/digests", json=period)).status_code == 403
    assert (await writer.post("/v1/communities/other/digests", json=period)).status_code == 403


async def test_an_unknown_or_another_communitys_request_is_not_found(
    api: Api, writer: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    missing = await client.get("/v1/communities/acme/digest-requests/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    async with await api.client_for("other", Scope.WRITE) as other:
        theirs = await other.post(
            "/v1/communities/other/digests", json={"from": "2024-05-06", "to": "2024-05-12"}
        )
    request_id = theirs.json()["request_id"]
    assert (await client.get(f"/v1/communities/acme/digest-requests/{request_id}")).status_code == (
        404
    )
    assert (
        await client.get(f"/v1/communities/other/digest-requests/{request_id}")
    ).status_code == 403
