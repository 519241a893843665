"""The classifier's writes against a real MongoDB: idempotent, newest copy wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pepite_classifier.repository import ClassifierRepository
from pepite_classifier.service import plan_writes
from pepite_contracts import (
    ChannelRef,
    Event,
    Member,
    MemberJoined,
    MembershipChange,
    MessageIngested,
    NormalizedMessage,
    Platform,
    Reaction,
)
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes

pytestmark = pytest.mark.asyncio

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
ANN = Member(id="discord:acme:u1", native_id="u1", name="ann")


def ingested(n: int, **overrides: Any) -> MessageIngested:
    fields: dict[str, Any] = {
        "id": f"discord:acme:{n}",
        "platform": Platform.DISCORD,
        "community_id": "acme",
        "native_id": str(n),
        "channel": ChannelRef(id="c1", name="general"),
        "author": ANN,
        "text": f"message {n}",
        "created_at": T0 + timedelta(minutes=n),
    }
    fields.update(overrides)
    return MessageIngested(community_id="acme", payload=NormalizedMessage(**fields))


async def store(db: Database, *events: Event) -> None:
    await ClassifierRepository(db).apply(plan_writes(list(events)))


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    from pepite_classifier.repository import INDEXES

    await ensure_indexes(mongo_db, INDEXES)
    return mongo_db


async def test_replaying_a_batch_changes_nothing(db: Database) -> None:
    events = [ingested(n) for n in range(50)]
    await store(db, *events)
    before = await db["messages"].find({}, {"stored_at": 0}).sort("_id").to_list()
    await store(db, *events)
    await store(db, *reversed(events))
    after = await db["messages"].find({}, {"stored_at": 0}).sort("_id").to_list()
    assert after == before
    assert len(after) == 50


async def test_an_edit_replaces_the_text_and_an_older_copy_never_reverts_it(db: Database) -> None:
    original = ingested(1, text="helo")
    edited = ingested(1, text="hello", edited_at=T0 + timedelta(hours=1))
    await store(db, original)
    await store(db, edited)
    await store(db, original)  # last week's export, imported again
    doc = await db["messages"].find_one({"_id": "discord:acme:1"})
    assert doc is not None
    assert doc["text"] == "hello"
    assert doc["edited_at"] == T0 + timedelta(hours=1)


async def test_an_edit_and_its_original_in_one_batch_keep_the_edit(db: Database) -> None:
    edited = ingested(1, text="hello", edited_at=T0 + timedelta(hours=1))
    await store(db, edited, ingested(1, text="helo"))
    doc = await db["messages"].find_one({"_id": "discord:acme:1"})
    assert doc is not None
    assert doc["text"] == "hello"


async def test_a_new_reaction_without_an_edit_is_stored(db: Database) -> None:
    await store(db, ingested(1))
    await store(db, ingested(1, reactions=[Reaction(emoji="👍", count=4)]))
    doc = await db["messages"].find_one({"_id": "discord:acme:1"})
    assert doc is not None
    assert doc["reactions"] == [{"emoji": "👍", "emoji_id": None, "count": 4}]


async def test_members_and_channels_track_first_and_last_sightings(db: Database) -> None:
    join = MemberJoined(
        community_id="acme",
        payload=MembershipChange(
            member=ANN, platform=Platform.DISCORD, community_id="acme", at=T0 - timedelta(days=1)
        ),
    )
    await store(db, ingested(5), ingested(2))
    await store(db, ingested(9), join)
    await store(db, ingested(5))  # already covered: nothing may move
    member = await db["members"].find_one({"_id": ANN.id})
    assert member is not None
    assert member["first_seen_at"] == T0 - timedelta(days=1)
    assert member["last_seen_at"] == T0 + timedelta(minutes=9)
    assert member["joined_at"] == T0 - timedelta(days=1)
    channel = await db["channels"].find_one({"_id": "acme:c1"})
    assert channel is not None
    assert channel["first_message_at"] == T0 + timedelta(minutes=2)
    assert channel["last_message_at"] == T0 + timedelta(minutes=9)


async def test_two_writers_racing_on_the_same_messages_store_each_once(db: Database) -> None:
    import asyncio

    events = [ingested(n) for n in range(200)]
    first, second = ClassifierRepository(db), ClassifierRepository(db)
    await asyncio.gather(
        first.apply(plan_writes(events)), second.apply(plan_writes(list(reversed(events))))
    )
    assert await db["messages"].count_documents({}) == 200
