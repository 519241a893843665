"""The Personal Logger on a hand-built day whose mood, challenges, wins and actions are known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pepite_contracts import (
    ConsentChange,
    ConsentFlags,
    MemberConsentChanged,
    MemberErased,
    MemberErasure,
    MessageKind,
    Mood,
)
from pepite_digest.consent import ConsentRepository
from pepite_digest.handlers import MemberEventsHandler
from pepite_digest.journal import Redactor
from pepite_digest.journal_repository import JOURNAL_PROGRESS, JOURNAL_TITLES
from pepite_digest.journal_schedule import JournalScheduler
from pepite_digest.journal_service import (
    JournalDataOwner,
    JournalNotAllowedError,
    JournalService,
)
from pepite_kit import Database
from pepite_reports.journals import JOURNALS, ActionKind, JournalEntry, to_markdown

PARIS = ZoneInfo("Europe/Paris")
MONDAY, TUESDAY = date(2024, 5, 6), date(2024, 5, 7)
ANN, BOB, CID = "discord:acme:ann", "discord:acme:bob", "discord:acme:cid"
#: Wednesday morning in Paris: Monday and Tuesday have ended.
NOW = datetime(2024, 5, 8, 10, tzinfo=PARIS).astimezone(UTC)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def message(
    n: int,
    author: str,
    text: str,
    kind: MessageKind,
    created_at: datetime,
    *,
    mood: Mood = Mood.NEUTRAL,
    sentiment: str = "neutral",
    reply_to: int | None = None,
    reactions: int = 0,
    mentions: tuple[str, ...] = (),
    channel: str = "help",
) -> dict[str, Any]:
    return {
        "_id": f"discord:acme:{n}",
        "community_id": "acme",
        "platform": "discord",
        "channel": {"id": channel, "name": channel},
        "author": {"id": f"discord:acme:{author}", "name": author, "display_name": None},
        "text": text,
        "created_at": created_at,
        "reply_to_id": f"discord:acme:{reply_to}" if reply_to else None,
        "thread": None,
        "reactions": [{"emoji": "👍", "count": reactions}] if reactions else [],
        "mentions": [{"member_id": m} for m in mentions],
        "analysis": {"kind": kind.value, "sentiment": sentiment, "mood": mood.value},
        "topic_id": None,
    }


DAY = [
    message(1, "ann", "hello all, first time here", MessageKind.SOCIAL, at(MONDAY, 18)),
    message(
        2, "cid", "How do I export all invoices as CSV files?", MessageKind.QUESTION, at(TUESDAY, 9)
    ),
    message(
        3,
        "ann",
        "cid: use the export button in billing, it does them all at once",
        MessageKind.ANSWER,
        at(TUESDAY, 9, 10),
        reply_to=2,
        reactions=2,
        mood=Mood.CONFIDENT,
    ),
    message(
        4,
        "ann",
        "my deploy fails with a timeout since this morning, bob any idea?",
        MessageKind.PROBLEM,
        at(TUESDAY, 10),
        mood=Mood.FRUSTRATED,
        sentiment="negative",
    ),
    message(
        5,
        "bob",
        "try raising the timeout to 60s",
        MessageKind.ANSWER,
        at(TUESDAY, 10, 5),
        reply_to=4,
    ),
    message(
        6,
        "ann",
        "it works now, thanks bob and cid!",
        MessageKind.SATISFACTION,
        at(TUESDAY, 11),
        mood=Mood.JOYFUL,
        sentiment="positive",
        reactions=1,
    ),
    message(11, "dee", "hi everyone, I just joined", MessageKind.SOCIAL, at(TUESDAY, 11, 55)),
    message(
        7,
        "ann",
        "welcome dee, you will love it here",
        MessageKind.ENCOURAGEMENT,
        at(TUESDAY, 12),
        mood=Mood.JOYFUL,
        sentiment="positive",
        channel="general",
    ),
    message(
        8,
        "ann",
        "Does anyone know how to rotate API keys from the dashboard?",
        MessageKind.QUESTION,
        at(TUESDAY, 13),
        mood=Mood.CURIOUS,
    ),
    message(
        9,
        "ann",
        "Great guide on webhooks: https://example.com/webhooks",
        MessageKind.RESOURCE,
        at(TUESDAY, 14),
        mood=Mood.JOYFUL,
        sentiment="positive",
    ),
    message(
        10, "cid", "ann: thanks a lot", MessageKind.GRATITUDE, at(TUESDAY, 15), mentions=(ANN,)
    ),
]


def consent(member: str, at_: datetime, **flags: bool) -> MemberConsentChanged:
    return MemberConsentChanged(
        community_id="acme",
        payload=ConsentChange(
            member_id=member, community_id="acme", consent=ConsentFlags(**flags), changed_at=at_
        ),
    )


@pytest.fixture
async def community(mongo_db: Database) -> MemberEventsHandler:
    """Ann keeps a journal, Bob allows personalization, Cid and Dee (a newcomer) chose
    nothing."""
    await mongo_db["communities"].insert_one({"_id": "acme", "timezone": "Europe/Paris"})
    await mongo_db["messages"].insert_many(DAY)
    handler = MemberEventsHandler(ConsentRepository(mongo_db), [JournalDataOwner(mongo_db)])
    await handler([consent(ANN, NOW, journal=True), consent(BOB, NOW, personalization=True)])
    return handler


async def stored(db: Database, member: str) -> list[JournalEntry]:
    cursor = db[JOURNALS].find({"member_id": member}).sort("day", 1)
    return [JournalEntry.model_validate({**d, "entry_id": d["_id"]}) async for d in cursor]


async def test_a_day_of_the_member_told_from_their_messages(
    mongo_db: Database, community: MemberEventsHandler
) -> None:
    scheduler = JournalScheduler(mongo_db, poll_s=1, catch_up_days=31)
    assert await scheduler.build_due(NOW) == 2

    monday, tuesday = await stored(mongo_db, ANN)
    assert (monday.entry_id, tuesday.entry_id) == (f"{ANN}:2024-05-06", f"{ANN}:2024-05-07")
    assert tuesday.timezone == "Europe/Paris"
    assert tuesday.mood.dominant == "joyful"
    assert tuesday.mood.moods == {"confident": 1, "frustrated": 1, "joyful": 3, "curious": 1}
    assert tuesday.mood.sentiments == {"neutral": 2, "negative": 1, "positive": 3}
    assert [(q.message_id, q.excerpt) for q in tuesday.challenges] == [
        ("discord:acme:4", "my deploy fails with a timeout since this morning, bob any idea?")
    ]
    assert [(q.message_id, q.excerpt) for q in tuesday.wins] == [
        ("discord:acme:6", "it works now, thanks bob and a member!")
    ]
    actions = [(a.kind, a.summary, a.message.message_id) for a in tuesday.actions]
    assert actions == [
        (ActionKind.ANSWER, "Answered a question from a member", "discord:acme:3"),
        (ActionKind.ENCOURAGEMENT, "Encouraged others", "discord:acme:7"),
        (ActionKind.RESOURCE, "Shared a resource", "discord:acme:9"),
    ]
    assert tuesday.actions[0].message.excerpt.startswith("a member: use the export button")
    assert tuesday.actions[1].message.excerpt == "welcome a member, you will love it here"
    stats = tuesday.stats
    assert (stats.messages, stats.channels, stats.questions_asked, stats.questions_answered) == (
        6,
        2,
        1,
        1,
    )
    # Bob's reply to her problem and Cid's thanks addressed to her; 2 + 1 reactions.
    assert (stats.replies_received, stats.reactions_received, stats.streak_days) == (2, 3, 2)
    assert [t.title_id for t in monday.titles_unlocked] == ["first_words"]
    assert [t.title_id for t in tuesday.titles_unlocked] == ["first_answer", "librarian"]
    assert [n.member_id for n in tuesday.named] == [BOB]

    markdown = to_markdown([monday, tuesday])
    assert "**Mood of the day:** joyful" in markdown
    assert "**Helping hand**" in markdown
    assert "`discord:acme:4`" in markdown


async def test_nothing_for_those_who_did_not_consent(
    mongo_db: Database, community: MemberEventsHandler
) -> None:
    await JournalScheduler(mongo_db, catch_up_days=31).build_due(NOW)
    service = JournalService(mongo_db)
    with pytest.raises(JournalNotAllowedError, match="has not consented"):
        await service.member_journal("acme", CID, MONDAY, TUESDAY)
    assert await mongo_db[JOURNALS].distinct("member_id") == [ANN]
    assert await mongo_db[JOURNAL_TITLES].distinct("member_id") == [ANN]
    # Neither Cid (who wrote) nor Dee (only mentioned) is named anywhere.
    everything = " ".join(e.model_dump_json() for e in await stored(mongo_db, ANN))
    assert "cid" not in everything.lower()
    assert "dee" not in everything.lower()


async def test_rebuilding_changes_nothing_and_titles_are_unlocked_once(
    mongo_db: Database, community: MemberEventsHandler
) -> None:
    scheduler = JournalScheduler(mongo_db, catch_up_days=31)
    await scheduler.build_due(NOW)
    first = await stored(mongo_db, ANN)
    # The scheduler remembers how far it went; the command line rebuilds on demand.
    assert await scheduler.build_due(NOW + timedelta(hours=1)) == 0
    again = await JournalService(mongo_db).member_journal("acme", ANN, MONDAY, TUESDAY)
    assert [e.model_dump(exclude={"generated_at"}) for e in again] == [
        e.model_dump(exclude={"generated_at"}) for e in first
    ]
    assert [e.model_dump(exclude={"generated_at"}) for e in await stored(mongo_db, ANN)] == [
        e.model_dump(exclude={"generated_at"}) for e in again
    ]
    assert await mongo_db[JOURNAL_TITLES].count_documents({"member_id": ANN}) == 3


async def test_withdrawals_and_erasure_leave_nothing_behind(
    mongo_db: Database, community: MemberEventsHandler
) -> None:
    await JournalScheduler(mongo_db, catch_up_days=31).build_due(NOW)
    later = NOW + timedelta(hours=1)

    # Bob no longer allows anything: his name leaves Ann's journal.
    await community([consent(BOB, later)])
    tuesday = (await stored(mongo_db, ANN))[1]
    assert tuesday.named == []
    assert tuesday.challenges[0].excerpt.endswith("a member any idea?")
    assert "bob" not in tuesday.model_dump_json().lower()

    # Ann turns her journal off: entries, titles and progress go.
    await community([consent(ANN, later, personalization=True)])
    for collection in (JOURNALS, JOURNAL_TITLES, JOURNAL_PROGRESS):
        assert await mongo_db[collection].count_documents({}) == 0
    with pytest.raises(JournalNotAllowedError):
        await JournalService(mongo_db).member_journal("acme", ANN, MONDAY, TUESDAY)

    # Back on, then erased.
    await community([consent(ANN, later + timedelta(minutes=1), journal=True)])
    await JournalScheduler(mongo_db, catch_up_days=31).build_due(NOW)
    assert await mongo_db[JOURNALS].count_documents({}) == 2
    erasure = MemberErasure(
        member_id=ANN, community_id="acme", pseudonym="erased:acme:x", requested_at=later
    )
    await community([MemberErased(community_id="acme", payload=erasure)])
    for collection in (JOURNALS, JOURNAL_TITLES, JOURNAL_PROGRESS):
        assert await mongo_db[collection].count_documents({}) == 0


async def test_catch_up_is_bounded(mongo_db: Database, community: MemberEventsHandler) -> None:
    # One day of catch-up: only Tuesday, though Ann wrote on Monday too.
    assert await JournalScheduler(mongo_db, catch_up_days=1).build_due(NOW) == 1
    assert [e.day for e in await stored(mongo_db, ANN)] == [TUESDAY]


def test_names_and_mention_markup_are_replaced() -> None:
    redact = Redactor(["Ann-Marie", "ann"], {"discord:acme:42": "Bob"}, "discord:acme:")
    assert (
        redact("ann-marie, @ann and Annie: ask <@42> or <@!7>")
        == "a member, a member and Annie: ask @Bob or a member"
    )
