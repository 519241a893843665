"""MongoDB side of the digests: what a period holds, and the digests written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from pepite_contracts import MessageKind, Sentiment
from pepite_kit import Database, IndexSpec
from pepite_reports.digests.models import Digest

MESSAGES = "messages"
MEMBERS = "members"
TOPICS = "topics"
COMMUNITIES = "communities"
DIGESTS = "digests"
#: Insight messages' sentence vectors, as the classifier stores them (float32 bytes).
EMBEDDINGS = "message_embeddings"

#: A message's sentence vector (unit length as the embedder makes it).
Vector = npt.NDArray[np.float32]

DIGEST_INDEXES = (
    IndexSpec(DIGESTS, [("community_id", 1), ("period_start", -1)], "community_period"),
)

#: What :func:`period_message` reads of a stored message.
MESSAGE_FIELDS = {
    "channel.id": 1,
    "channel.name": 1,
    "author.id": 1,
    "author.name": 1,
    "author.display_name": 1,
    "author.is_bot": 1,
    "text": 1,
    "created_at": 1,
    "reply_to_id": 1,
    "thread.id": 1,
    "reactions.count": 1,
    "mentions.member_id": 1,
    "analysis.kind": 1,
    "analysis.sentiment": 1,
    "topic_id": 1,
    "erased_at": 1,
}


@dataclass(frozen=True, slots=True)
class PeriodMessage:
    """What a digest needs of one message."""

    message_id: str
    channel_id: str
    channel_name: str
    author_id: str
    author_name: str
    is_bot: bool
    text: str
    created_at: datetime
    reply_to_id: str | None
    thread_id: str | None
    reactions: int
    mentioned: tuple[str, ...]
    kind: MessageKind | None
    sentiment: Sentiment | None
    topic_id: str | None
    #: Its sentence vector when the classifier embedded it (insight messages only).
    vector: Vector | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    topic_id: str
    name: str
    created_at: datetime | None
    #: The catch-all of messages that fit no topic: never a trend.
    is_other: bool = False


@dataclass(frozen=True, slots=True)
class MemberInfo:
    member_id: str
    name: str
    first_seen_at: datetime


def period_message(doc: dict[str, Any], vector: Vector | None = None) -> PeriodMessage:
    """A stored message (read with :data:`MESSAGE_FIELDS`) as a digest sees it."""
    author = doc.get("author") or {}
    channel = doc.get("channel") or {}
    analysis = doc.get("analysis") or {}
    thread = doc.get("thread") or {}
    kind = analysis.get("kind")
    sentiment = analysis.get("sentiment")
    return PeriodMessage(
        message_id=doc["_id"],
        channel_id=channel.get("id", ""),
        channel_name=channel.get("name") or channel.get("id", ""),
        author_id=author.get("id", ""),
        author_name=author.get("display_name") or author.get("name") or "someone",
        is_bot=bool(author.get("is_bot")),
        text=doc.get("text") or "",
        created_at=doc["created_at"],
        reply_to_id=doc.get("reply_to_id"),
        thread_id=thread.get("id"),
        reactions=sum(r.get("count", 0) for r in doc.get("reactions") or []),
        mentioned=tuple(m["member_id"] for m in doc.get("mentions") or [] if m.get("member_id")),
        kind=MessageKind(kind) if kind else None,
        sentiment=Sentiment(sentiment) if sentiment else None,
        topic_id=doc.get("topic_id"),
        vector=vector,
    )


class DigestRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def timezone(self, community_id: str) -> str:
        """The community's time zone (UTC unless its settings say otherwise)."""
        doc = await self._db[COMMUNITIES].find_one({"_id": community_id}, {"timezone": 1})
        return str(doc.get("timezone") or "UTC") if doc else "UTC"

    async def community_name(self, community_id: str) -> str:
        """The community's name as its settings give it (empty when not set)."""
        doc = await self._db[COMMUNITIES].find_one({"_id": community_id}, {"name": 1})
        return str(doc.get("name") or "") if doc else ""

    async def messages(
        self, community_id: str, start: datetime, end: datetime
    ) -> list[PeriodMessage]:
        """The community's messages in ``[start, end)``, oldest first (deleted ones left out),
        each with its sentence vector when it has one."""
        cursor = (
            self._db[MESSAGES]
            .find(
                {
                    "community_id": community_id,
                    "created_at": {"$gte": start, "$lt": end},
                    "deleted_at": {"$exists": False},
                },
                MESSAGE_FIELDS,
            )
            .sort([("created_at", 1), ("_id", 1)])
        )
        docs = [doc async for doc in cursor if not doc.get("erased_at")]
        vectors = await self.vectors(community_id, [doc["_id"] for doc in docs])
        return [period_message(doc, vectors.get(doc["_id"])) for doc in docs]

    async def vectors(self, community_id: str, message_ids: Sequence[str]) -> dict[str, Vector]:
        """The sentence vectors of those of ``message_ids`` that have one, by message id.

        One query for the whole period: a week's ids are far below the command size limit.
        """
        if not message_ids:
            return {}
        cursor = self._db[EMBEDDINGS].find(
            {"_id": {"$in": list(message_ids)}, "community_id": community_id}, {"vector": 1}
        )
        return {
            doc["_id"]: np.frombuffer(doc["vector"], dtype=np.float32)
            async for doc in cursor
            if doc.get("vector")
        }

    async def topics(self, community_id: str, topic_ids: set[str]) -> dict[str, TopicInfo]:
        if not topic_ids:
            return {}
        cursor = self._db[TOPICS].find(
            {"_id": {"$in": sorted(topic_ids)}, "community_id": community_id},
            {"name": 1, "created_at": 1, "is_other": 1},
        )
        return {
            doc["_id"]: TopicInfo(
                doc["_id"],
                doc.get("name") or "",
                doc.get("created_at"),
                is_other=bool(doc.get("is_other")),
            )
            async for doc in cursor
        }

    async def count_new_members(self, community_id: str, start: datetime, end: datetime) -> int:
        """How many members were first seen in ``[start, end)``, bots left out."""
        return await self._db[MEMBERS].count_documents(self._first_seen(community_id, start, end))

    @staticmethod
    def _first_seen(community_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        return {
            "community_id": community_id,
            "first_seen_at": {"$gte": start, "$lt": end},
            "is_bot": {"$ne": True},
        }

    async def new_members(
        self, community_id: str, start: datetime, end: datetime
    ) -> list[MemberInfo]:
        """Members first seen in ``[start, end)``, bots left out."""
        cursor = (
            self._db[MEMBERS]
            .find(
                {
                    "community_id": community_id,
                    "first_seen_at": {"$gte": start, "$lt": end},
                    "is_bot": {"$ne": True},
                },
                {"name": 1, "display_name": 1, "first_seen_at": 1},
            )
            .sort([("first_seen_at", 1), ("_id", 1)])
        )
        return [
            MemberInfo(
                doc["_id"], doc.get("display_name") or doc.get("name") or "", doc["first_seen_at"]
            )
            async for doc in cursor
        ]

    async def save(self, digest: Digest) -> None:
        document = digest.model_dump(mode="python")
        document["_id"] = document.pop("digest_id")
        await self._db[DIGESTS].replace_one({"_id": document["_id"]}, document, upsert=True)
