"""Unanswered questions: listed once they waited long enough, removed when answered,
alerted once (read back from the real broker), gone when their author is erased."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.kafka_helpers import read_topic
from tests.services.digest.test_lore import at, ids, message

from pepite_contracts import (
    AlertRaised,
    MemberErasure,
    MessageKind,
    Topic,
    decode_event,
    deterministic_event_id,
)
from pepite_digest.__main__ import member_data_owners
from pepite_digest.settings import Settings
from pepite_digest.unanswered import UnansweredWatcher
from pepite_digest.unanswered_repository import UnansweredRepository
from pepite_kit import Database, EventPublisher, KafkaSettings, Runtime, ensure_topics

pytestmark = pytest.mark.asyncio

Q, A = MessageKind.QUESTION, MessageKind.ANSWER
ASKED = at(0, 10)


def hours(n: float) -> datetime:
    return ASKED + timedelta(hours=n)


QUESTIONS = [
    message(201, "ann", "How do I rotate the API keys without downtime for workers?", Q, ASKED),
    # Answered by a linked reply ten minutes later.
    message(
        202, "cid", "Does the export include archived projects, or only active ones?", Q, hours(1)
    ),
    message(203, "bob", "Archived ones too, since the last release", A, hours(1.2), reply_to=202),
    # Addressed to someone: theirs to answer, not the community's.
    message(204, "dee", "gus: could you look at my ticket about the billing page?", Q, hours(2)),
    message(
        205,
        "helpbot",
        "Did you know you can search the docs from the chat window?",
        Q,
        hours(2),
        bot=True,
    ),
    # Asked before the horizon: no longer watched.
    message(
        206,
        "eve",
        "Is anyone else seeing slow page loads on the dashboard today?",
        Q,
        ASKED - timedelta(days=20),
    ),
]


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names([Topic.NOTIFICATIONS]))
    async with EventPublisher(kafka_settings, client_id="test-unanswered") as events:
        yield events


@pytest.fixture
async def watcher(
    mongo_db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings
) -> UnansweredWatcher:
    await mongo_db["communities"].insert_one({"_id": "acme", "timezone": "Europe/Paris"})
    await mongo_db["messages"].insert_many(QUESTIONS)
    return UnansweredWatcher(
        mongo_db,
        publisher,
        notifications_topic=kafka_settings.topic_name(Topic.NOTIFICATIONS),
        after=timedelta(hours=24),
        horizon=timedelta(days=14),
    )


async def listed(db: Database) -> list[str]:
    return [q.question_id for q in await UnansweredRepository(db).listed("acme")]


async def test_listed_after_the_delay_alerted_once_and_removed_when_answered(
    mongo_db: Database, watcher: UnansweredWatcher, kafka_settings: KafkaSettings
) -> None:
    assert await watcher.check(hours(23)) == []
    assert await listed(mongo_db) == []

    assert await watcher.check(hours(25)) == ids(201)
    [question] = await UnansweredRepository(mongo_db).listed("acme")
    assert question.channel_name == "help"
    assert question.author_id == "discord:acme:ann"
    assert question.asked_at == ASKED
    assert question.excerpt.startswith("How do I rotate the API keys")
    assert question.alerted_at == hours(25)
    # Looking again, or after a restart, alerts nobody twice.
    assert await watcher.check(hours(26)) == []

    # The answer comes late, linked to the question: it leaves the list.
    await mongo_db["messages"].insert_one(
        message(
            207,
            "bob",
            "Create the new key first, then revoke the old one",
            A,
            hours(30),
            reply_to=201,
        )
    )
    assert await watcher.check(hours(31)) == []
    assert await listed(mongo_db) == []

    events = [
        decode_event(value)
        for value in await read_topic(
            kafka_settings, kafka_settings.topic_name(Topic.NOTIFICATIONS)
        )
    ]
    assert len(events) == 1
    [event] = events
    assert isinstance(event, AlertRaised)
    assert event.community_id == "acme"
    assert event.event_id == deterministic_event_id(
        "alert.raised", "unanswered_question", "discord:acme:201"
    )
    assert event.payload.kind == "unanswered_question"
    assert event.payload.severity == "info"
    assert event.payload.channel is not None
    assert event.payload.channel.name == "help"
    assert "rotate the API keys" in event.payload.detail


async def test_an_answer_that_names_the_asker_counts_and_so_does_the_communitys_delay(
    mongo_db: Database, watcher: UnansweredWatcher
) -> None:
    await mongo_db["communities"].update_one(
        {"_id": "acme"}, {"$set": {"unanswered": {"after_hours": 3}}}
    )
    await mongo_db["messages"].insert_one(
        message(
            208,
            "fay",
            "What is the best way to back up the whole workspace at night?",
            Q,
            hours(0.5),
        )
    )
    assert await watcher.check(hours(2)) == []
    assert set(await watcher.check(hours(4))) == set(ids(201, 208))

    # Unlinked, but naming fay in the channel within two hours: her answer.
    answer = message(209, "gus", "fay: the nightly export in settings does that", A, hours(1))
    answer["mentions"] = [{"member_id": "discord:acme:fay"}]
    await mongo_db["messages"].insert_one(answer)
    await watcher.check(hours(5))
    assert await listed(mongo_db) == ids(201)


async def test_an_erased_members_questions_leave_the_list(
    mongo_db: Database, watcher: UnansweredWatcher, publisher: EventPublisher
) -> None:
    await watcher.check(hours(25))
    assert await listed(mongo_db) == ids(201)
    erasure = MemberErasure(
        member_id="discord:acme:ann",
        community_id="acme",
        pseudonym="erased:acme:0123456789abcdef",
        requested_at=datetime(2024, 5, 8, tzinfo=UTC),
    )
    runtime = Runtime(settings=Settings(), db=mongo_db, publisher=publisher)
    [owner] = [o for o in member_data_owners(runtime) if isinstance(o, UnansweredRepository)]
    await owner.erase(erasure)
    await owner.erase(erasure)  # a replay finds nothing left
    assert await listed(mongo_db) == []
