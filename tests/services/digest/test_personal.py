"""Personalized digests on the hand-built week: what concerns the reader first, the rest in
the order of their interests, and nobody named who did not agree to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from tests.conftest import Stack
from tests.kafka_helpers import read_topic
from tests.services.digest.test_lore import BEFORE, MONDAY, WEEK, at, ids, message, statements
from typer.testing import CliRunner, Result

from pepite_contracts import (
    ConsentChange,
    ConsentFlags,
    DigestPublished,
    MemberConsentChanged,
    MemberErased,
    MemberErasure,
    MessageKind,
    Topic,
    decode_event,
)
from pepite_digest.cli import digest_command
from pepite_digest.consent import ConsentRepository
from pepite_digest.handlers import MemberEventsHandler
from pepite_digest.personal import Directory, MemberNames
from pepite_digest.personal_repository import PERSONAL_DIGESTS, PersonalDigestRepository
from pepite_digest.personal_service import NotConsentedError, PersonalDigestService
from pepite_digest.schedule import DigestScheduler
from pepite_digest.service import DigestService
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics
from pepite_reports.digests.models import Digest, SectionKind
from pepite_reports.digests.render import to_html, to_markdown

ANN, BOB, CID, DEE, GUS, HAL = (
    f"discord:acme:{name}" for name in ("ann", "bob", "cid", "dee", "gus", "hal")
)
LAST_DAY = MONDAY + timedelta(days=6)
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def mentioning(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**doc, "mentions": [{"member_id": f"discord:acme:{n}", "name": n} for n in names]}


#: Ann's weeks before: she writes in #news mostly, and once answered dee in #billing.
LOOKBACK = [
    message(100, "dee", "Why are invoices rounded to the cent twice?", MessageKind.QUESTION,
            at(-20, 10), channel="billing"),
    message(101, "ann", "Looking forward to the next community meetup, count me in",
            MessageKind.SOCIAL, at(-10, 10), channel="news"),
    message(102, "ann", "The meetup slides from last time are great", MessageKind.SOCIAL,
            at(-9, 10), channel="news"),
    message(103, "ann", "It is a known rounding bug, fixed in the next release",
            MessageKind.ANSWER, at(-20, 11), reply_to=100, channel="billing"),
]  # fmt: skip
#: The week's messages concerning Ann, and a question in her channel.
EXTRA = [
    message(20, "hal", "Will the Friday meetup be recorded for remote members?",
            MessageKind.QUESTION, at(5, 10), channel="news"),
    message(21, "cid", "glad it worked, Gustave had the same problem last month",
            MessageKind.SOCIAL, at(0, 11), reply_to=3),
    message(22, "gus", "Same here, I will be at the meetup on Friday", MessageKind.SOCIAL,
            at(2, 9), reply_to=101, channel="news"),
    mentioning(message(23, "gus", "@ann can you share your single sign-on config? bob asked too",
                       MessageKind.SOCIAL, at(3, 15)), "ann"),
]  # fmt: skip
#: Named by the community digest, agreed to nothing: never named to Ann.
HIDDEN = ("bob", "gus", "gustave", "dee", "fay", BOB, GUS, DEE, "discord:acme:fay")


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await mongo_db["communities"].insert_one(
        {"_id": "acme", "name": "Acme Users", "timezone": "Europe/Paris"}
    )
    await mongo_db["messages"].insert_many([*LOOKBACK, *BEFORE, *WEEK, *EXTRA])
    await mongo_db["members"].insert_many(
        [
            {
                "_id": f"discord:acme:{name}",
                "community_id": "acme",
                "name": name,
                "display_name": display,
                "is_bot": False,
                "first_seen_at": at(4, 8) if name == "fay" else at(-30, 8),
            }
            for name, display in (
                ("ann", None),
                ("bob", None),
                ("cid", None),
                ("dee", None),
                ("fay", None),
                ("gus", "Gustave"),
                ("hal", None),
            )
        ]
    )
    # Ann and Hal want personal digests; Cid keeps a journal, so may be named.
    await consent(mongo_db, ANN, personalization=True)
    await consent(mongo_db, HAL, personalization=True)
    await consent(mongo_db, CID, journal=True)
    return mongo_db


def consent_change(member_id: str, at: datetime, **flags: bool) -> MemberConsentChanged:
    return MemberConsentChanged(
        community_id="acme",
        payload=ConsentChange(
            member_id=member_id,
            community_id="acme",
            consent=ConsentFlags(**flags),
            changed_at=at,
        ),
    )


async def consent(db: Database, member_id: str, **flags: bool) -> None:
    await ConsentRepository(db).record([consent_change(member_id, T0, **flags).payload])


async def week(db: Database) -> Digest:
    return await DigestService(db).community_digest("acme", MONDAY, LAST_DAY)


async def test_what_concerns_the_reader_comes_first_then_their_channels(db: Database) -> None:
    community = await week(db)
    digest = await PersonalDigestService(db).member_digest(community, ANN)

    assert digest.digest_id == "acme:2024-05-06:2024-05-12:discord:acme:ann"
    assert digest.member_id == ANN
    assert digest.sections[0].kind is SectionKind.FOR_YOU
    assert statements(digest, SectionKind.FOR_YOU) == [
        (
            "Your question in #help “How do I configure the login redirect for single "
            "sign-on?” was answered by a member: “Set the redirect url in settings, then "
            "restart the app”",
            ids(1, 2),
        ),
        (
            "cid replied to you in #help: “glad it worked, a member had the same problem "
            "last month”",
            ids(3, 21),
        ),
        # A reply this week to her message of the week before.
        ("A member replied to you in #news: “Same here, I will be at the meetup on Friday”",
         ids(22)),
        ("A member mentioned you in #help: “@ann can you share your single sign-on config? "
         "a member asked too”", ids(23)),
    ]  # fmt: skip

    # Her channel's question comes first; the community's order is by time.
    waiting = [i for _, i in statements(community, SectionKind.UNANSWERED_QUESTIONS)]
    assert waiting == [ids(4), ids(20), ids(11)]
    mine = [i for _, i in statements(digest, SectionKind.UNANSWERED_QUESTIONS)]
    assert mine == [ids(20), ids(4), ids(11)]

    # Every statement cites messages of the week, every source is cited.
    week_ids = {m["_id"] for m in [*WEEK, *EXTRA]}
    assert digest.cited_ids() <= week_ids
    assert {s.message_id for s in digest.sources} == digest.cited_ids()
    stored = await PersonalDigestRepository(db).get(digest.digest_id)
    assert stored is not None
    assert stored.model_dump(exclude={"generated_at"}) == digest.model_dump(
        exclude={"generated_at"}
    )
    # Built again, it replaces the stored one.
    await PersonalDigestService(db).member_digest(community, ANN)
    assert await db[PERSONAL_DIGESTS].count_documents({}) == 1


async def test_members_who_did_not_consent_are_never_named(db: Database) -> None:
    community = await week(db)
    community_text = to_markdown(community).lower()
    assert all(name in community_text for name in ("bob", "gus", "dee", "fay"))

    digest = await PersonalDigestService(db).member_digest(community, ANN)
    stored = await db[PERSONAL_DIGESTS].find_one({"_id": digest.digest_id})
    for shown in (digest.model_dump_json(), to_markdown(digest), to_html(digest), str(stored)):
        text = shown.lower()
        for hidden in HIDDEN:
            assert hidden.lower() not in text
        assert "a member" in text
        assert "cid" in text  # agreed to a journal: may be named
        assert "ann asked in #help" in text  # the reader
    authors = {s.author_name for s in digest.sources}
    assert authors == {"ann", "cid", "hal", "A member"}


async def test_no_consent_no_digest(db: Database) -> None:
    community = await week(db)
    with pytest.raises(NotConsentedError, match="discord:acme:bob"):
        await PersonalDigestService(db).member_digest(community, BOB)
    # Journal consent is not personalization.
    with pytest.raises(NotConsentedError):
        await PersonalDigestService(db).member_digest(community, CID)
    assert await db[PERSONAL_DIGESTS].count_documents({}) == 0


async def test_the_command_builds_one_members_digest_and_refuses_without_consent(
    db: Database, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", stack.mongodb_uri)
    monkeypatch.setenv("PEPITE_MONGODB_DB", db.name)
    period = ["-c", "acme", "--from", "2024-05-06", "--to", "2024-05-12"]
    app = typer.Typer()
    app.command()(digest_command)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, [*period, *args])

    # The command runs its own event loop: off this test's loop.
    refused = await asyncio.to_thread(invoke, "--member", BOB)
    assert refused.exit_code == 1
    assert "discord:acme:bob' has not turned personalization on" in refused.stderr
    assert await db["digests"].count_documents({}) == 0  # refused before building anything
    assert await db[PERSONAL_DIGESTS].count_documents({}) == 0

    built = await asyncio.to_thread(invoke, "--member", ANN, "--format", "json")
    assert built.exit_code == 0, built.stderr
    digest = Digest.model_validate_json(built.stdout)
    assert digest.member_id == ANN
    assert digest.sections[0].kind is SectionKind.FOR_YOU
    assert await db[PERSONAL_DIGESTS].distinct("_id") == [digest.digest_id]


async def test_withdrawal_and_erasure_delete_personal_digests(db: Database) -> None:
    community = await week(db)
    service = PersonalDigestService(db)
    ann = (await service.member_digest(community, ANN)).digest_id
    hal = (await service.member_digest(community, HAL)).digest_id
    handler = MemberEventsHandler(ConsentRepository(db), [PersonalDigestRepository(db)])

    # Ann keeps a journal but stops personalization: her digests go, Hal's stay.
    await handler([consent_change(ANN, T0 + timedelta(days=1), journal=True)])
    assert await db[PERSONAL_DIGESTS].distinct("_id") == [hal]

    erasure = MemberErasure(
        member_id=HAL, community_id="acme", pseudonym="member-1", requested_at=T0
    )
    await handler([MemberErased(community_id="acme", payload=erasure)])
    assert await db[PERSONAL_DIGESTS].count_documents({}) == 0

    # An erased member's words leave with them from every digest that quotes them.
    await consent_later(db, ANN)
    await service.member_digest(community, ANN)
    gus = MemberErasure(member_id=GUS, community_id="acme", pseudonym="member-2", requested_at=T0)
    await handler([MemberErased(community_id="acme", payload=gus)])
    assert await db[PERSONAL_DIGESTS].find_one({"_id": ann}) is None


async def consent_later(db: Database, member_id: str) -> None:
    await ConsentRepository(db).record(
        [consent_change(member_id, T0 + timedelta(days=2), personalization=True).payload]
    )


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names([Topic.NOTIFICATIONS]))
    async with EventPublisher(kafka_settings, client_id="test-personal") as events:
        yield events


async def test_the_scheduler_announces_each_consenting_members_digest_once(
    db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> None:
    topic = kafka_settings.topic_name(Topic.NOTIFICATIONS)
    monday_after = datetime(2024, 5, 13, 9, 30, tzinfo=UTC)
    scheduler = DigestScheduler(db, publisher, notifications_topic=topic)
    assert await scheduler.publish_due(monday_after) == ["acme:2024-05-06:2024-05-12"]
    assert await scheduler.publish_due(monday_after + timedelta(hours=1)) == []
    again = DigestScheduler(db, publisher, notifications_topic=topic)
    assert await again.publish_due(monday_after + timedelta(days=1)) == []

    events = [decode_event(value) for value in await read_topic(kafka_settings, topic)]
    assert all(isinstance(e, DigestPublished) for e in events)
    notices = sorted(
        (e.payload.member_id or "", e.payload.digest_id)
        for e in events
        if isinstance(e, DigestPublished)
    )
    assert notices == [
        ("", "acme:2024-05-06:2024-05-12"),
        (ANN, f"acme:2024-05-06:2024-05-12:{ANN}"),
        (HAL, f"acme:2024-05-06:2024-05-12:{HAL}"),
    ]
    assert len({e.event_id for e in events}) == 3
    assert sorted(await db[PERSONAL_DIGESTS].distinct("member_id")) == [ANN, HAL]


def test_hidden_names_go_whole_and_once_channels_stay() -> None:
    directory = Directory.of(
        nameable={CID},
        known=[
            MemberNames(BOB, ("bob", "Bob Smith")),
            MemberNames("discord:acme:a", ("a",)),
            MemberNames(CID, ("cid",)),
            MemberNames("discord:acme:helpbot", ("helpbot",), is_bot=True),
        ],
        messages=[],
    )
    text = "bob: ask Bob Smith or @BOB in #bob, a cid and helpbot answer"
    naming = directory.naming(ANN, [text])
    assert naming.text(text) == (
        "A member: ask a member or a member in #bob, a member cid and helpbot answer"
    )
    # The reader's own names stay.
    assert directory.naming(BOB, [text]).text("bob: hi") == "bob: hi"
