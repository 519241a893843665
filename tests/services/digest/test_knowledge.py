"""FAQ knowledge mined from a hand-built set of threads and replies in the real MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pepite_contracts import MemberErasure, MessageKind
from pepite_digest.knowledge import KnowledgeBuilder, KnowledgePrivacy
from pepite_embeddings import Embedder
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_knowledge import KNOWLEDGE_INDEXES, KnowledgeRepository, mined_entry_id

T0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
Q, A, S, G = MessageKind.QUESTION, MessageKind.ANSWER, MessageKind.SOCIAL, MessageKind.GRATITUDE


def mid(n: int) -> str:
    return f"discord:acme:{n}"


def author(name: str) -> str:
    return f"discord:acme:u-{name}"


def message(
    n: int,
    name: str,
    text: str,
    kind: MessageKind,
    minutes: int,
    *,
    reply_to: int | None = None,
    thread: str | None = None,
    mentions: tuple[str, ...] = (),
    reactions: int = 0,
    bot: bool = False,
) -> dict[str, Any]:
    return {
        "_id": mid(n),
        "community_id": "acme",
        "channel": {"id": "help", "name": "help"},
        "author": {"id": author(name), "name": name, "is_bot": bot},
        "text": text,
        "created_at": T0 + timedelta(minutes=minutes),
        "reply_to_id": mid(reply_to) if reply_to else None,
        "thread": {"id": thread} if thread else None,
        "reactions": [{"emoji": "👍", "count": reactions}] if reactions else [],
        "mentions": [{"member_id": author(m)} for m in mentions],
        "analysis": {"kind": kind.value, "sentiment": "neutral"},
    }


MESSAGES = [
    # A reply, an addressed chat answer that the asker thanks by name, and a bot.
    message(1, "ann", "How do I mount an NFS share at boot on my ubuntu server?", Q, 0),
    message(2, "bob", "maybe try a different distro honestly", S, 2, reply_to=1),
    message(
        3,
        "carol",
        "ann: add the share to /etc/fstab with _netdev and run mount -a",
        S,
        4,
        mentions=("ann",),
    ),
    message(
        4, "helpbot", "Automated reply: please read the wiki first", A, 5, reply_to=1, bot=True
    ),
    message(5, "ann", "thanks carol, that worked", G, 9),
    # A thread: the answer drew reactions.
    message(
        10,
        "dave",
        "What is the recommended way to back up a postgres database nightly?",
        Q,
        60,
        thread="t-backup",
    ),
    message(
        11,
        "eve",
        "pg_dump from a cron job, piped to gzip, works well",
        A,
        65,
        thread="t-backup",
        reactions=2,
    ),
    message(12, "dave", "ok", S, 70, thread="t-backup"),
    # Only a trivial reply, no reply at all, a helper's clarifying question, a bot asking.
    message(20, "frank", "Does anyone know how to reset the admin password on this?", Q, 120),
    message(21, "gina", "lol", S, 121, reply_to=20),
    message(30, "hank", "Is there a way to run two displays with different scaling?", Q, 180),
    message(40, "ivan", "Why does my laptop fan spin all the time after suspend?", Q, 240),
    message(41, "judy", "which kernel version are you running right now?", Q, 242, reply_to=40),
    message(
        50, "helpbot", "Did you know you can ask questions in the help channel?", Q, 300, bot=True
    ),
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
async def mined_db(mongo_db: Database) -> Database:
    await ensure_indexes(mongo_db, KNOWLEDGE_INDEXES)
    await mongo_db["messages"].insert_many(MESSAGES)
    return mongo_db


async def entries(db: Database) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: doc async for doc in db["knowledge_entries"].find({})}


async def test_answered_questions_are_mined_with_their_accepted_answers(
    mined_db: Database, embedder: Embedder
) -> None:
    builder = KnowledgeBuilder(mined_db, embedder)
    result = await builder.build("acme", until=T0 + timedelta(days=1))

    assert result.pairs == 2
    found = await entries(mined_db)
    assert sorted(found) == [mined_entry_id(mid(1)), mined_entry_id(mid(10))]
    nfs = found[mined_entry_id(mid(1))]
    # The thanked chat answer wins over the linked reply, without its "ann: ".
    assert nfs["answer"] == "add the share to /etc/fstab with _netdev and run mount -a"
    assert nfs["answer_message_id"] == mid(3)
    assert nfs["answer_author_id"] == author("carol")
    assert nfs["question_author_id"] == author("ann")
    assert nfs["signals"]["thanked"] is True
    assert nfs["origin"] == "mined"
    assert len(nfs["vector"]) == len(nfs["answer_vector"]) == 384 * 4
    assert nfs["vector"] != nfs["answer_vector"]
    backup = found[mined_entry_id(mid(10))]
    assert backup["answer_message_id"] == mid(11)
    assert backup["signals"] == {
        "thanked": False,
        "reactions": 2,
        "analyzer_answer": True,
        "answer_length": 10,
    }


async def test_mining_again_changes_nothing(mined_db: Database, embedder: Embedder) -> None:
    builder = KnowledgeBuilder(mined_db, embedder)
    now = T0 + timedelta(days=1)
    assert await builder.run_once(now) == {"acme": 2}
    repository = KnowledgeRepository(mined_db)
    version = await repository.version("acme")
    before = await entries(mined_db)

    # Nothing new since the last run: nothing read; a full rebuild writes nothing either.
    assert await builder.run_once(now + timedelta(hours=1)) == {}
    assert (await builder.build("acme", until=now)).written == 0
    assert await entries(mined_db) == before
    assert await repository.version("acme") == version

    # A new message since: the run mines again from where it stopped, writing only news.
    await mined_db["messages"].insert_one(
        message(60, "kim", "How can I make grub remember the last booted entry?", Q, 60 * 26)
        | {"_id": mid(60)}
    )
    await mined_db["messages"].insert_one(
        message(
            61,
            "leo",
            "set GRUB_DEFAULT=saved and GRUB_SAVEDEFAULT=true, then update-grub",
            A,
            60 * 26 + 3,
            reply_to=60,
        )
    )
    assert await builder.run_once(now + timedelta(days=1)) == {"acme": 1}
    assert len(await entries(mined_db)) == 3


async def test_erasure_deletes_the_entries_the_member_wrote(
    mined_db: Database, embedder: Embedder
) -> None:
    await KnowledgeBuilder(mined_db, embedder).build("acme", until=T0 + timedelta(days=1))
    privacy = KnowledgePrivacy(mined_db)

    def erasure(name: str) -> MemberErasure:
        return MemberErasure(
            member_id=author(name), community_id="acme", pseudonym="p-1", requested_at=T0
        )

    await privacy.erase(erasure("carol"))  # wrote the answer of the NFS entry
    assert sorted(await entries(mined_db)) == [mined_entry_id(mid(10))]
    await privacy.erase(erasure("dave"))  # asked the backup question
    assert await entries(mined_db) == {}
    await privacy.erase(erasure("dave"))  # replayed: nothing left, no error
