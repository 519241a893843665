"""The knowledge base on a real MongoDB with the real embedding model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pepite_embeddings import Embedder
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_knowledge import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    FOLLOW_UP,
    KNOWLEDGE_INDEXES,
    EntryChannel,
    EntryOrigin,
    EntrySignals,
    KnowledgeBase,
    KnowledgeEntry,
    KnowledgeRepository,
    embed_entries,
    mined_entry_id,
)

NOW = datetime(2024, 5, 6, 12, tzinfo=UTC)
QA = [
    (
        "q1",
        "How do I install the nvidia driver on ubuntu 16.04?",
        "Run sudo ubuntu-drivers autoinstall, then reboot.",
    ),
    (
        "q2",
        "My wifi stopped working after the kernel update, what can I do?",
        "Boot the previous kernel from the grub menu and reinstall linux-firmware.",
    ),
    (
        "q3",
        "How can I change the default shell to zsh?",
        "chsh -s $(which zsh) and log out and in again.",
    ),
    (
        "q4",
        "Where does apache keep its log files?",
        "In /var/log/apache2: access.log and error.log.",
    ),
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def entry(
    question_id: str, question: str, answer: str, *, thanked: bool = False, reactions: int = 0
) -> KnowledgeEntry:
    return KnowledgeEntry(
        entry_id=mined_entry_id(f"discord:acme:{question_id}"),
        community_id="acme",
        origin=EntryOrigin.MINED,
        question=question,
        answer=answer,
        question_message_id=f"discord:acme:{question_id}",
        answer_message_id=f"discord:acme:{question_id}a",
        question_author_id="discord:acme:asker",
        answer_author_id="discord:acme:helper",
        channel=EntryChannel(id="help", name="help"),
        signals=EntrySignals(thanked=thanked, reactions=reactions),
        created_at=NOW,
        updated_at=NOW,
    )


async def store(
    db: Database, embedder: Embedder, entries: list[KnowledgeEntry]
) -> KnowledgeRepository:
    await ensure_indexes(db, KNOWLEDGE_INDEXES)
    repository = KnowledgeRepository(db)
    vectors = embed_entries(embedder, entries)
    await repository.upsert(list(zip(entries, vectors, strict=True)))
    return repository


async def test_a_paraphrase_finds_its_entry_first_and_is_answered(
    mongo_db: Database, embedder: Embedder
) -> None:
    repository = await store(mongo_db, embedder, [entry(*qa) for qa in QA])
    knowledge = KnowledgeBase(repository, embedder)

    reply = await knowledge.ask("acme", "what's the way to get nvidia graphics drivers installed?")

    assert reply.sources[0].entry_id == mined_entry_id("discord:acme:q1")
    assert reply.sources[0].answer_message_id == "discord:acme:q1a"
    assert reply.answered
    assert reply.answer == QA[0][2]
    assert reply.confidence >= DEFAULT_CONFIDENCE_THRESHOLD
    # Another community's knowledge base is its own.
    assert (await knowledge.ask("other", "how do I install the nvidia driver?")).sources == ()


async def test_a_thanked_answer_ranks_above_an_unthanked_one(
    mongo_db: Database, embedder: Embedder
) -> None:
    question = "How do I see which process listens on a port?"
    repository = await store(
        mongo_db,
        embedder,
        [
            entry("plain", question, "Maybe netstat can tell you."),
            entry("thanked", question, "sudo ss -ltnp shows each port's process.", thanked=True),
            *(entry(*qa) for qa in QA),
        ],
    )

    reply = await KnowledgeBase(repository, embedder).ask(
        "acme", "which program is listening on port 8080?"
    )

    assert [s.entry_id for s in reply.sources[:2]] == [
        mined_entry_id("discord:acme:thanked"),
        mined_entry_id("discord:acme:plain"),
    ]


async def test_an_unrelated_question_is_left_to_a_human(
    mongo_db: Database, embedder: Embedder
) -> None:
    repository = await store(mongo_db, embedder, [entry(*qa) for qa in QA])

    reply = await KnowledgeBase(repository, embedder).ask(
        "acme", "What is the best recipe for a chocolate cake?"
    )

    assert not reply.answered
    assert reply.answer == FOLLOW_UP
    assert reply.confidence < DEFAULT_CONFIDENCE_THRESHOLD


async def test_the_index_follows_changes_made_by_any_writer(
    mongo_db: Database, embedder: Embedder
) -> None:
    repository = await store(mongo_db, embedder, [entry(*qa) for qa in QA[:2]])
    knowledge = KnowledgeBase(repository, embedder)
    question = "where are apache's logs?"
    before = await knowledge.ask("acme", question)
    assert before.sources[0].entry_id != mined_entry_id("discord:acme:q4")

    # Another process (the digest service) adds an entry; re-adding one changes nothing.
    other_writer = KnowledgeRepository(mongo_db)
    version = await other_writer.version("acme")
    vectors = embed_entries(embedder, [entry(*QA[3]), entry(*QA[0])])
    written = await other_writer.upsert([(entry(*QA[3]), vectors[0]), (entry(*QA[0]), vectors[1])])
    assert written == 1
    assert await other_writer.version("acme") == version + 1
    assert await other_writer.upsert([(entry(*QA[3]), vectors[0])]) == 0
    assert await other_writer.version("acme") == version + 1

    after = await knowledge.ask("acme", question)
    assert after.sources[0].entry_id == mined_entry_id("discord:acme:q4")
    assert after.answered
