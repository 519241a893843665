"""MongoDB side of alerts: hourly buckets, what each message counted in, raised alerts.

- ``alert_observations``: one document per analyzed message (``_id`` its id) with the
  series it counts in; a message analyzed again (edited, placed in a topic) moves from
  its old series to its new ones instead of counting twice.
- ``alert_buckets``: one document per community, series and hour, holding the ids of
  its messages (a set, so a replay adds nothing); the count is the set's size.
- ``alert_communities``: the first hour seen of each community (no baseline before).
- ``alerts``: every alert raised, ``_id`` its alert id, with what it says; what the
  cooldown and the replays check, and what people review (and acknowledge or resolve)
  through the API.

Buckets and observations are working data: they expire some weeks after they were last
written, beyond any baseline window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from pepite_contracts import ChannelRef
from pepite_kit import Database, IndexSpec
from pepite_leaderboard.alerts_crisis import ScamSighting

OBSERVATIONS = "alert_observations"
BUCKETS = "alert_buckets"
COMMUNITIES = "alert_communities"
ALERTS = "alerts"
MESSAGES = "messages"

#: Working data is kept this long after its last write (beyond a 14-day baseline).
RETENTION_S = 35 * 24 * 3600

ALERT_INDEXES = (
    IndexSpec(OBSERVATIONS, [("seen_at", 1)], "expiry", expire_after_seconds=RETENTION_S),
    IndexSpec(OBSERVATIONS, [("author_id", 1)], "author"),
    IndexSpec(
        OBSERVATIONS,
        [("community_id", 1), ("created_at", 1)],
        "community_scam_time",
        partial_filter={"scam": True},
    ),
    IndexSpec(BUCKETS, [("community_id", 1), ("series", 1), ("hour", 1)], "community_series"),
    IndexSpec(BUCKETS, [("seen_at", 1)], "expiry", expire_after_seconds=RETENTION_S),
    IndexSpec(ALERTS, [("community_id", 1), ("series", 1), ("hour", 1)], "community_series"),
    IndexSpec(ALERTS, [("member_id", 1)], "member"),
)


@dataclass(frozen=True)
class Observation:
    """What one analyzed message counts in."""

    message_id: str
    community_id: str
    author_id: str
    created_at: datetime
    hour: datetime
    series: tuple[str, ...]
    scam: bool


@dataclass(frozen=True)
class Touched:
    """A bucket that changed: its hour is evaluated again."""

    community_id: str
    series: str
    hour: datetime


@dataclass(frozen=True)
class StoredAlert:
    """An alert as kept, for the cooldown and the replays."""

    alert_id: str
    community_id: str
    kind: str
    series: str
    hour: datetime
    severity: str
    message_ids: list[str]
    member_id: str | None = None
    #: What the alert says, kept for the people who review alerts through the API.
    title: str = ""
    detail: str = ""
    channel: ChannelRef | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _bucket_id(community_id: str, series: str, hour: datetime) -> str:
    return f"{community_id}|{series}|{hour:%Y%m%d%H}"


class AlertRepository:
    """All MongoDB calls of the alerts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, observations: Sequence[Observation]) -> set[Touched]:
        """Count the messages in their buckets (moving re-analyzed ones) and return the
        buckets whose count may have changed."""
        if not observations:
            return set()
        now = datetime.now(UTC)
        ids = [o.message_id for o in observations]
        before: dict[str, tuple[str, datetime, set[str]]] = {
            doc["_id"]: (doc["community_id"], doc["hour"], set(doc.get("series", [])))
            async for doc in self._db[OBSERVATIONS].find(
                {"_id": {"$in": ids}}, {"community_id": 1, "hour": 1, "series": 1}
            )
        }
        added: dict[Touched, list[str]] = defaultdict(list)
        removed: dict[Touched, list[str]] = defaultdict(list)
        for obs in observations:
            new = {Touched(obs.community_id, s, obs.hour) for s in obs.series}
            old: set[Touched] = set()
            if obs.message_id in before:
                community, hour, series = before[obs.message_id]
                old = {Touched(community, s, hour) for s in series}
            for bucket in old - new:
                removed[bucket].append(obs.message_id)
            # Added again even when already there: a crash between the two writes
            # below must not leave a message out of its bucket.
            for bucket in new:
                added[bucket].append(obs.message_id)
        operations: list[UpdateOne] = [
            UpdateOne(
                {"_id": _bucket_id(b.community_id, b.series, b.hour)},
                {"$pull": {"ids": {"$in": message_ids}}, "$set": {"seen_at": now}},
            )
            for b, message_ids in removed.items()
        ]
        operations += [
            UpdateOne(
                {"_id": _bucket_id(b.community_id, b.series, b.hour)},
                {
                    "$addToSet": {"ids": {"$each": message_ids}},
                    "$set": {"seen_at": now},
                    "$setOnInsert": {
                        "community_id": b.community_id,
                        "series": b.series,
                        "hour": b.hour,
                    },
                },
                upsert=True,
            )
            for b, message_ids in added.items()
        ]
        await self._db[BUCKETS].bulk_write(operations, ordered=False)
        await self._db[OBSERVATIONS].bulk_write(
            [
                UpdateOne(
                    {"_id": obs.message_id},
                    {
                        "$set": {
                            "community_id": obs.community_id,
                            "author_id": obs.author_id,
                            "created_at": obs.created_at,
                            "hour": obs.hour,
                            "series": list(obs.series),
                            "scam": obs.scam,
                            "seen_at": now,
                        }
                    },
                    upsert=True,
                )
                for obs in observations
            ],
            ordered=False,
        )
        firsts: dict[str, datetime] = {}
        for obs in observations:
            firsts[obs.community_id] = min(obs.hour, firsts.get(obs.community_id, obs.hour))
        await self._db[COMMUNITIES].bulk_write(
            [
                UpdateOne({"_id": community}, {"$min": {"first_hour": hour}}, upsert=True)
                for community, hour in firsts.items()
            ],
            ordered=False,
        )
        return set(added) | set(removed)

    async def first_hour(self, community_id: str) -> datetime | None:
        doc = await self._db[COMMUNITIES].find_one({"_id": community_id})
        return None if doc is None else doc["first_hour"]

    async def counts(
        self, community_id: str, series: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        """Messages per hour of a series, hours in [start, end] (absent hours: none)."""
        return {
            doc["hour"]: doc["n"]
            async for doc in self._db[BUCKETS].find(
                {
                    "community_id": community_id,
                    "series": series,
                    "hour": {"$gte": start, "$lte": end},
                },
                {"_id": 0, "hour": 1, "n": {"$size": "$ids"}},
            )
        }

    async def bucket_messages(
        self, community_id: str, series: str, hours: Iterable[datetime], limit: int
    ) -> list[str]:
        """The ids of the messages of some hours of a series, at most ``limit``."""
        ids: list[str] = []
        async for doc in (
            self._db[BUCKETS]
            .find(
                {"_id": {"$in": [_bucket_id(community_id, series, h) for h in hours]}},
                {"ids": 1, "hour": 1},
            )
            .sort("hour", 1)
        ):
            ids.extend(doc.get("ids", []))
        return sorted(set(ids))[:limit]

    async def alert_hours(
        self, community_id: str, series: str, start: datetime, end: datetime
    ) -> list[datetime]:
        """Hours of the series' alerts in [start, end]."""
        return [
            doc["hour"]
            async for doc in self._db[ALERTS].find(
                {
                    "community_id": community_id,
                    "series": series,
                    "hour": {"$gte": start, "$lte": end},
                },
                {"hour": 1},
            )
        ]

    async def raised(self, alert_ids: Sequence[str]) -> set[str]:
        """Which of ``alert_ids`` were raised already."""
        return {
            doc["_id"]
            async for doc in self._db[ALERTS].find({"_id": {"$in": list(alert_ids)}}, {"_id": 1})
        }

    async def store_alert(self, alert: StoredAlert) -> None:
        doc: dict[str, Any] = {
            "community_id": alert.community_id,
            "kind": alert.kind,
            "series": alert.series,
            "hour": alert.hour,
            "severity": alert.severity,
            "message_ids": alert.message_ids,
            "member_id": alert.member_id,
            "title": alert.title,
            "detail": alert.detail,
            "channel": alert.channel.model_dump() if alert.channel else None,
            "metrics": alert.metrics,
        }
        await self._db[ALERTS].update_one(
            {"_id": alert.alert_id},
            # A person's review (status, acknowledged_at...) is the API's: never reset.
            {"$set": doc, "$setOnInsert": {"raised_at": datetime.now(UTC), "status": "open"}},
            upsert=True,
        )

    async def alerts(self, community_id: str) -> list[StoredAlert]:
        """The community's alerts, oldest hour first."""
        return [
            StoredAlert(
                alert_id=doc["_id"],
                community_id=doc["community_id"],
                kind=doc["kind"],
                series=doc["series"],
                hour=doc["hour"],
                severity=doc["severity"],
                message_ids=doc.get("message_ids", []),
                member_id=doc.get("member_id"),
                title=doc.get("title", ""),
                detail=doc.get("detail", ""),
                channel=ChannelRef.model_validate(doc["channel"]) if doc.get("channel") else None,
                metrics=doc.get("metrics", {}),
            )
            async for doc in self._db[ALERTS].find({"community_id": community_id}).sort("hour", 1)
        ]

    async def texts(self, community_id: str, message_ids: Sequence[str]) -> dict[str, str]:
        """The stored texts of some messages (read, never copied: an erasure or a
        deletion scrubs them in one place)."""
        if not message_ids:
            return {}
        return {
            doc["_id"]: doc.get("text") or ""
            async for doc in self._db[MESSAGES].find(
                {
                    "_id": {"$in": list(message_ids)},
                    "community_id": community_id,
                    "deleted_at": {"$exists": False},
                },
                {"text": 1},
            )
        }

    async def scam_sightings(
        self, community_id: str, start: datetime, end: datetime
    ) -> list[ScamSighting]:
        """Scam-flagged messages of the community created in [start, end]."""
        return [
            ScamSighting(doc["_id"], doc["author_id"], doc["created_at"])
            async for doc in self._db[OBSERVATIONS].find(
                {
                    "community_id": community_id,
                    "scam": True,
                    "created_at": {"$gte": start, "$lte": end},
                },
                {"author_id": 1, "created_at": 1},
            )
        ]

    async def erase_member(self, community_id: str, member_id: str, pseudonym: str) -> None:
        """Replace an erased member by their pseudonym (counts stay right)."""
        await self._db[OBSERVATIONS].update_many(
            {"community_id": community_id, "author_id": member_id},
            {"$set": {"author_id": pseudonym}},
        )
        await self._db[ALERTS].update_many(
            {"community_id": community_id, "member_id": member_id},
            {"$set": {"member_id": pseudonym}},
        )
