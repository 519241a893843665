"""MongoDB side of the knowledge base: entries with their vectors, and a version per community.

Each entry document keeps the embedding of its question (float32 bytes), so a reader
loads a community's whole index in one query. Every change bumps the community's
version in ``knowledge_versions``: readers keep the index in memory and reload it only
when the version they hold is no longer the stored one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pymongo import ReturnDocument, UpdateOne

from pepite_embeddings import EMBEDDING_DIM, Embedder, Embedding
from pepite_kit import Database, IndexSpec
from pepite_knowledge.models import EntryOrigin, KnowledgeEntry

KNOWLEDGE_ENTRIES = "knowledge_entries"
KNOWLEDGE_VERSIONS = "knowledge_versions"

KNOWLEDGE_INDEXES = (
    IndexSpec(
        KNOWLEDGE_ENTRIES,
        [("community_id", 1), ("created_at", -1), ("_id", -1)],
        "community_created",
    ),
    IndexSpec(
        KNOWLEDGE_ENTRIES,
        [("community_id", 1), ("origin", 1), ("created_at", -1), ("_id", -1)],
        "community_origin_created",
    ),
    # Erasure finds a member's entries by either author.
    IndexSpec(
        KNOWLEDGE_ENTRIES,
        [("question_author_id", 1)],
        "question_author",
        partial_filter={"question_author_id": {"$type": "string"}},
    ),
    IndexSpec(
        KNOWLEDGE_ENTRIES,
        [("answer_author_id", 1)],
        "answer_author",
        partial_filter={"answer_author_id": {"$type": "string"}},
    ),
)

_VECTOR = "vector"
_ANSWER_VECTOR = "answer_vector"
_DIGEST = "content_digest"
_NOT_STORED = {_VECTOR: 0, _ANSWER_VECTOR: 0, _DIGEST: 0}


@dataclass(frozen=True)
class EntryVectors:
    """The embeddings of an entry's question and of its answer."""

    question: Embedding
    answer: Embedding


def embed_entries(embedder: Embedder, entries: Sequence[KnowledgeEntry]) -> list[EntryVectors]:
    """Both embeddings of each entry, in as few model calls as possible."""
    if not entries:
        return []
    vectors = embedder.embed([e.question for e in entries] + [e.answer for e in entries])
    return [
        EntryVectors(question, answer)
        for question, answer in zip(vectors[: len(entries)], vectors[len(entries) :], strict=True)
    ]


@dataclass(frozen=True)
class StoredEntry:
    """An entry and its embeddings."""

    entry: KnowledgeEntry
    vectors: EntryVectors


def _content_digest(entry: KnowledgeEntry) -> str:
    """What makes two versions of an entry the same (its timestamps aside)."""
    # The layout tag rewrites entries stored before a change of what is stored with
    # them (their answers' embeddings came with "qa").
    content = "qa:" + entry.model_dump_json(exclude={"created_at", "updated_at"})
    return hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


def _document(entry: KnowledgeEntry, vectors: EntryVectors) -> dict[str, Any]:
    document = entry.model_dump(mode="python")
    document["_id"] = document.pop("entry_id")
    document[_VECTOR] = np.asarray(vectors.question, dtype=np.float32).tobytes()
    document[_ANSWER_VECTOR] = np.asarray(vectors.answer, dtype=np.float32).tobytes()
    document[_DIGEST] = _content_digest(entry)
    return document


def _entry(document: dict[str, Any]) -> KnowledgeEntry:
    fields = {k: v for k, v in document.items() if k not in _NOT_STORED}
    fields["entry_id"] = fields.pop("_id")
    return KnowledgeEntry.model_validate(fields)


def _vector(raw: bytes | None) -> Embedding:
    if not raw:
        return np.zeros(EMBEDDING_DIM, dtype=np.float32)
    vector: Embedding = np.frombuffer(raw, dtype=np.float32)
    return vector


