"""MongoDB side of unanswered questions: the questions waiting, what surrounds them, and
the list kept in ``unanswered_questions`` (one document per question, ``_id`` its id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from pepite_contracts import ConsentFlags, MemberErasure, MessageKind
from pepite_digest.lore import excerpt
from pepite_digest.repository import (
    COMMUNITIES,
    MESSAGE_FIELDS,
    MESSAGES,
    PeriodMessage,
    period_message,
)
from pepite_kit import Database, IndexSpec

UNANSWERED = "unanswered_questions"

UNANSWERED_INDEXES = (
    # The API lists a community's questions oldest first.
    IndexSpec(UNANSWERED, [("community_id", 1), ("asked_at", 1)], "community_asked"),
    IndexSpec(UNANSWERED, [("author_id", 1)], "author"),
)

#: Messages still there: neither deleted nor erased.
_KEPT: dict[str, Any] = {"deleted_at": {"$exists": False}, "erased_at": {"$exists": False}}


@dataclass(frozen=True)
class CommunityWait:
    """How long a community's questions may wait before they are listed."""

    community_id: str
    #: The community's own delay (``communities.unanswered.after_hours``), if it set one.
    after: timedelta | None


@dataclass(frozen=True)
class UnansweredQuestion:
    """A listed question, and when it was alerted (``None`` until it is)."""

    question_id: str
    community_id: str
    channel_id: str
    channel_name: str
    author_id: str
    author_name: str
    asked_at: datetime
    excerpt: str
    listed_at: datetime
    alerted_at: datetime | None


def _question(doc: dict[str, Any]) -> UnansweredQuestion:
    return UnansweredQuestion(
        question_id=doc["_id"],
        community_id=doc["community_id"],
        channel_id=doc["channel_id"],
        channel_name=doc["channel_name"],
        author_id=doc["author_id"],
        author_name=doc["author_name"],
        asked_at=doc["asked_at"],
        excerpt=doc["excerpt"],
        listed_at=doc["listed_at"],
        alerted_at=doc.get("alerted_at"),
    )


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping ``(start, end)`` spans joined, so a busy channel is read once."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class UnansweredRepository:
    """Reads questions and their surroundings; keeps the list of unanswered questions.

    It is also the list's :class:`~pepite_digest.privacy.MemberDataOwner`: an erased
    member's questions leave it.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def communities(self) -> list[CommunityWait]:
        cursor = self._db[COMMUNITIES].find({}, {"unanswered": 1})
        waits = []
        async for doc in cursor:
            hours = (doc.get("unanswered") or {}).get("after_hours")
            # A delay that is not a positive number of hours is ignored, not fatal.
            after = None
            if isinstance(hours, int | float) and not isinstance(hours, bool) and hours > 0:
                after = timedelta(hours=hours)
            waits.append(CommunityWait(doc["_id"], after))
        return waits

    async def questions(
        self, community_id: str, start: datetime, end: datetime
    ) -> list[PeriodMessage]:
        """Members' questions asked in ``[start, end)``, oldest first."""
        cursor = (
            self._db[MESSAGES]
            .find(
                {
                    "community_id": community_id,
                    "created_at": {"$gte": start, "$lt": end},
                    "analysis.kind": MessageKind.QUESTION.value,
                    "author.is_bot": {"$ne": True},
                    **_KEPT,
                },
                MESSAGE_FIELDS,
            )
            .sort([("created_at", 1), ("_id", 1)])
        )
        return [period_message(doc) async for doc in cursor]

    async def surroundings(
        self, community_id: str, questions: Sequence[PeriodMessage], window: timedelta
    ) -> list[PeriodMessage]:
        """The questions and what could answer them, oldest first: replies to them (at any
        time), their threads, and their channels during ``window`` after each."""
        if not questions:
            return []
        spans: dict[str, list[tuple[datetime, datetime]]] = {}
        for q in questions:
            spans.setdefault(q.channel_id, []).append((q.created_at, q.created_at + window))
        around: list[dict[str, Any]] = [
            # ``$type`` lets the partial index of replies serve this clause.
            {"reply_to_id": {"$in": [q.message_id for q in questions], "$type": "string"}},
            *(
                {"channel.id": channel, "created_at": {"$gte": start, "$lte": end}}
                for channel, channel_spans in spans.items()
                for start, end in _merged(channel_spans)
            ),
        ]
        threads = sorted({q.thread_id for q in questions if q.thread_id})
        if threads:
            around.append({"thread.id": {"$in": threads}})
        cursor = (
            self._db[MESSAGES]
            .find(
                {
                    "community_id": community_id,
                    # Nothing before the first question answers any: whatever plan the
                    # server picks reads the horizon at most, never the whole community.
                    "created_at": {"$gte": min(q.created_at for q in questions)},
                    "$or": around,
                    **_KEPT,
                },
                MESSAGE_FIELDS,
            )
            .sort([("created_at", 1), ("_id", 1)])
        )
        return [period_message(doc) async for doc in cursor]

    async def keep_listed(
        self, community_id: str, waiting: Sequence[PeriodMessage], now: datetime
    ) -> None:
        """Make ``waiting`` the community's list: new questions added (not yet alerted),
        those answered since or past the horizon removed."""
        writes = [
            UpdateOne(
                {"_id": q.message_id},
                {
                    "$set": {
                        "community_id": community_id,
                        "channel_id": q.channel_id,
                        "channel_name": q.channel_name,
                        "author_id": q.author_id,
                        "author_name": q.author_name,
                        "asked_at": q.created_at,
                        "excerpt": excerpt(q.text),
                    },
                    "$setOnInsert": {"listed_at": now, "alerted_at": None},
                },
                upsert=True,
            )
            for q in waiting
        ]
        if writes:
            await self._db[UNANSWERED].bulk_write(writes, ordered=False)
        await self._db[UNANSWERED].delete_many(
            {"community_id": community_id, "_id": {"$nin": [q.message_id for q in waiting]}}
        )

    async def listed(self, community_id: str) -> list[UnansweredQuestion]:
        """The community's list, oldest question first."""
        cursor = (
            self._db[UNANSWERED]
            .find({"community_id": community_id})
            .sort([("asked_at", 1), ("_id", 1)])
        )
        return [_question(doc) async for doc in cursor]

    async def mark_alerted(self, question_id: str, at: datetime) -> None:
        await self._db[UNANSWERED].update_one(
            {"_id": question_id, "alerted_at": None}, {"$set": {"alerted_at": at}}
        )

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        """Nothing to do: the list is the community's, under no per-member feature."""

    async def erase(self, erasure: MemberErasure) -> None:
        """The member's questions leave the list (their messages are erased too, so
        they are not listed again)."""
        await self._db[UNANSWERED].delete_many(
            {"community_id": erasure.community_id, "author_id": erasure.member_id}
        )
