"""Reading the daily rollups and topics the classifier maintains.

The classifier writes these collections; every reader (the API, the command line) reads
them through this module, so their shapes are known in one place on the read side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, Field

from pepite_contracts import MessageKind, Sentiment
from pepite_kit import Database

#: Messages per (community, day, channel, kind, topic): ``count``.
KIND_ROLLUPS = "kind_rollups"
#: Analyzed messages per (community, day, channel): ``messages`` and ``sentiment.<value>``.
ACTIVITY_ROLLUPS = "activity_rollups"
#: One counter per community, moved by every write of its rollups: a report computed at
#: a version stays true while the version stays the same.
ROLLUP_VERSIONS = "rollup_versions"
CHANNELS = "channels"
TOPICS = "topics"

#: Ids per ``$in`` query, well under the 16 MB command limit.
_ID_CHUNK = 5_000


def utc_day(instant: datetime) -> date:
    """The UTC calendar day of ``instant`` (a naive datetime is taken as UTC)."""
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    return instant.date()


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``: how days are stored."""
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KindCount:
    """Messages of a kind (and topic) in a channel over some days."""

    channel_id: str
    kind: MessageKind
    topic_id: str | None
    count: int


@dataclass(frozen=True, slots=True)
class ActivityCount:
    """Analyzed messages and their sentiments in a channel over some days."""

    channel_id: str
    messages: int
    sentiments: dict[Sentiment, int] = field(default_factory=dict)


class TopicSummary(BaseModel):
    """A category of insight messages, as readers see it."""

    topic_id: str
    community_id: str
    name: str
    keywords: list[str] = Field(default_factory=list, description="Best first.")
    size: int = Field(default=0, description="Messages in the topic at the last clustering.")
    kinds: dict[MessageKind, int] = Field(
        default_factory=dict, description="Messages per kind at the last clustering."
    )
    sample_ids: list[str] = Field(
        default_factory=list, description="Messages closest to the centre, closest first."
    )
    is_other: bool = Field(default=False, description="Insights that fit no category.")
    active: bool = Field(default=True, description="False once a clustering dropped it.")
    created_at: datetime
    updated_at: datetime


#: What a topic summary reads of a topic document (never the centroid).
_TOPIC_FIELDS = {
    "community_id": 1,
    "name": 1,
    "keywords": 1,
    "size": 1,
    "kinds": 1,
    "sample_ids": 1,
    "is_other": 1,
    "active": 1,
    "created_at": 1,
    "updated_at": 1,
}


def topic_summary(document: dict[str, Any]) -> TopicSummary:
    """A topic document as a summary."""
    fields = {key: value for key, value in document.items() if key in _TOPIC_FIELDS}
    return TopicSummary(topic_id=document["_id"], **fields)


def _window_filter(
    community_id: str, start: date, end: date, channel_id: str | None
) -> dict[str, Any]:
    query: dict[str, Any] = {
        "community_id": community_id,
        "day": {"$gte": day_start(start), "$lte": day_start(end)},
    }
    if channel_id is not None:
        query["channel_id"] = channel_id
    return query


class RollupReader:
    """Reads the ``kind_rollups``, ``activity_rollups``, ``channels`` and ``topics``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def version(self, community_id: str) -> int:
        """The community's rollup version (0 before any rollup was written)."""
        doc = await self._db[ROLLUP_VERSIONS].find_one({"_id": community_id}, {"version": 1})
        return int(doc["version"]) if doc else 0

    async def kind_counts(
        self, community_id: str, start: date, end: date, *, channel_id: str | None = None
    ) -> list[KindCount]:
        """Messages per channel, kind and topic between ``start`` and ``end`` (inclusive)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": _window_filter(community_id, start, end, channel_id)},
            {
                "$group": {
                    "_id": {"channel": "$channel_id", "kind": "$kind", "topic": "$topic_id"},
                    "count": {"$sum": "$count"},
                }
            },
            {"$match": {"count": {"$ne": 0}}},
        ]
        cursor = await self._db[KIND_ROLLUPS].aggregate(pipeline)
        return [
            KindCount(
                channel_id=doc["_id"]["channel"],
                kind=MessageKind(doc["_id"]["kind"]),
                topic_id=doc["_id"].get("topic"),
                count=doc["count"],
            )
            async for doc in cursor
        ]

    async def activity_counts(
        self, community_id: str, start: date, end: date, *, channel_id: str | None = None
    ) -> list[ActivityCount]:
        """Analyzed messages and sentiments per channel between ``start`` and ``end``."""
        group: dict[str, Any] = {"_id": "$channel_id", "messages": {"$sum": "$messages"}}
        group.update({s.value: {"$sum": f"$sentiment.{s.value}"} for s in Sentiment})
        pipeline: list[dict[str, Any]] = [
            {"$match": _window_filter(community_id, start, end, channel_id)},
            {"$group": group},
        ]
        cursor = await self._db[ACTIVITY_ROLLUPS].aggregate(pipeline)
        return [
            ActivityCount(
                channel_id=doc["_id"],
                messages=doc["messages"],
                sentiments={s: doc[s.value] for s in Sentiment if doc.get(s.value)},
            )
            async for doc in cursor
            if doc["messages"]
        ]

    async def latest_day(self, community_id: str, *, channel_id: str | None = None) -> date | None:
        """The last UTC day with analyzed messages, ``None`` if there is none."""
        query: dict[str, Any] = {"community_id": community_id, "messages": {"$gt": 0}}
        if channel_id is not None:
            query["channel_id"] = channel_id
        doc = await self._db[ACTIVITY_ROLLUPS].find_one(query, {"day": 1}, sort=[("day", -1)])
        return None if doc is None else utc_day(doc["day"])

    async def channel_names(self, community_id: str) -> dict[str, str]:
        """Display names of the community's channels, by channel id."""
        return {
            doc["channel_id"]: doc.get("name") or doc["channel_id"]
            async for doc in self._db[CHANNELS].find(
                {"community_id": community_id}, {"channel_id": 1, "name": 1}
            )
        }

    async def topics_by_id(
        self, community_id: str, topic_ids: Iterable[str]
    ) -> dict[str, TopicSummary]:
        """Topics of the community by id, active or not (reports name what was counted)."""
        ids = sorted(set(topic_ids))
        found: dict[str, TopicSummary] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            async for doc in self._db[TOPICS].find(
                {"_id": {"$in": chunk}, "community_id": community_id}, _TOPIC_FIELDS
            ):
                topic = topic_summary(doc)
                found[topic.topic_id] = topic
        return found
