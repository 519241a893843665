"""MongoDB reads of the community gauges: each one a short indexed read per community.

Nothing here scans a community's messages: the 24-hour count walks the
``community_time`` index over one day of messages, the last ingestion is the first key
of ``community_stored`` (declared here), insights and sentiments are summed from the
classifier's daily rollups (7 documents per channel and kind at most), and open alerts
come from the ``alerts`` collection through its ``community_series`` index.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pepite_contracts import INSIGHT_KINDS, MessageKind, Sentiment
from pepite_kit import Database, IndexSpec
from pepite_reports.rollups import ACTIVITY_ROLLUPS, KIND_ROLLUPS, day_start

MESSAGES = "messages"
#: Raised alerts, written by the leaderboard service (``alerts_repository``).
ALERTS = "alerts"

COMMUNITY_GAUGE_INDEXES: tuple[IndexSpec, ...] = (
    # The classifier stamps ``stored_at`` when it first stores a message; the newest of
    # a community is then one index key away. Keys grow with time, so inserts append.
    IndexSpec(MESSAGES, [("community_id", 1), ("stored_at", -1)], "community_stored"),
)


def _as_utc(instant: datetime) -> datetime:
    # Documents read by a client without tz_aware come back naive; they are UTC.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


class CommunityGaugesRepository:
    """The reads behind the community gauges; every query is filtered by community."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def community_ids(self) -> list[str]:
        """Every community with stored messages (one key per community of an index)."""
        ids = await self._db[MESSAGES].distinct("community_id")
        return sorted(str(i) for i in ids if isinstance(i, str))

    async def messages_since(self, community_id: str, since: datetime) -> int:
        """Messages of the community whose message time is ``since`` or later, deleted
        ones (tombstones) left out."""
        window = {"community_id": community_id, "created_at": {"$gte": since}}
        stored = await self._db[MESSAGES].count_documents(window)
        if not stored:
            return 0
        # Deleted messages are few and have their own partial index: counted apart, the
        # main count stays on the index alone.
        deleted = await self._db[MESSAGES].count_documents(
            {**window, "deleted_at": {"$exists": True}}
        )
        return stored - deleted

    async def last_ingested_at(self, community_id: str) -> datetime | None:
        """When the community's most recently stored message was stored."""
        doc = await self._db[MESSAGES].find_one(
            {"community_id": community_id, "stored_at": {"$exists": True}},
            {"_id": 0, "stored_at": 1},
            sort=[("stored_at", -1)],
        )
        return None if doc is None else _as_utc(doc["stored_at"])

    async def insight_counts(self, community_id: str, first_day: date) -> dict[MessageKind, int]:
        """Insight messages per kind from ``first_day`` (a UTC day) on."""
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "day": {"$gte": day_start(first_day)},
                    "kind": {"$in": sorted(k.value for k in INSIGHT_KINDS)},
                }
            },
            {"$group": {"_id": "$kind", "count": {"$sum": "$count"}}},
        ]
        cursor = await self._db[KIND_ROLLUPS].aggregate(pipeline)
        return {MessageKind(doc["_id"]): int(doc["count"]) async for doc in cursor}

    async def sentiment_counts(self, community_id: str, first_day: date) -> dict[Sentiment, int]:
        """Analyzed messages per sentiment from ``first_day`` (a UTC day) on."""
        group: dict[str, Any] = {"_id": None}
        group.update({s.value: {"$sum": f"$sentiment.{s.value}"} for s in Sentiment})
        pipeline: list[dict[str, Any]] = [
            {"$match": {"community_id": community_id, "day": {"$gte": day_start(first_day)}}},
            {"$group": group},
        ]
        cursor = await self._db[ACTIVITY_ROLLUPS].aggregate(pipeline)
        totals = await cursor.to_list()
        if not totals:
            return {}
        return {s: int(totals[0].get(s.value) or 0) for s in Sentiment}

    async def open_alerts(self, community_id: str) -> dict[str, int]:
        """Alerts neither acknowledged nor resolved, per kind (as stored, not labelled).

        Alerts carry no acknowledgement yet; ``acknowledged_at`` and ``resolved_at``
        are what closes one, so until something sets them every alert is open.
        """
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "acknowledged_at": None,
                    "resolved_at": None,
                }
            },
            {"$group": {"_id": "$kind", "count": {"$sum": 1}}},
        ]
        cursor = await self._db[ALERTS].aggregate(pipeline)
        return {str(doc["_id"]): int(doc["count"]) async for doc in cursor}
