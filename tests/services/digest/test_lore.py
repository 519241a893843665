"""The extractive digest on a hand-built week whose answers are known."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from bson.binary import Binary

from pepite_contracts import MessageKind
from pepite_digest.lore import diverse
from pepite_digest.repository import DigestRepository
from pepite_digest.service import DigestService, EmptyPeriodError
from pepite_kit import Database
from pepite_reports.digests.models import Digest, SectionKind
from pepite_reports.digests.render import to_html, to_markdown

pytestmark = pytest.mark.asyncio

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2024, 5, 6)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Paris, ``day`` days after Monday May 6, 2024."""
    local = datetime(2024, 5, 6, hour, minute, tzinfo=PARIS) + timedelta(days=day)
    return local.astimezone(UTC)


def member(name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": f"discord:acme:{name}", "name": name, "display_name": None, "is_bot": bot}


def message(
    n: int,
    author: str,
    text: str,
    kind: MessageKind,
    created_at: datetime,
    *,
    reply_to: int | None = None,
    reactions: int = 0,
    bot: bool = False,
    channel: str = "help",
    topic: str | None = None,
) -> dict[str, Any]:
    return {
        "_id": f"discord:acme:{n}",
        "community_id": "acme",
        "platform": "discord",
        "channel": {"id": channel, "name": channel},
        "author": member(author, bot=bot),
        "text": text,
        "created_at": created_at,
        "reply_to_id": f"discord:acme:{reply_to}" if reply_to else None,
        "thread": None,
        "reactions": [{"emoji": "👍", "count": reactions}] if reactions else [],
        "mentions": [],
        "analysis": {"kind": kind.value, "sentiment": "neutral"},
        "topic_id": topic,
    }


Q, A = MessageKind.QUESTION, MessageKind.ANSWER

WEEK = [
    message(1, "ann", "How do I configure the login redirect for single sign-on?", Q, at(0, 10)),
    message(
        2,
        "bob",
        "Set the redirect url in settings, then restart the app",
        A,
        at(0, 10, 5),
        reply_to=1,
        reactions=3,
    ),
    message(3, "ann", "thanks, that fixed it!", MessageKind.GRATITUDE, at(0, 10, 9), reply_to=2),
    message(4, "cid", "Is there a way to export all invoices as CSV files at once?", Q, at(1, 9)),
    message(
        5,
        "releasebot",
        "Release 2.0 has been released",
        MessageKind.ANNOUNCEMENT,
        at(1, 12),
        bot=True,
        channel="news",
    ),
    message(
        6,
        "dee",
        "We decided to move the community meetup to Friday evening",
        MessageKind.ANNOUNCEMENT,
        at(2, 18),
        channel="news",
    ),
    message(
        7,
        "eve",
        "Buy cheap followers now, best prices, visit my shop today",
        MessageKind.SPAM,
        at(2, 19),
        reactions=9,
        channel="news",
    ),
    message(8, "gus", "Which plan includes the audit log feature for admins?", Q, at(3, 11)),
    message(
        9,
        "bob",
        "The business plan has the audit log, see the pricing page",
        A,
        at(3, 11, 20),
        reply_to=8,
    ),
    message(
        10,
        "fay",
        "Hello everyone, I run a small bakery and want to use this for orders",
        MessageKind.SOCIAL,
        at(4, 8),
    ),
    # Sunday 23:30 in Paris is 21:30 UTC: still this week where the community lives.
    message(
        11, "gus", "Late question: does the API support webhooks for refunds?", Q, at(6, 23, 30)
    ),
]
BEFORE = [
    # Sunday May 5, 23:30 in Paris: the week before.
    message(0, "ann", "Does anyone know why the dashboard is so slow today?", Q, at(-1, 23, 30)),
]


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await mongo_db["communities"].insert_one(
        {"_id": "acme", "name": "Acme Users", "timezone": "Europe/Paris"}
    )
    await mongo_db["messages"].insert_many([*BEFORE, *WEEK])
    await mongo_db["members"].insert_many(
        [
            {
                "_id": "discord:acme:fay",
                "community_id": "acme",
                "name": "fay",
                "is_bot": False,
                "first_seen_at": at(4, 8),
            },
            {
                "_id": "discord:acme:ann",
                "community_id": "acme",
                "name": "ann",
                "is_bot": False,
                "first_seen_at": at(-30, 8),
            },
        ]
    )
    return mongo_db


def statements(digest: Digest, kind: SectionKind) -> list[tuple[str, list[str]]]:
    for section in digest.sections:
        if section.kind is kind:
            return [(s.text, s.message_ids) for s in section.statements]
    return []


def ids(*numbers: int) -> list[str]:
    return [f"discord:acme:{n}" for n in numbers]


async def test_a_week_in_the_communitys_time_zone_with_known_answers(db: Database) -> None:
    digest = await DigestService(db).community_digest("acme", MONDAY, MONDAY + timedelta(days=6))

    assert digest.digest_id == "acme:2024-05-06:2024-05-12"
    assert digest.period_start == datetime(2024, 5, 5, 22, tzinfo=UTC)
    assert digest.period_end == datetime(2024, 5, 12, 22, tzinfo=UTC)
    assert digest.title == "Acme Users: the week of May 6, 2024"

    top = statements(digest, SectionKind.TOP_QUESTIONS)
    assert (
        "ann asked in #help: “How do I configure the login redirect for single sign-on?” — "
        "answered by bob: “Set the redirect url in settings, then restart the app”",
        ids(1, 2),
    ) in top
    unanswered = statements(digest, SectionKind.UNANSWERED_QUESTIONS)
    assert [message_ids for _, message_ids in unanswered] == [ids(4), ids(11)]
    announcements = statements(digest, SectionKind.ANNOUNCEMENTS)
    assert [message_ids for _, message_ids in announcements] == [ids(6)]  # people, not bots
    welcome = statements(digest, SectionKind.NEW_MEMBERS)
    assert welcome == [
        (
            "Welcome fay! First words in #help: “Hello everyone, I run a small bakery and "
            "want to use this for orders”",
            ids(10),
        )
    ]
    shout_outs = statements(digest, SectionKind.SHOUT_OUTS)
    assert shout_outs[0][0] == "bob answered 2 questions in #help."
    assert set(shout_outs[0][1]) == set(ids(2, 9))

    numbers = {n.name: (n.value, n.previous) for n in digest.numbers}
    assert numbers["messages"] == (10, 1)  # the bot's message is not a member's
    assert numbers["questions"] == (4, 1)
    assert numbers["answered_questions"] == (2, 0)
    assert numbers["new_members"] == (1, 0)

    # Nothing from the spam, nothing from the week before; every source is cited.
    cited = digest.cited_ids()
    assert "discord:acme:7" not in cited
    assert "discord:acme:0" not in cited
    assert {s.message_id for s in digest.sources} == cited

    stored = await db["digests"].find_one({"_id": digest.digest_id})
    assert stored is not None
    assert stored["sections"][0]["statements"][0]["message_ids"]


async def test_markdown_and_html_number_the_sources(db: Database) -> None:
    digest = await DigestService(db).community_digest("acme", MONDAY, MONDAY + timedelta(days=6))
    markdown = to_markdown(digest)
    assert markdown.startswith("# Acme Users: the week of May 6, 2024\n")
    for n, source in enumerate(digest.sources, start=1):
        assert f"[^{n}]: #{source.channel_name}" in markdown
        assert f"`{source.message_id}`" in markdown
    html = to_html(digest)
    assert html.count('<li id="source-') == len(digest.sources)
    assert "<script" not in html


async def test_an_empty_period_is_an_error_not_an_empty_digest(db: Database) -> None:
    with pytest.raises(EmptyPeriodError, match="no messages in community 'acme'"):
        await DigestService(db).community_digest("acme", date(2023, 1, 1), date(2023, 1, 7))
    with pytest.raises(ValueError, match="ends"):
        await DigestService(db).community_digest("acme", MONDAY, MONDAY - timedelta(days=1))


def direction(*weights: float) -> np.ndarray:
    """A unit vector of the embedder's size, ``weights`` on its first axes."""
    vector = np.zeros(384, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def embedding(n: int, vector: np.ndarray) -> dict[str, Any]:
    """A ``message_embeddings`` document as the classifier stores it."""
    return {
        "_id": f"discord:acme:{n}",
        "community_id": "acme",
        "kind": "answer",
        "vector": Binary(vector.astype(np.float32).tobytes()),
    }


#: A topic new this week: 101 and 102 say the same in other words (their vectors agree),
#: and both drew more reactions than the others.
SSO_TOPIC = [
    message(
        101,
        "bob",
        "Reset it from the account page under security settings",
        A,
        at(1, 10),
        reactions=4,
        topic="t-sso",
    ),
    message(
        102,
        "cid",
        "Open your profile, pick forgot credentials, follow the email link",
        A,
        at(1, 11),
        reactions=4,
        topic="t-sso",
    ),
    message(
        103,
        "dee",
        "Single sign-on needs the identity provider metadata uploaded first",
        A,
        at(2, 10),
        reactions=1,
        topic="t-sso",
    ),
    message(
        104,
        "gus",
        "Okta groups map to roles only after the next sync runs",
        A,
        at(2, 11),
        reactions=1,
        topic="t-sso",
    ),
    message(
        105,
        "ann",
        "Logging in with Google fails for accounts created before May",
        Q,
        at(3, 10),
        topic="t-sso",
    ),
]
SSO_VECTORS = {
    101: direction(1),
    102: direction(1, 0.05),
    103: direction(0, 0, 1),
    104: direction(0, 0, 0, 1),
    105: direction(0, 0, 0, 0, 1),
}


async def new_topic_ids(db: Database) -> list[str]:
    digest = await DigestService(db).community_digest("acme", MONDAY, MONDAY + timedelta(days=6))
    [(_, message_ids)] = statements(digest, SectionKind.NEW_TOPICS)
    return message_ids


async def test_representatives_follow_the_vectors_when_messages_have_them(db: Database) -> None:
    await db["messages"].insert_many(SSO_TOPIC)
    await db["topics"].insert_one({"_id": "t-sso", "community_id": "acme", "name": "sso"})
    # Words alone: the two most reacted-to messages share no word, both are quoted.
    assert set(ids(101, 102)) <= set(await new_topic_ids(db))

    await db["message_embeddings"].insert_many([embedding(n, v) for n, v in SSO_VECTORS.items()])
    chosen = await new_topic_ids(db)
    # By their vectors they repeat each other: one of them, and two other views instead.
    assert len(chosen) == 3
    assert len(set(chosen) & set(ids(101, 102))) == 1
    assert len(set(chosen) & set(ids(103, 104, 105))) == 2


async def test_the_period_reads_vectors_where_stored_and_words_stand_in_elsewhere(
    db: Database,
) -> None:
    await db["messages"].insert_many(SSO_TOPIC)
    # 105 has no vector: its words compare it with the others.
    await db["message_embeddings"].insert_many(
        [embedding(n, v) for n, v in SSO_VECTORS.items() if n != 105]
    )
    period = await DigestRepository(db).messages("acme", at(0, 0), at(7, 0))
    vectors = {m.message_id: m.vector for m in period if m.vector is not None}
    assert set(vectors) == set(ids(101, 102, 103, 104))
    assert np.allclose(vectors["discord:acme:102"], SSO_VECTORS[102])

    sso = [m for m in period if m.topic_id == "t-sso"]
    picked = [m.message_id for m in diverse(sso, k=4)]
    assert picked[0] in ids(101, 102)
    assert set(picked[1:]) == set(ids(103, 104, 105))
    # Without vectors the same messages are chosen by engagement and words.
    plain = [replace(m, vector=None) for m in sso]
    assert set(ids(101, 102)) <= {m.message_id for m in diverse(plain, k=3)}
