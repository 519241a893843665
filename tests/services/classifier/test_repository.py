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
    MemberLeft,
    MembershipChange,
    Mention,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
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


def edited(n: int, at: datetime, **changes: Any) -> MessageEdited:
    return MessageEdited(
        community_id="acme",
        payload=MessageEdit(
            id=f"discord:acme:{n}",
            platform=Platform.DISCORD,
            community_id="acme",
            native_id=str(n),
            channel=ChannelRef(id="c1", name="general"),
            edited_at=at,
            **changes,
        ),
    )


def deleted(n: int, at: datetime) -> MessageDeleted:
    return MessageDeleted(
        community_id="acme",
        payload=MessageDeletion(
            id=f"discord:acme:{n}",
            platform=Platform.DISCORD,
            community_id="acme",
            native_id=str(n),
            channel=ChannelRef(id="c1", name="general"),
            deleted_at=at,
        ),
    )


async def test_a_partial_edit_changes_only_what_it_names(db: Database) -> None:
    await store(db, ingested(1, text="helo", reactions=[Reaction(emoji="👍", count=2)]))
    await store(db, edited(1, T0 + timedelta(hours=1), text="hello"))
    doc = await db["messages"].find_one({"_id": "discord:acme:1"})
    assert doc is not None
    assert doc["text"] == "hello"
    assert doc["edited_at"] == T0 + timedelta(hours=1)
    assert doc["reactions"] == [{"emoji": "👍", "emoji_id": None, "count": 2}]
    assert doc["author"]["id"] == ANN.id

    # An older edit arriving late, and the original replayed, change nothing.
    await store(db, edited(1, T0 + timedelta(minutes=30), text="hell"), ingested(1, text="helo"))
    doc = await db["messages"].find_one({"_id": "discord:acme:1"})
    assert doc is not None
    assert doc["text"] == "hello"


async def test_an_edit_of_a_message_never_stored_stores_nothing(db: Database) -> None:
    await store(db, edited(7, T0 + timedelta(hours=1), text="hello"))
    assert await db["messages"].count_documents({}) == 0


async def test_an_edit_with_the_whole_message_stores_it(db: Database) -> None:
    whole = ingested(8, text="after edit").payload
    event = edited(8, T0 + timedelta(hours=2), text="after edit")
    event = event.model_copy(
        update={"payload": event.payload.model_copy(update={"message": whole})}
    )
    await store(db, event)
    doc = await db["messages"].find_one({"_id": "discord:acme:8"})
    assert doc is not None
    assert doc["text"] == "after edit"
    assert doc["edited_at"] == T0 + timedelta(hours=2)


async def test_an_edit_after_its_original_in_one_batch_is_applied(db: Database) -> None:
    await store(db, ingested(2, text="first"), edited(2, T0 + timedelta(hours=1), text="second"))
    doc = await db["messages"].find_one({"_id": "discord:acme:2"})
    assert doc is not None
    assert (doc["text"], doc["edited_at"]) == ("second", T0 + timedelta(hours=1))


async def test_a_deletion_scrubs_the_text_and_no_replay_brings_it_back(db: Database) -> None:
    secret = ingested(
        3,
        text="my phone is 555-0100",
        mentions=[Mention(member_id="discord:acme:u2", name="bob")],
        raw={"embeds": [{"title": "555-0100"}]},
    )
    await store(db, secret, ingested(4))
    await store(db, deleted(3, T0 + timedelta(hours=1)))

    doc = await db["messages"].find_one({"_id": "discord:acme:3"})
    assert doc is not None
    assert doc["deleted_at"] == T0 + timedelta(hours=1)
    assert "555-0100" not in repr(doc)
    assert doc["text"] == ""
    assert doc["mentions"] == []
    assert doc["raw"] == {}

    # Last week's export imported again, an edit and a second deletion: still deleted.
    await store(db, secret)
    await store(db, edited(3, T0 + timedelta(hours=2), text="555-0100 again"))
    await store(db, deleted(3, T0 + timedelta(hours=3)))
    doc = await db["messages"].find_one({"_id": "discord:acme:3"})
    assert doc is not None
    assert "555-0100" not in repr(doc)
    assert doc["deleted_at"] == T0 + timedelta(hours=1)
    other = await db["messages"].find_one({"_id": "discord:acme:4"})
    assert other is not None
    assert other["text"] == "message 4"


async def test_a_deletion_before_the_message_keeps_it_out(db: Database) -> None:
    # The message arrives after its deletion (a history import run after the live
    # adapter saw the deletion): only the tombstone is stored.
    await store(db, deleted(5, T0 + timedelta(hours=1)))
    await store(db, ingested(5, text="gone"))
    await store(db, deleted(6, T0 + timedelta(hours=1)), ingested(6, text="gone too"))
    docs = await db["messages"].find({}).to_list()
    assert sorted(d["_id"] for d in docs) == ["discord:acme:5", "discord:acme:6"]
    assert all(d["text"] == "" and "deleted_at" in d for d in docs)


async def test_status_counts_leave_deleted_messages_out(db: Database) -> None:
    from pepite_api.repository import StatusRepository

    await store(db, ingested(1), ingested(2), ingested(3))
    await store(db, deleted(1, T0 + timedelta(hours=1)), deleted(9, T0 + timedelta(hours=1)))
    status = await StatusRepository(db).community_status("acme")
    assert status.messages == 2
    assert status.first_message_at == T0 + timedelta(minutes=2)


async def test_a_member_leaving_is_recorded(db: Database) -> None:
    change = MembershipChange(
        member=ANN, platform=Platform.DISCORD, community_id="acme", at=T0 + timedelta(days=2)
    )
    await store(db, ingested(1))
    await store(db, MemberLeft(community_id="acme", payload=change))
    doc = await db["members"].find_one({"_id": ANN.id})
    assert doc is not None
    assert doc["left_at"] == T0 + timedelta(days=2)
    assert doc["last_seen_at"] == T0 + timedelta(days=2)


async def test_search_terms_follow_the_text_through_edits_and_deletions(db: Database) -> None:
    async def terms() -> list[str]:
        doc = await db["messages"].find_one({"_id": "discord:acme:1"})
        assert doc is not None
        return list(doc["search_terms"])

    await store(db, ingested(1, text="The app CRASHES on the café page"))
    assert await terms() == ["app", "crash", "cafe", "page"]
    await store(db, edited(1, T0 + timedelta(hours=1), text="Dark mode, please"))
    assert await terms() == ["dark", "mode", "pleas"]
    await store(db, deleted(1, T0 + timedelta(hours=2)))
    assert await terms() == []


async def test_messages_stored_before_search_terms_get_them_once(db: Database) -> None:
    await store(db, ingested(1, text="login fails"), ingested(2, text="hello there"), ingested(3))
    await db["messages"].update_many({}, {"$unset": {"search_terms": ""}})
    repository = ClassifierRepository(db)
    assert await repository.backfill_search_terms(batch_size=2) == 3
    stored = {doc["_id"]: doc["search_terms"] async for doc in db["messages"].find({})}
    assert stored == {
        "discord:acme:1": ["login", "fail"],
        "discord:acme:2": ["hello"],
        "discord:acme:3": ["messag", "3"],
    }
    # Done once per database: a later start does not scan the messages again.
    await db["messages"].update_many({}, {"$unset": {"search_terms": ""}})
    assert await repository.backfill_search_terms() == 0
