"""MongoDB side of the daily rollups: apply counter changes, read windows, rebuild."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from pepite_classifier.repository import MESSAGES
from pepite_classifier.rollups import (
    ActivityKey,
    KindKey,
    RollupChanges,
)
from pepite_contracts import INSIGHT_KINDS, MessageKind, Sentiment
from pepite_kit import Database, IndexSpec
from pepite_reports.rollups import (
    ACTIVITY_ROLLUPS,
    KIND_ROLLUPS,
    ROLLUP_VERSIONS,
    day_start,
    utc_day,
)

ROLLUP_INDEXES: list[IndexSpec] = [
    # Every read is one community over a range of days; the channel filter, when given,
    # is applied on the few documents of that range.
    IndexSpec(KIND_ROLLUPS, [("community_id", 1), ("day", 1)], "community_day"),
    IndexSpec(ACTIVITY_ROLLUPS, [("community_id", 1), ("day", 1)], "community_day"),
]

#: Writes per bulk request; bounds the size of one command for very large batches.
_BULK_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What a rebuild changed: counters written (created or corrected) and removed."""

    written: int
    removed: int


def _kind_upsert(key: KindKey, step: int) -> UpdateOne:
    return UpdateOne(
        {"_id": key.document_id},
        {
            "$inc": {"count": step},
            "$setOnInsert": {
                "community_id": key.community_id,
                "day": day_start(key.day),
                "channel_id": key.channel_id,
                "kind": key.kind.value,
                "topic_id": key.topic_id,
            },
        },
        upsert=True,
    )


def _activity_upsert(key: ActivityKey, increments: dict[str, int]) -> UpdateOne:
    return UpdateOne(
        {"_id": key.document_id},
        {
            "$inc": increments,
            "$setOnInsert": {
                "community_id": key.community_id,
                "day": day_start(key.day),
                "channel_id": key.channel_id,
            },
        },
        upsert=True,
    )