class KnowledgeRepository:
    """Entries of every community's knowledge base."""

    def __init__(self, db: Database) -> None:
        self._entries = db[KNOWLEDGE_ENTRIES]
        self._versions = db[KNOWLEDGE_VERSIONS]

    async def version(self, community_id: str) -> int:
        """The community's knowledge version: it changes whenever an entry does."""
        doc = await self._versions.find_one({"_id": community_id}, {"version": 1})
        return int(doc["version"]) if doc else 0

    async def _changed(self, community_id: str) -> None:
        await self._versions.update_one(
            {"_id": community_id}, {"$inc": {"version": 1}}, upsert=True
        )

    async def upsert(self, entries: Sequence[tuple[KnowledgeEntry, EntryVectors]]) -> int:
        """Insert or update entries by id; unchanged ones are left as they are.

        ``created_at`` is kept from the first write. Returns how many were written.
        """
        if not entries:
            return 0
        ids = [entry.entry_id for entry, _ in entries]
        stored = {
            doc["_id"]: doc.get(_DIGEST)
            async for doc in self._entries.find({"_id": {"$in": ids}}, {_DIGEST: 1})
        }
        operations = []
        changed: set[str] = set()
        for entry, vectors in entries:
            document = _document(entry, vectors)
            if stored.get(entry.entry_id) == document[_DIGEST]:
                continue
            created_at = document.pop("created_at")
            operations.append(
                UpdateOne(
                    {"_id": document.pop("_id")},
                    {"$set": document, "$setOnInsert": {"created_at": created_at}},
                    upsert=True,
                )
            )
            changed.add(entry.community_id)
        if operations:
            await self._entries.bulk_write(operations, ordered=False)
        for community_id in sorted(changed):
            await self._changed(community_id)
        return len(operations)

    async def get(self, community_id: str, entry_id: str) -> KnowledgeEntry | None:
        doc = await self._entries.find_one(
            {"_id": entry_id, "community_id": community_id}, _NOT_STORED
        )
        return _entry(doc) if doc else None

    async def page(
        self,
        community_id: str,
        *,
        origin: EntryOrigin | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[KnowledgeEntry]:
        """Entries newest first, continuing strictly after ``(created_at, entry_id)``."""
        query: dict[str, Any] = {"community_id": community_id}
        if origin is not None:
            query["origin"] = origin.value
        if after is not None:
            created_at, entry_id = after
            query["$or"] = [
                {"created_at": {"$lt": created_at}},
                {"created_at": created_at, "_id": {"$lt": entry_id}},
            ]
        cursor = (
            self._entries.find(query, _NOT_STORED)
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        return [_entry(doc) async for doc in cursor]

    async def replace_curated(
        self, entry: KnowledgeEntry, vectors: EntryVectors
    ) -> KnowledgeEntry | None:
        """Replace a curated entry's content; None when there is no such curated entry."""
        document = _document(entry, vectors)
        del document["_id"], document["created_at"]
        doc = await self._entries.find_one_and_update(
            {
                "_id": entry.entry_id,
                "community_id": entry.community_id,
                "origin": EntryOrigin.CURATED.value,
            },
            {"$set": document},
            projection=_NOT_STORED,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        await self._changed(entry.community_id)
        return _entry(doc)

    async def delete(self, community_id: str, entry_id: str) -> bool:
        result = await self._entries.delete_one({"_id": entry_id, "community_id": community_id})
        if result.deleted_count:
            await self._changed(community_id)
        return result.deleted_count > 0

    async def delete_by_member(self, community_id: str, member_id: str) -> int:
        """Delete the mined entries whose question or answer the member wrote."""
        result = await self._entries.delete_many(
            {
                "community_id": community_id,
                "origin": EntryOrigin.MINED.value,
                "$or": [{"question_author_id": member_id}, {"answer_author_id": member_id}],
            }
        )
        if result.deleted_count:
            await self._changed(community_id)
        return int(result.deleted_count)

    async def all_entries(self, community_id: str) -> list[StoredEntry]:
        """The community's whole knowledge base with vectors (to build an index once)."""
        cursor = self._entries.find({"community_id": community_id}, {_DIGEST: 0}).sort("_id", 1)
        stored = []
        async for doc in cursor:
            question = _vector(doc.get(_VECTOR))
            # Entries stored before answers were embedded are found by their question.
            answer = _vector(doc[_ANSWER_VECTOR]) if doc.get(_ANSWER_VECTOR) else question
            stored.append(StoredEntry(_entry(doc), EntryVectors(question, answer)))
        return stored
