"""Reading topics for the API (the classifier writes them)."""

from __future__ import annotations

from typing import Any

from pepite_api.pagination import after_descending
from pepite_kit import Database
from pepite_reports.rollups import TOPICS, TopicSummary, topic_summary


class TopicRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        community_id: str,
        *,
        include_inactive: bool,
        limit: int,
        after: tuple[int, str] | None = None,
    ) -> list[TopicSummary]:
        query: dict[str, Any] = {"community_id": community_id}
        if not include_inactive:
            query["active"] = True
        if after is not None:
            query = {"$and": [query, after_descending("size", after[0], after[1])]}
        cursor = (
            self._db[TOPICS]
            .find(query, {"centroid": 0})
            .sort([("size", -1), ("_id", -1)])
            .limit(limit)
        )
        return [topic_summary(doc) async for doc in cursor]

    async def get(self, community_id: str, topic_id: str) -> TopicSummary | None:
        doc = await self._db[TOPICS].find_one(
            {"_id": topic_id, "community_id": community_id}, {"centroid": 0}
        )
        return None if doc is None else topic_summary(doc)