def _chunks(items: list[Any], size: int = _BULK_CHUNK) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class RollupRepository:
    """Reads and writes the ``kind_rollups`` and ``activity_rollups`` collections."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply(
        self, changes: RollupChanges, *, session: AsyncClientSession | None = None
    ) -> None:
        """Move the counters by ``changes`` with ``$inc`` upserts.

        Args:
            changes: Net changes, from :func:`pepite_classifier.rollups.rollup_changes`.
            session: Pass the session of a transaction that also writes the messages, so
                the counters and the states they were computed from commit together.
        """
        if changes.kinds:
            kind_ops = [_kind_upsert(key, step) for key, step in changes.kinds.items()]
            for chunk in _chunks(kind_ops):
                await self._db[KIND_ROLLUPS].bulk_write(chunk, ordered=False, session=session)
        if changes.activity:
            activity_ops = []
            for key, delta in changes.activity.items():
                increments = {"messages": delta.messages}
                increments.update(
                    {f"sentiment.{s.value}": n for s, n in delta.sentiments.items() if n}
                )
                activity_ops.append(_activity_upsert(key, increments))
            for chunk in _chunks(activity_ops):
                await self._db[ACTIVITY_ROLLUPS].bulk_write(chunk, ordered=False, session=session)
        communities = {key.community_id for key in changes.kinds} | {
            key.community_id for key in changes.activity
        }
        await self._new_versions(communities, session)

    async def _new_versions(
        self, community_ids: set[str], session: AsyncClientSession | None
    ) -> None:
        """Tell readers that these communities' rollups changed (their reports are stale)."""
        if not community_ids:
            return
        now = datetime.now(UTC)
        await self._db[ROLLUP_VERSIONS].bulk_write(
            [
                UpdateOne(
                    {"_id": community_id},
                    {"$inc": {"version": 1}, "$set": {"changed_at": now}},
                    upsert=True,
                )
                for community_id in sorted(community_ids)
            ],
            ordered=False,
            session=session,
        )

    async def rebuild(self, community_id: str) -> RebuildResult:
        """Recompute a community's counters from its stored messages.

        Used after topics are reassigned in bulk, and to repair counters. The messages
        are read and the counters replaced in one snapshot transaction: a report never
        sees a half-rebuilt community, and a concurrent transactional writer of messages
        and counters is either wholly before or wholly after the rebuild.
        """

        async def replace(session: AsyncClientSession) -> RebuildResult:
            kinds, activity = await self._count_messages(community_id, session)
            written, removed = await self._replace_documents(
                KIND_ROLLUPS, community_id, kinds, ("count",), session
            )
            more_written, more_removed = await self._replace_documents(
                ACTIVITY_ROLLUPS, community_id, activity, ("messages", "sentiment"), session
            )
            await self._new_versions({community_id}, session)
            return RebuildResult(written + more_written, removed + more_removed)

        async with self._db.client.start_session() as session:
            return await session.with_transaction(
                replace,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )

    async def _count_messages(
        self, community_id: str, session: AsyncClientSession
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The counter documents the community's messages call for, by document id."""
        insight_kinds = sorted(kind.value for kind in INSIGHT_KINDS)
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "analysis.kind": {"$exists": True},
                    "deleted_at": None,
                }
            },
            {
                "$group": {
                    "_id": {
                        "day": {"$dateTrunc": {"date": "$created_at", "unit": "day"}},
                        "channel": "$channel.id",
                        "kind": "$analysis.kind",
                        "sentiment": {"$ifNull": ["$analysis.sentiment", Sentiment.NEUTRAL.value]},
                        "topic": {
                            "$cond": [
                                {"$in": ["$analysis.kind", insight_kinds]},
                                {"$ifNull": ["$topic_id", None]},
                                None,
                            ]
                        },
                    },
                    "count": {"$sum": 1},
                }
            },
        ]
        kinds: dict[str, dict[str, Any]] = {}
        activity: dict[str, dict[str, Any]] = {}
        cursor = await self._db[MESSAGES].aggregate(pipeline, session=session)
        async for doc in cursor:
            group = doc["_id"]
            day = utc_day(group["day"])
            count = doc["count"]
            kind_key = KindKey(
                community_id, day, group["channel"], MessageKind(group["kind"]), group["topic"]
            )
            kind_doc = kinds.setdefault(
                kind_key.document_id,
                {
                    "community_id": community_id,
                    "day": day_start(day),
                    "channel_id": kind_key.channel_id,
                    "kind": kind_key.kind.value,
                    "topic_id": kind_key.topic_id,
                    "count": 0,
                },
            )
            kind_doc["count"] += count
            activity_key = ActivityKey(community_id, day, group["channel"])
            activity_doc = activity.setdefault(
                activity_key.document_id,
                {
                    "community_id": community_id,
                    "day": day_start(day),
                    "channel_id": activity_key.channel_id,
                    "messages": 0,
                    "sentiment": {},
                },
            )
            activity_doc["messages"] += count
            sentiment = Sentiment(group["sentiment"]).value
            activity_doc["sentiment"][sentiment] = (
                activity_doc["sentiment"].get(sentiment, 0) + count
            )
        return kinds, activity

    async def _replace_documents(
        self,
        collection: str,
        community_id: str,
        wanted: dict[str, dict[str, Any]],
        compared: tuple[str, ...],
        session: AsyncClientSession,
    ) -> tuple[int, int]:
        """Make a community's documents in ``collection`` exactly ``wanted``.

        Only documents whose counts differ are written, so a rebuild that changes little
        writes little (and conflicts little with live updates).
        """
        projection = dict.fromkeys(compared, 1)
        existing: dict[str, dict[str, Any]] = {
            doc["_id"]: doc
            async for doc in self._db[collection].find(
                {"community_id": community_id}, projection, session=session
            )
        }
        ops: list[UpdateOne | DeleteOne] = []
        written = 0
        for doc_id, document in wanted.items():
            current = existing.get(doc_id)
            if current is None or any(
                _normalized(current.get(name)) != _normalized(document[name]) for name in compared
            ):
                ops.append(UpdateOne({"_id": doc_id}, {"$set": document}, upsert=True))
                written += 1
        removed = 0
        for doc_id, current in existing.items():
            if doc_id not in wanted:
                ops.append(DeleteOne({"_id": doc_id}))
                # Counters already at zero are leftovers, not corrections.
                if any(_normalized(current.get(name)) for name in compared):
                    removed += 1
        for chunk in _chunks(ops):
            await self._db[collection].bulk_write(chunk, ordered=False, session=session)
        return written, removed


def _normalized(value: Any) -> Any:
    """A counter value with zero entries dropped, so ``{"neutral": 0}`` equals ``{}``."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v}
    return value or 0
