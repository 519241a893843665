"""All MongoDB access of topics: insight embeddings, topics, clustering runs."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from bson.binary import Binary
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from pepite_classifier.repository import MEMBERS, MESSAGES
from pepite_classifier.topics.clustering import Vectors, normalize
from pepite_classifier.topics.model import EmbeddedInsight, Topic
from pepite_contracts import INSIGHT_KINDS, MessageKind
from pepite_kit import Database, IndexSpec

logger = logging.getLogger(__name__)

#: One document per insight message: its embedding, and the topic it was given when
#: assigned (the current topic is the message's own ``topic_id``).
EMBEDDINGS = "message_embeddings"
#: One document per topic, with its centroid.
TOPICS = "topics"
#: One document per community: clustering generation, last run, lease.
TOPIC_RUNS = "topic_runs"

TOPIC_INDEXES: list[IndexSpec] = [
    # Loading a community's embeddings; counting those embedded since the last run.
    IndexSpec(EMBEDDINGS, [("community_id", 1), ("embedded_at", 1)], "community_embedded"),
    IndexSpec(TOPICS, [("community_id", 1), ("active", 1)], "community_active"),
]

#: Ids per ``$in`` query or update, well under the 16 MB command limit.
_ID_CHUNK = 5_000


def _chunks(items: Sequence[str], size: int = _ID_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass
class StoredEmbeddings:
    """A community's insight embeddings, ordered by message id."""

    message_ids: list[str]
    vectors: Vectors

    def __len__(self) -> int:
        return len(self.message_ids)

    def subset(self, keep: Sequence[int]) -> StoredEmbeddings:
        return StoredEmbeddings(
            message_ids=[self.message_ids[i] for i in keep],
            vectors=self.vectors[np.asarray(keep, dtype=np.intp)],
        )


@dataclass(frozen=True)
class LiveMessage:
    """What clustering needs of a stored insight message."""

    kind: MessageKind
    topic_id: str | None


@dataclass(frozen=True)
class MessageText:
    """A stored message's text and author."""

    text: str
    author_id: str | None


@dataclass(frozen=True)
class TopicRun:
    """The clustering state of one community."""

    community_id: str
    generation: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    messages: int = 0
    topics: int = 0
    duration_s: float = 0.0


@dataclass
class TopicWrite:
    """A topic to store, with its centroid (``None`` for "other")."""

    topic: Topic
    centroid: Vectors | None = None


@dataclass
class CentroidSet:
    """The active topics' centroids of a community, row ``i`` for ``topic_ids[i]``."""

    generation: int
    topic_ids: list[str] = field(default_factory=list)
    centroids: Vectors = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


class ReclusterBusyError(RuntimeError):
    """Another clustering of the same community is running."""


def _vector_bytes(vector: Vectors) -> Binary:
    return Binary(np.ascontiguousarray(vector, dtype=np.float32).tobytes())


