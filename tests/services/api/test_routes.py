"""The data routes on a seeded community: messages, insights, topics, members, moderation,
consent, export and erasure (events read back from the real broker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import TypeAdapter
from tests.kafka_helpers import read_topic
from tests.services.api.conftest import Api
from tests.services.api.seed import START, Seeded, seed_community

from pepite_api.app import create_app
from pepite_api.keys import KeyRepository, Scope
from pepite_api.messages import MessageOut
from pepite_api.moderation import ModerationQueueHandler, ModerationRepository
from pepite_api.pagination import Page
from pepite_api.settings import Settings
from pepite_classifier.rollups import RollupState, rollup_changes
from pepite_classifier.rollups_repository import RollupRepository
from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MessageAnalyzed,
    MessageKind,
    ModerationScores,
    Platform,
    Sentiment,
    Topic,
    decode_event,
)
from pepite_kit import ensure_topics

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def seeded(api: Api) -> Seeded:
    await seed_community(api.state.db, "other")
    return await seed_community(api.state.db, "acme")


@pytest.fixture
async def admin(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(api.settings, api.settings.topic_names([Topic.MEMBERS_EVENTS]))
    async with await api.client_for("acme", Scope.ADMIN) as client:
        yield client


async def _all_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        sep = "&" if "?" in url else "?"
        page = await client.get(url + (f"{sep}cursor={cursor}" if cursor else ""))
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def test_messages_pages_cover_everything_once_newest_first(
    admin: httpx.AsyncClient, seeded: Seeded
) -> None:
    items = await _all_pages(admin, "/v1/communities/acme/messages?limit=7")
    ids = [item["message_id"] for item in items]
    assert sorted(ids) == sorted(seeded.message_ids)
    times = [str(item["created_at"]) for item in items]
    assert times == sorted(times, reverse=True)
    # Lists are serialized without the response model: they must still match it.
    page = await admin.get("/v1/communities/acme/messages?limit=5")
    strict = TypeAdapter(Page[MessageOut]).validate_json(page.content)
    assert strict.model_dump(mode="json") == page.json()


async def test_message_filters_and_search(admin: httpx.AsyncClient, seeded: Seeded) -> None:
    base = "/v1/communities/acme/messages?limit=200"
    problems = (await admin.get(f"{base}&kind=problem")).json()["items"]
    assert len(problems) == 9  # the tenth is the toxic one
    assert {m["analysis"]["kind"] for m in problems} == {"problem"}
    negative = (await admin.get(f"{base}&sentiment=negative")).json()["items"]
    assert {m["analysis"]["sentiment"] for m in negative} == {"negative"}
    by_member = (await admin.get(f"{base}&author_id={seeded.member_ids[1]}")).json()["items"]
    assert len(by_member) == 15
    assert {m["author"]["id"] for m in by_member} == {seeded.member_ids[1]}
    channel = (await admin.get(f"{base}&channel_id={seeded.channel_ids[2]}")).json()["items"]
    assert {m["channel"]["name"] for m in channel} == {"feedback"}
    # Words: stemmed English ("crashes" finds "crash"), phrases in quotes.
    crash = (await admin.get(f"{base}&q=crash")).json()["items"]
    assert len(crash) == 10
    assert all("crashes" in m["text"] for m in crash)
    phrase = (await admin.get(f'{base}&q="dark mode"')).json()["items"]
    assert len(phrase) == 10
    since = "2024-05-11T00:00:00Z"
    until = "2024-05-16T00:00:00Z"
    window = (await admin.get(f"{base}&since={since}&until={until}")).json()["items"]
    assert len(window) == 10
    naive = await admin.get(f"{base}&since=2024-05-11T00:00:00")
    assert naive.status_code == 422
    one = await admin.get(f"/v1/communities/acme/messages/{seeded.message_ids[1]}")
    assert one.json()["analysis"]["kind"] == "problem"
    assert one.json()["reactions"] == 1


async def test_word_search_any_word_phrases_exclusions_and_pages(
    admin: httpx.AsyncClient, seeded: Seeded
) -> None:
    base = "/v1/communities/acme/messages?limit=200"

    async def texts(q: str) -> list[str]:
        response = await admin.get(base, params={"q": q})
        assert response.status_code == 200, response.text
        return [m["text"] for m in response.json()["items"]]

    # Any of the words; case and accents do not matter.
    either = await texts("DASHBOARD crashing")
    assert len(either) == 20
    assert all("dashboard" in t or "crashes" in t for t in either)
    assert len(await texts("dashbóard")) == 10
    # A phrase needs its words in order; "-word" excludes.
    assert await texts('"mode dark"') == []
    assert len(await texts("login -redirect")) == 10
    assert all("crashes" in t for t in await texts("login -redirect"))
    # Filters narrow a search; pages of a search cover its matches once, newest first.
    assert len(await texts(f"login {seeded.secret_word} -number")) == 0
    kind = await admin.get(base, params={"q": "login", "kind": "question"})
    assert {m["analysis"]["kind"] for m in kind.json()["items"]} == {"question"}
    items = await _all_pages(admin, "/v1/communities/acme/messages?limit=3&q=login")
    assert len({m["message_id"] for m in items}) == len(items) == 20
    times = [str(m["created_at"]) for m in items]
    assert times == sorted(times, reverse=True)
    # Nothing to look for is said, not answered with an empty page.
    for useless in ("the of", "-login"):
        refused = await admin.get(base, params={"q": useless})
        assert refused.status_code == 422
        assert "no word to look for" in refused.json()["detail"]


async def test_insights_report_counts_and_filters(admin: httpx.AsyncClient, seeded: Seeded) -> None:
    report = (await admin.get("/v1/communities/acme/insights?days=30&until=2024-05-30")).json()
    assert report["window"]["start"] == "2024-05-01"
    assert report["messages"] == 60  # 12 hours apart from May 1, 09:00: all in May 1-30
    kinds = {line["kind"]: line for line in report["kinds"]}
    assert kinds["question"]["count"] == 10
    topic_names = {t["name"] for t in kinds["question"]["topics"]}
    assert "login, redirect" in topic_names
    only = await admin.get("/v1/communities/acme/insights?months=1&kind=problem")
    assert only.status_code == 200
    assert [line["kind"] for line in only.json()["kinds"]] == ["problem"]
    both = await admin.get("/v1/communities/acme/insights?days=3&months=1")
    assert both.status_code == 422
    empty = await admin.get(f"/v1/communities/acme/insights?channel_id=nope{seeded.secret_word}")
    assert empty.status_code == 404


async def test_cached_reports_follow_new_rollups(api_settings: Settings, seeded: Seeded) -> None:
    settings = api_settings.model_copy(update={"insights_cache_seconds": 0.2})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        created = await KeyRepository(app.state.api.db).create(
            name="cache", community_id="acme", scopes=[Scope.READ]
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {created.key}"},
        ) as client:
            url = "/v1/communities/acme/insights?days=30&until=2024-05-30"

            async def messages() -> int:
                response = await client.get(url)
                assert response.status_code == 200
                return int(response.json()["messages"])

            assert await messages() == 60
            # One more message counted, as the classifier would count it.
            one_more = RollupState(
                "acme", seeded.channel_ids[0], START.date(), MessageKind.SOCIAL, Sentiment.NEUTRAL
            )
            await RollupRepository(app.state.api.db).apply(rollup_changes([(None, one_more)]))
            assert await messages() == 60  # cached for 0.2 s
            await asyncio.sleep(0.3)
            await messages()  # served stale while it is recomputed
            await asyncio.sleep(0.3)
            assert await messages() == 61


async def test_topics_largest_first_with_samples(admin: httpx.AsyncClient, seeded: Seeded) -> None:
    topics = (await admin.get("/v1/communities/acme/topics")).json()["items"]
    assert [t["topic_id"] for t in topics] == seeded.topic_ids
    assert "centroid" not in json.dumps(topics)
    detail = (await admin.get(f"/v1/communities/acme/topics/{seeded.topic_ids[0]}")).json()
    assert [m["message_id"] for m in detail["samples"]] == seeded.message_ids[:3]


async def test_members_list_profile_and_consent_event(
    api: Api, admin: httpx.AsyncClient, seeded: Seeded
) -> None:
    members = await _all_pages(admin, "/v1/communities/acme/members?limit=3")
    assert sorted(m["member_id"] for m in members) == seeded.member_ids
    member = seeded.member_ids[0]
    profile = (await admin.get(f"/v1/communities/acme/members/{member}")).json()
    assert profile["activity"]["messages"] == 15
    assert profile["person"]["display_name"] == "Two accounts"
    assert profile["consent"] == {"journal": False, "personalization": False, "ai_processing": True}

    consent = {"journal": True, "personalization": True, "ai_processing": False}
    changed = await admin.put(f"/v1/communities/acme/members/{member}/consent", json=consent)
    assert changed.status_code == 200
    assert (await admin.get(f"/v1/communities/acme/members/{member}")).json()["consent"] == consent
    events = [
        decode_event(value)
        for value in await read_topic(
            api.settings, api.settings.topic_name(Topic.MEMBERS_EVENTS), timeout_s=10
        )
    ]
    [event] = [e for e in events if e.type == "member.consent_changed"]
    assert event.payload.member_id == member  # type: ignore[union-attr]
    assert event.payload.consent.ai_processing is False  # type: ignore[union-attr]


async def test_export_then_erasure(api: Api, admin: httpx.AsyncClient, seeded: Seeded) -> None:
    member = seeded.member_ids[0]
    export = await admin.get(f"/v1/communities/acme/members/{member}/export")
    assert export.status_code == 200
    document = export.json()
    assert document["member_id"] == member
    assert document["identity"]["name"] == "member1"
    assert len(document["messages"]) == 15
    assert all(seeded.secret_word in m["text"] for m in document["messages"])
    assert all("analysis" in m for m in document["messages"])

    erased = await admin.delete(f"/v1/communities/acme/members/{member}")
    assert erased.status_code == 202
    pseudonym = erased.json()["pseudonym"]
    again = await admin.delete(f"/v1/communities/acme/members/{member}")
    assert again.json()["pseudonym"] == pseudonym  # asking twice is one erasure
    events = [
        decode_event(value)
        for value in await read_topic(
            api.settings, api.settings.topic_name(Topic.MEMBERS_EVENTS), timeout_s=10
        )
    ]
    erasures = [e for e in events if e.type == "member.erased"]
    assert {e.payload.member_id for e in erasures} == {member}  # type: ignore[union-attr]
    # What the API holds itself is gone at once: links, consent, moderation authorship.
    db = api.state.db
    assert await db["people"].count_documents({"member_ids": member}) == 0
    assert await db["moderation_items"].count_documents({"author.id": member}) == 0
    refused = await admin.put(
        f"/v1/communities/acme/members/{member}/consent",
        json={"journal": True, "personalization": True, "ai_processing": True},
    )
    assert refused.status_code == 410


def _analyzed(message_id: str, kind: MessageKind, toxicity: float) -> MessageAnalyzed:
    return MessageAnalyzed(
        community_id="acme",
        payload=AnalyzedMessage(
            message_id=message_id,
            platform=Platform.DISCORD,
            community_id="acme",
            channel=ChannelRef(id="c1", name="general"),
            author=Member(id="discord:acme:9", native_id="9", name="troll"),
            created_at=START,
            analysis=Analysis(kind=kind, moderation=ModerationScores(toxicity=toxicity)),
            analyzed_at=datetime.now(UTC),
        ),
    )


async def test_moderation_queue_is_filled_from_analyses_and_announced_once(
    api: Api, admin: httpx.AsyncClient
) -> None:
    topic = api.settings.topic_name(Topic.NOTIFICATIONS)
    await ensure_topics(api.settings, [topic])
    handler = ModerationQueueHandler(
        ModerationRepository(api.state.db),
        api.state.publisher,
        threshold=0.8,
        notifications_topic=topic,
    )
    events = [
        _analyzed("discord:acme:1", MessageKind.SPAM, 0.0),
        _analyzed("discord:acme:2", MessageKind.QUESTION, 0.93),
        _analyzed("discord:acme:3", MessageKind.QUESTION, 0.1),
    ]
    await handler(events)
    await handler(events)  # a replay
    queue = (await admin.get("/v1/communities/acme/moderation")).json()["items"]
    assert sorted(item["message_id"] for item in queue) == ["discord:acme:1", "discord:acme:2"]
    reasons = {item["message_id"]: item["reasons"] for item in queue}
    assert reasons["discord:acme:2"] == ["score:toxicity"]
    notices = [decode_event(v) for v in await read_topic(api.settings, topic, timeout_s=10)]
    flagged = [n for n in notices if n.type == "moderation.flagged"]
    assert (
        sorted(n.payload.message_id for n in flagged)
        == [  # type: ignore[union-attr]
            "discord:acme:1",
            "discord:acme:1",
            "discord:acme:2",
            "discord:acme:2",
        ][::2]
        or len({n.event_id for n in flagged}) == 2
    )

    decided = await admin.post(
        "/v1/communities/acme/moderation/discord:acme:1/decision",
        json={"action": "remove", "note": "spam link"},
    )
    assert decided.json()["status"] == "decided"
    changed = await admin.post(
        "/v1/communities/acme/moderation/discord:acme:1/decision", json={"action": "keep"}
    )
    assert changed.json()["decision"]["action"] == "keep"
    assert [d["action"] for d in changed.json()["history"]] == ["remove"]
    pending = (await admin.get("/v1/communities/acme/moderation")).json()["items"]
    assert [item["message_id"] for item in pending] == ["discord:acme:2"]
    # An edit that makes the message harmless takes it out of the pending queue.
    await handler([_analyzed("discord:acme:2", MessageKind.QUESTION, 0.05)])
    assert (await admin.get("/v1/communities/acme/moderation")).json()["items"] == []
