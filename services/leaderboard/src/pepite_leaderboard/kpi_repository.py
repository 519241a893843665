"""MongoDB side of the KPI rollups: member numbers, counters, questions, erasure, rebuild."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from pepite_contracts import MemberErasure
from pepite_kit import Database, IndexSpec
from pepite_leaderboard.kpi_rollups import (
    EarlyReply,
    JoinListing,
    KpiMessage,
    QuestionState,
    ResponseFact,
    activity_increments,
    joins_moves,
    response_increments,
)
from pepite_reports.kpis import (
    KPI_ACTIVITY,
    KPI_COUNTERS,
    KPI_JOINS,
    KPI_MEMBERS,
    KPI_MESSAGES,
    KPI_QUESTIONS,
    KPI_RESPONSES,
    Grain,
    day_start,
    month_start,
)

MESSAGES = "messages"

KPI_INDEXES: list[IndexSpec] = [
    # Reads are one community, one grain, one scope over a range of starts; most reads
    # go by document id.
    IndexSpec(
        KPI_ACTIVITY,
        [("community_id", 1), ("grain", 1), ("channel_id", 1), ("start", 1)],
        "community_grain_channel_start",
    ),
    IndexSpec(
        KPI_MEMBERS, [("community_id", 1), ("member_id", 1)], "community_member", unique=True
    ),
    # Covers the KPI read of joins (new members, cohorts): no member document is fetched.
    IndexSpec(
        KPI_MEMBERS,
        [("community_id", 1), ("joined_at", 1), ("idx", 1)],
        "community_joined_idx",
    ),
    # Covers the KPI read (questions of a period, their response times).
    IndexSpec(
        KPI_QUESTIONS,
        [
            ("community_id", 1),
            ("is_question", 1),
            ("asked_at", 1),
            ("channel_id", 1),
            ("response_s", 1),
        ],
        "community_question_asked",
    ),
    IndexSpec(
        KPI_QUESTIONS,
        [("community_id", 1), ("thread_id", 1), ("asked_at", 1)],
        "community_thread_asked",
        partial_filter={"thread_id": {"$type": "string"}},
    ),
    IndexSpec(
        KPI_QUESTIONS,
        [("community_id", 1), ("channel_id", 1), ("asked_at", 1)],
        "community_channel_asked",
    ),
    IndexSpec(KPI_MESSAGES, [("community_id", 1)], "community"),
    IndexSpec(KPI_JOINS, [("community_id", 1), ("start", 1)], "community_start"),
    # Reads go by document id; this serves a community's rebuild and range reads.
    IndexSpec(
        KPI_RESPONSES,
        [("community_id", 1), ("grain", 1), ("channel_id", 1), ("start", 1)],
        "community_grain_channel_start",
    ),
]

#: Writes per bulk request; bounds the size of one command.
_BULK_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class MemberTouch:
    """What a batch says about one member: its first message and/or a join.

    Only earliest times are kept: they change once per member, so a batch of messages
    from known members writes no member document at all.
    """

    first_message: datetime | None = None
    joined: datetime | None = None

    def merge(self, other: MemberTouch) -> MemberTouch:
        return MemberTouch(
            _earliest(self.first_message, other.first_message),
            _earliest(self.joined, other.joined),
        )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _chunks(items: list[Any], size: int = _BULK_CHUNK) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _question(doc: Mapping[str, Any]) -> QuestionState:
    return QuestionState(
        question_id=doc["_id"],
        community_id=doc["community_id"],
        channel_id=doc.get("channel_id"),
        thread_id=doc.get("thread_id"),
        asked_at=doc.get("asked_at"),
        asker=doc.get("asker"),
        is_question=bool(doc.get("is_question")),
        response_at=doc.get("response_at"),
        response_id=doc.get("response_id"),
        early=[EarlyReply(e["member"], e["at"], e["message_id"]) for e in doc.get("early") or ()],
    )


class KpiRepository:
    """Reads and writes the ``kpi_*`` collections (see :mod:`pepite_reports.kpis`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ----- members -----

    async def member_numbers(
        self, community_id: str, touches: Mapping[str, MemberTouch]
    ) -> dict[str, int]:
        """Each member's number, giving new members one, and their times moved.

        Writes only the members whose first or last message or join moves.
        """
        try:
            return await self._member_numbers(community_id, touches)
        except (BulkWriteError, DuplicateKeyError):
            # Another writer created some of these members at the same moment: their
            # numbers are now stored, so the second pass only reads them.
            return await self._member_numbers(community_id, touches)

    async def _member_numbers(
        self, community_id: str, touches: Mapping[str, MemberTouch]
    ) -> dict[str, int]:
        ids = sorted(touches)
        stored: dict[str, dict[str, Any]] = {
            doc["member_id"]: doc
            async for doc in self._db[KPI_MEMBERS].find(
                {"community_id": community_id, "member_id": {"$in": ids}},
                {
                    "member_id": 1,
                    "idx": 1,
                    "first_seen": 1,
                    "joined_at": 1,
                    "joined_event_at": 1,
                    "joins_month": 1,
                },
            )
        }
        missing = [member_id for member_id in ids if member_id not in stored]
        proposed: dict[str, int] = {}
        if missing:
            counter = await self._db[KPI_COUNTERS].find_one_and_update(
                {"_id": community_id},
                {"$inc": {"next": len(missing)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if counter is None:  # an upsert returning the document after never gives None
                raise RuntimeError(f"no member counter for community {community_id!r}")
            start = int(counter["next"]) - len(missing)
            proposed = {member_id: start + n for n, member_id in enumerate(missing)}
        ops = []
        for member_id in ids:
            update = _touch_update(touches[member_id], stored.get(member_id))
            if member_id in proposed:
                update.setdefault("$setOnInsert", {})["idx"] = proposed[member_id]
            if update:
                ops.append(
                    UpdateOne(
                        {"community_id": community_id, "member_id": member_id},
                        update,
                        upsert=True,
                    )
                )
        for chunk in _chunks(ops):
            await self._db[KPI_MEMBERS].bulk_write(chunk, ordered=False)
        numbers = {member_id: int(doc["idx"]) for member_id, doc in stored.items()}
        if missing:
            # Read back: a concurrent writer may have given some of them a number first.
            async for doc in self._db[KPI_MEMBERS].find(
                {"community_id": community_id, "member_id": {"$in": missing}},
                {"member_id": 1, "idx": 1},
            ):
                numbers[doc["member_id"]] = int(doc["idx"])
        # Members whose join moves, and any a crash left listed under another month
        # than their join's: a replay of the batch lists them right.
        moved = [
            member_id
            for member_id in ids
            if _touch_update(touches[member_id], stored.get(member_id))
            .get("$min", {})
            .get("joined_at")
            or _listed_elsewhere(stored.get(member_id))
        ]
        if moved:
            await self._list_joins(community_id, moved)
        return numbers

    async def _list_joins(self, community_id: str, member_ids: Sequence[str]) -> None:
        """List members under the month they joined in ``kpi_joins``, moving them if their
        join moved to an earlier month.

        Each member document remembers the month it is listed under (``joins_month``);
        members are read and moved in one transaction, so a concurrent writer moving the
        same member conflicts and retries against the result, and a replay moves nothing.
        """

        async def move(session: AsyncClientSession) -> None:
            members = self._db[KPI_MEMBERS]
            docs = [
                doc
                async for doc in members.find(
                    {"community_id": community_id, "member_id": {"$in": list(member_ids)}},
                    {"idx": 1, "joined_at": 1, "joins_month": 1},
                    session=session,
                )
            ]
            moves = joins_moves(
                community_id,
                [
                    JoinListing(int(doc["idx"]), doc.get("joined_at"), doc.get("joins_month"))
                    for doc in docs
                ],
            )
            if not moves.listed:
                return
            await members.bulk_write(
                [
                    UpdateOne({"_id": doc["_id"]}, {"$set": {"joins_month": moves.listed[idx]}})
                    for doc in docs
                    if (idx := int(doc["idx"])) in moves.listed
                ],
                ordered=False,
                session=session,
            )
            await self._db[KPI_JOINS].bulk_write(
                [
                    # Taking a member away never creates a document.
                    UpdateOne({"_id": change.document_id}, update, upsert="$pull" not in update)
                    for change in moves.updates
                    for update in change.updates()
                ],
                ordered=False,
                session=session,
            )

        async with self._db.client.start_session() as session:
            await session.with_transaction(move)

    async def erase(self, erasure: MemberErasure) -> None:
        """Replace the member's id by its pseudonym; counters only hold its number.

        If the pseudonym already has a document (messages stored after the erasure came
        under it), the erased one is named by the pseudonym and its number, which says no
        more. Replays find nothing left to do.
        """
        members = self._db[KPI_MEMBERS]
        doc = await members.find_one(
            {"community_id": erasure.community_id, "member_id": erasure.member_id},
            {"_id": 1, "idx": 1},
        )
        if doc is None:
            return
        taken = await members.find_one(
            {"community_id": erasure.community_id, "member_id": erasure.pseudonym}, {"_id": 1}
        )
        name = erasure.pseudonym if taken is None else f"{erasure.pseudonym}#{doc['idx']}"
        await members.update_one({"_id": doc["_id"]}, {"$set": {"member_id": name, "erased": True}})

    # ----- counters -----

    async def count_new(
        self, community_id: str, messages: Sequence[KpiMessage], numbers: Mapping[str, int]
    ) -> int:
        """Count the messages never counted before; how many that was.

        The record of counted messages and the counters commit together in one
        transaction: a crash leaves both or neither, so a replay counts each message once.
        """

        async def count(session: AsyncClientSession) -> int:
            ids = [m.message_id for m in messages]
            seen: set[str] = set()
            for chunk in _chunks(ids):
                seen.update(
                    [
                        doc["_id"]
                        async for doc in self._db[KPI_MESSAGES].find(
                            {"_id": {"$in": chunk}}, {"_id": 1}, session=session
                        )
                    ]
                )
            new = []
            for message in messages:
                if message.message_id not in seen:
                    seen.add(message.message_id)
                    new.append(message)
            if not new:
                return 0
            for chunk in _chunks(
                [{"_id": m.message_id, "community_id": community_id} for m in new]
            ):
                await self._db[KPI_MESSAGES].insert_many(chunk, ordered=False, session=session)
            increments = activity_increments(new, numbers)
            ops = [
                UpdateOne({"_id": inc.document_id}, inc.update(), upsert=True) for inc in increments
            ]
            for chunk in _chunks(ops):
                await self._db[KPI_ACTIVITY].bulk_write(chunk, ordered=False, session=session)
            # Active members per day, kept beside the members: a year of daily active
            # counts is then read without listing anyone. Only days: nothing reads it on
            # months, whose thousands of members would be recounted on every batch.
            touched = [inc.document_id for inc in increments if inc.grain is Grain.DAY]
            for chunk in _chunks(touched):
                await self._db[KPI_ACTIVITY].update_many(
                    {"_id": {"$in": chunk}},
                    [{"$set": {"active": {"$size": {"$objectToArray": "$members"}}}}],
                    session=session,
                )
            return len(new)

        async with self._db.client.start_session() as session:
            return await session.with_transaction(count)

    # ----- questions -----

    async def questions_for(
        self, community_id: str, messages: Sequence[KpiMessage], answer_window: timedelta
    ) -> list[QuestionState]:
        """The stored questions a batch of messages may create, change or respond to."""
        batch_ids = sorted({m.message_id for m in messages})
        ids = sorted(set(batch_ids) | {m.reply_to_id for m in messages if m.reply_to_id})
        open_or_ours = {"$or": [{"response_id": None}, {"response_id": {"$in": batch_ids}}]}
        latest = max(m.created_at for m in messages)
        queries: list[dict[str, Any]] = [{"community_id": community_id, "_id": {"$in": ids}}]
        threads = sorted({m.thread_id for m in messages if m.thread_id})
        if threads:
            queries.append(
                {
                    "community_id": community_id,
                    "thread_id": {"$in": threads},
                    "is_question": True,
                    "asked_at": {"$lt": latest},
                    **open_or_ours,
                }
            )
        answering = [m for m in messages if m.thread_id is None and m.reply_to_id is None]
        channels = sorted({m.channel_id for m in answering})
        if channels:
            earliest = min(m.created_at for m in answering)
            queries.append(
                {
                    "community_id": community_id,
                    "channel_id": {"$in": channels},
                    "is_question": True,
                    "thread_id": None,
                    "asked_at": {"$gte": earliest - answer_window, "$lt": latest},
                    **open_or_ours,
                }
            )

        async def run(query: dict[str, Any]) -> list[dict[str, Any]]:
            return [doc async for doc in self._db[KPI_QUESTIONS].find(query)]

        found: dict[str, QuestionState] = {}
        for docs in await asyncio.gather(*(run(q) for q in queries)):
            for doc in docs:
                found[doc["_id"]] = _question(doc)
        return list(found.values())

    async def counted_among(self, message_ids: Iterable[str]) -> set[str]:
        """Those of ``message_ids`` already counted (seen as members' messages)."""
        ids = sorted(set(message_ids))
        seen: set[str] = set()
        for chunk in _chunks(ids):
            seen.update(
                [
                    doc["_id"]
                    async for doc in self._db[KPI_MESSAGES].find(
                        {"_id": {"$in": chunk}}, {"_id": 1}
                    )
                ]
            )
        return seen

    async def save_questions(
        self,
        community_id: str,
        changed: Iterable[QuestionState],
        early: Mapping[str, Sequence[EarlyReply]],
    ) -> None:
        """Write changed questions, their response histograms, and replies to messages
        not seen yet.

        The histograms move by the difference between each question's stored state and
        its new one, read and written in one transaction: a crash leaves both or
        neither, and a concurrent writer of the same question makes one of the two
        retry against the other's state, so nothing is counted twice.
        """
        changed = list(changed)
        ops = []
        for q in changed:
            ops.append(
                UpdateOne(
                    {"_id": q.question_id},
                    {
                        "$set": {
                            "community_id": community_id,
                            "channel_id": q.channel_id,
                            "thread_id": q.thread_id,
                            "asked_at": q.asked_at,
                            "asker": q.asker,
                            "is_question": q.is_question,
                            "response_at": q.response_at,
                            "response_id": q.response_id,
                            "response_s": q.response_s,
                            "early": [],
                        }
                    },
                    upsert=True,
                )
            )
        for message_id, replies in early.items():
            ops.append(
                UpdateOne(
                    {"_id": message_id},
                    {
                        "$setOnInsert": {"community_id": community_id, "is_question": False},
                        # Whole sub-documents: a replayed reply is added once.
                        "$addToSet": {
                            "early": {
                                "$each": [
                                    {"member": r.member, "at": r.at, "message_id": r.message_id}
                                    for r in replies
                                ]
                            }
                        },
                    },
                    upsert=True,
                )
            )
        if not ops:
            return

        async def save(session: AsyncClientSession) -> None:
            stored: dict[str, ResponseFact | None] = {}
            for chunk in _chunks([q.question_id for q in changed]):
                async for doc in self._db[KPI_QUESTIONS].find(
                    {"_id": {"$in": chunk}},
                    {"is_question": 1, "asked_at": 1, "channel_id": 1, "response_s": 1},
                    session=session,
                ):
                    stored[doc["_id"]] = ResponseFact.of(
                        community_id,
                        is_question=bool(doc.get("is_question")),
                        asked_at=doc.get("asked_at"),
                        channel_id=doc.get("channel_id"),
                        response_s=doc.get("response_s"),
                    )
            increments = response_increments(
                (
                    stored.get(q.question_id),
                    ResponseFact.of(
                        community_id,
                        is_question=q.is_question,
                        asked_at=q.asked_at,
                        channel_id=q.channel_id,
                        response_s=q.response_s,
                    ),
                )
                for q in changed
            )
            for chunk in _chunks(ops):
                await self._db[KPI_QUESTIONS].bulk_write(chunk, ordered=False, session=session)
            histograms = [
                UpdateOne({"_id": inc.document_id}, inc.update(), upsert=True) for inc in increments
            ]
            for chunk in _chunks(histograms):
                await self._db[KPI_RESPONSES].bulk_write(chunk, ordered=False, session=session)

        async with self._db.client.start_session() as session:
            await session.with_transaction(save)

    # ----- rebuild -----

    async def reset(self, community_id: str) -> None:
        """Forget every count of the community; members keep their numbers and joins."""
        query = {"community_id": community_id}
        for collection in (KPI_ACTIVITY, KPI_QUESTIONS, KPI_MESSAGES, KPI_RESPONSES, KPI_JOINS):
            await self._db[collection].delete_many(query)
        await self._db[KPI_MEMBERS].update_many(
            query,
            [
                {"$unset": ["first_seen", "joined_at", "joins_month"]},
                {"$set": {"joined_at": "$joined_event_at"}},
            ],
        )
        # Members who joined by an event stay listed; the replay lists the others.
        joined = [
            doc["member_id"]
            async for doc in self._db[KPI_MEMBERS].find(
                {"community_id": community_id, "joined_at": {"$type": "date"}}, {"member_id": 1}
            )
        ]
        for chunk in _chunks(joined):
            await self._list_joins(community_id, chunk)

    async def stored_count(self, community_id: str) -> int:
        return await self._db[MESSAGES].count_documents(
            {"community_id": community_id, "analysis.kind": {"$exists": True}}
        )

    async def stored_messages(
        self, community_id: str, *, batch_size: int = 2_000
    ) -> AsyncIterator[list[KpiMessage]]:
        """The community's analyzed messages in time order, ``batch_size`` at a time."""
        cursor = (
            self._db[MESSAGES]
            .find(
                {"community_id": community_id, "analysis.kind": {"$exists": True}},
                {
                    "community_id": 1,
                    "channel.id": 1,
                    "thread.id": 1,
                    "reply_to_id": 1,
                    "author.id": 1,
                    "author.is_bot": 1,
                    "created_at": 1,
                    "analysis.kind": 1,
                },
            )
            .sort([("created_at", 1), ("_id", 1)])
            .batch_size(batch_size)
        )
        batch: list[KpiMessage] = []
        async for doc in cursor:
            batch.append(KpiMessage.from_document(doc))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _listed_elsewhere(stored: Mapping[str, Any] | None) -> bool:
    """A stored member with a join that ``kpi_joins`` lists under no or another month."""
    if stored is None or stored.get("joined_at") is None:
        return False
    joined: datetime = stored["joined_at"]
    listed: datetime | None = stored.get("joins_month")
    return listed is None or listed != day_start(month_start(joined.astimezone(UTC).date()))


def _touch_update(touch: MemberTouch, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The update moving a member's times by ``touch``; empty if none moves."""
    earliest: dict[str, datetime] = {}
    stored = stored or {}

    def lower(name: str, value: datetime | None) -> None:
        if value is not None and (stored.get(name) is None or value < stored[name]):
            earliest[name] = value

    lower("first_seen", touch.first_message)
    lower("joined_at", _earliest(touch.first_message, touch.joined))
    lower("joined_event_at", touch.joined)
    return {"$min": earliest} if earliest else {}