class TopicRepository:
    """Reads and writes ``message_embeddings``, ``topics`` and ``topic_runs``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- embeddings -------------------------------------------------------------------

    async def store_embeddings(
        self,
        community_id: str,
        insights: Sequence[EmbeddedInsight],
        topic_ids: Sequence[str | None],
    ) -> None:
        """Upsert the embeddings of insight messages with the topic each was given."""
        now = datetime.now(UTC)
        ops = [
            UpdateOne(
                {"_id": insight.message_id},
                {
                    "$set": {
                        "community_id": community_id,
                        "channel_id": insight.channel_id,
                        "kind": insight.kind.value,
                        "created_at": insight.created_at,
                        "vector": _vector_bytes(insight.embedding),
                        "topic_id": topic_id,
                        "embedded_at": now,
                    }
                },
                upsert=True,
            )
            for insight, topic_id in zip(insights, topic_ids, strict=True)
        ]
        if ops:
            await self._db[EMBEDDINGS].bulk_write(ops, ordered=False)

    async def delete_embeddings(self, message_ids: Sequence[str]) -> None:
        """Forget the embeddings of messages deleted or no longer insights."""
        for chunk in _chunks(message_ids):
            await self._db[EMBEDDINGS].delete_many({"_id": {"$in": chunk}})

    async def load_embeddings(
        self, community_id: str, *, since: datetime | None = None
    ) -> StoredEmbeddings:
        """A community's embeddings (those stored at or after ``since`` if given).

        Vectors of another length than most (a change of embedding model) are skipped:
        they cannot be compared with the others.
        """
        query: dict[str, Any] = {"community_id": community_id}
        if since is not None:
            query["embedded_at"] = {"$gte": since}
        rows = [
            (doc["_id"], bytes(doc["vector"]))
            async for doc in self._db[EMBEDDINGS].find(query, {"vector": 1})
        ]
        rows.sort(key=lambda row: row[0])
        if not rows:
            return StoredEmbeddings([], np.zeros((0, 0), dtype=np.float32))
        size = Counter(len(row[1]) for row in rows).most_common(1)[0][0]
        skipped = sum(1 for row in rows if len(row[1]) != size)
        if skipped:
            logger.warning(
                "embeddings of another size skipped",
                extra={"community_id": community_id, "skipped": skipped},
            )
            rows = [row for row in rows if len(row[1]) == size]
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return StoredEmbeddings(
            message_ids=[row[0] for row in rows],
            vectors=normalize(vectors.reshape(len(rows), size // 4)),
        )

    async def count_embeddings(self, community_id: str) -> tuple[int, int]:
        """Insight messages of a community: ``(waiting for a topic, with one)``.

        A run gives every message it loads a topic, so those waiting are the ones
        embedded since the last run began that assignment left without one; counting
        them so spares a run from writing to every embedding.
        """
        run = await self.run(community_id)
        pending_query: dict[str, Any] = {"community_id": community_id, "topic_id": None}
        if run.started_at is not None:
            pending_query["embedded_at"] = {"$gte": run.started_at}
        pending = await self._db[EMBEDDINGS].count_documents(pending_query)
        total = await self._db[EMBEDDINGS].count_documents({"community_id": community_id})
        return pending, total - pending

    async def communities(self) -> list[str]:
        """Communities with insight embeddings."""
        return sorted(await self._db[EMBEDDINGS].distinct("community_id"))

    # -- messages ---------------------------------------------------------------------

    async def live_insights(self, message_ids: Sequence[str]) -> dict[str, LiveMessage]:
        """Which of ``message_ids`` are stored, not deleted and still insights; their topics.

        An erased member's message is not: its embedding, if one was stored while the
        erasure went on, is dropped rather than clustered.
        """
        kinds = sorted(kind.value for kind in INSIGHT_KINDS)
        live: dict[str, LiveMessage] = {}
        for chunk in _chunks(message_ids):
            cursor = self._db[MESSAGES].find(
                {
                    "_id": {"$in": chunk},
                    "deleted_at": None,
                    "erased_at": None,
                    "analysis.kind": {"$in": kinds},
                },
                {"analysis.kind": 1, "topic_id": 1},
            )
            async for doc in cursor:
                live[doc["_id"]] = LiveMessage(
                    kind=MessageKind(doc["analysis"]["kind"]), topic_id=doc.get("topic_id")
                )
        return live

    async def message_texts(self, message_ids: Sequence[str]) -> dict[str, MessageText]:
        """The texts of messages and their authors, by id (deleted messages have none)."""
        texts: dict[str, MessageText] = {}
        for chunk in _chunks(message_ids):
            cursor = self._db[MESSAGES].find({"_id": {"$in": chunk}}, {"text": 1, "author.id": 1})
            async for doc in cursor:
                texts[doc["_id"]] = MessageText(
                    text=doc.get("text") or "", author_id=(doc.get("author") or {}).get("id")
                )
        return texts

    async def texts_in_topics(
        self, community_id: str, topic_ids: Sequence[str], *, except_author: str
    ) -> dict[str, list[str]]:
        """The texts of the messages of each topic, but those of one author, by topic id."""
        texts: dict[str, list[str]] = {topic_id: [] for topic_id in topic_ids}
        cursor = self._db[MESSAGES].find(
            {
                "community_id": community_id,
                "topic_id": {"$in": list(topic_ids)},
                "author.id": {"$ne": except_author},
                "deleted_at": None,
            },
            {"text": 1, "topic_id": 1},
        )
        async for doc in cursor:
            if doc.get("text"):
                texts[doc["topic_id"]].append(doc["text"])
        return texts

    async def relabel(self, topics: Sequence[Topic]) -> None:
        """Store new keywords, names and samples of topics (nothing else changes)."""
        if not topics:
            return
        await self._db[TOPICS].bulk_write(
            [
                UpdateOne(
                    {"_id": topic.id},
                    {
                        "$set": {
                            "keywords": topic.keywords,
                            "name": topic.name,
                            "named_by": topic.named_by.value,
                            "sample_ids": topic.sample_ids,
                            "medoid_id": topic.medoid_id,
                        }
                    },
                )
                for topic in topics
            ],
            ordered=False,
        )

    async def opted_out_authors(self, author_ids: Iterable[str]) -> set[str]:
        """Which of ``author_ids`` opted out of AI processing (``ai_opt_out`` on members)."""
        opted: set[str] = set()
        for chunk in _chunks(sorted(author_ids)):
            cursor = self._db[MEMBERS].find({"_id": {"$in": chunk}, "ai_opt_out": True}, {"_id": 1})
            opted.update([doc["_id"] async for doc in cursor])
        return opted

    async def set_message_topics(self, changes: Mapping[str | None, Sequence[str]]) -> None:
        """Write each topic id on its messages.

        Args:
            changes: Message ids by the topic id they now belong to (``None``: no topic
                yet, waiting for the next clustering).
        """
        for topic_id, message_ids in changes.items():
            for chunk in _chunks(message_ids):
                await self._db[MESSAGES].update_many(
                    {"_id": {"$in": chunk}, "deleted_at": None}, {"$set": {"topic_id": topic_id}}
                )

    async def set_embedding_topics(self, changes: Mapping[str | None, Sequence[str]]) -> None:
        """Record on embeddings the topic their messages were given after assignment."""
        for topic_id, message_ids in changes.items():
            for chunk in _chunks(message_ids):
                await self._db[EMBEDDINGS].update_many(
                    {"_id": {"$in": chunk}}, {"$set": {"topic_id": topic_id}}
                )

    # -- topics -----------------------------------------------------------------------

    async def topics(self, community_id: str, *, active_only: bool = True) -> list[Topic]:
        """A community's topics, largest first, "other" and retired ones last."""
        query: dict[str, Any] = {"community_id": community_id}
        if active_only:
            query["active"] = True
        topics = [_topic(doc) async for doc in self._db[TOPICS].find(query, {"centroid": 0})]
        return sorted(topics, key=lambda t: (t.is_other, not t.active, -t.size, t.id))

    async def topic_names(self, topic_ids: Iterable[str]) -> dict[str, Topic]:
        """Topics by id, active or not (reports name what was counted)."""
        ids = sorted(set(topic_ids))
        found: dict[str, Topic] = {}
        for chunk in _chunks(ids):
            async for doc in self._db[TOPICS].find({"_id": {"$in": chunk}}, {"centroid": 0}):
                topic = _topic(doc)
                found[topic.id] = topic
        return found

    async def known_centroids(self, community_id: str) -> tuple[list[Topic], Vectors]:
        """Active topics that have a centroid (not "other"), and their centroids."""
        topics: list[Topic] = []
        rows: list[bytes] = []
        query = {"community_id": community_id, "active": True, "centroid": {"$ne": None}}
        async for doc in self._db[TOPICS].find(query).sort("_id", 1):
            topics.append(_topic(doc))
            rows.append(bytes(doc["centroid"]))
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        size = len(rows[0]) // 4
        matrix = np.frombuffer(b"".join(rows), dtype=np.float32).reshape(len(rows), size)
        return topics, normalize(matrix)

    async def centroid_set(self, community_id: str) -> CentroidSet:
        """The current generation's centroids, for online assignment."""
        run = await self.run(community_id)
        topics, centroids = await self.known_centroids(community_id)
        return CentroidSet(run.generation, [t.id for t in topics], centroids)

    async def save_topics(
        self, community_id: str, writes: Sequence[TopicWrite], retired: Sequence[str]
    ) -> int:
        """Store a clustering's topics, retire those it dropped, and bump the generation.

        Returns:
            The new generation, which tells online assignment to reload centroids.
        """
        ops: list[UpdateOne] = []
        for write in writes:
            document = write.topic.model_dump(mode="python", exclude={"id"})
            document["centroid"] = None if write.centroid is None else _vector_bytes(write.centroid)
            created_at = document.pop("created_at")
            ops.append(
                UpdateOne(
                    {"_id": write.topic.id},
                    {"$set": document, "$setOnInsert": {"created_at": created_at}},
                    upsert=True,
                )
            )
        now = datetime.now(UTC)
        ops.extend(
            UpdateOne(
                {"_id": topic_id, "community_id": community_id},
                {"$set": {"active": False, "size": 0, "kinds": {}, "updated_at": now}},
            )
            for topic_id in retired
        )
        if ops:
            await self._db[TOPICS].bulk_write(ops, ordered=False)
        run = await self._db[TOPIC_RUNS].find_one_and_update(
            {"_id": community_id},
            {"$inc": {"generation": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(run["generation"]) if run else 0

    # -- runs -------------------------------------------------------------------------

    async def run(self, community_id: str) -> TopicRun:
        doc = await self._db[TOPIC_RUNS].find_one({"_id": community_id})
        if doc is None:
            return TopicRun(community_id)
        return TopicRun(
            community_id=community_id,
            generation=doc.get("generation", 0),
            started_at=doc.get("started_at"),
            finished_at=doc.get("finished_at"),
            messages=doc.get("messages", 0),
            topics=doc.get("topics", 0),
            duration_s=doc.get("duration_s", 0.0),
        )

    async def acquire(self, community_id: str, owner: str, lease: timedelta) -> None:
        """Take the community's clustering lease.

        Raises:
            ReclusterBusyError: another run holds an unexpired lease.
        """
        now = datetime.now(UTC)
        try:
            await self._db[TOPIC_RUNS].find_one_and_update(
                {
                    "_id": community_id,
                    "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
                },
                {"$set": {"lease_owner": owner, "lease_until": now + lease}},
                upsert=True,
            )
        except DuplicateKeyError:
            # The document exists with a live lease: the upsert tried to insert a second.
            raise ReclusterBusyError(f"topics of {community_id!r} are being rebuilt") from None

    async def release(self, community_id: str, owner: str, run: TopicRun | None) -> None:
        """Give the lease back, recording the finished run if there is one."""
        changes: dict[str, Any] = {"lease_until": None, "lease_owner": None}
        if run is not None:
            changes.update(
                started_at=run.started_at,
                finished_at=run.finished_at,
                messages=run.messages,
                topics=run.topics,
                duration_s=run.duration_s,
            )
        await self._db[TOPIC_RUNS].update_one(
            {"_id": community_id, "lease_owner": owner}, {"$set": changes}
        )


def _topic(doc: Mapping[str, Any]) -> Topic:
    fields = {key: value for key, value in doc.items() if key not in {"_id", "centroid"}}
    return Topic(id=doc["_id"], **fields)
