"""MongoDB side of knowledge mining: how far each community's messages were mined."""

from __future__ import annotations

from datetime import datetime

from pepite_digest.repository import MESSAGES
from pepite_kit import Database

KNOWLEDGE_RUNS = "knowledge_runs"


class KnowledgeRunRepository:
    """Where mining stands per community, and what is there to mine."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def communities(self) -> list[str]:
        """Communities that have messages."""
        found = await self._db[MESSAGES].distinct("community_id")
        return sorted(str(c) for c in found)

    async def first_message_at(self, community_id: str) -> datetime | None:
        doc = await self._db[MESSAGES].find_one(
            {"community_id": community_id}, {"created_at": 1}, sort=[("created_at", 1)]
        )
        return doc["created_at"] if doc else None

    async def has_messages_since(self, community_id: str, since: datetime) -> bool:
        """Whether a message was written at or after ``since`` (nothing new: nothing to mine)."""
        doc = await self._db[MESSAGES].find_one(
            {"community_id": community_id, "created_at": {"$gte": since}}, {"_id": 1}
        )
        return doc is not None

    async def mined_until(self, community_id: str) -> datetime | None:
        """The end of the messages the last run mined (None before any run)."""
        doc = await self._db[KNOWLEDGE_RUNS].find_one({"_id": community_id}, {"mined_until": 1})
        return doc["mined_until"] if doc else None

    async def record(self, community_id: str, until: datetime, written: int) -> None:
        await self._db[KNOWLEDGE_RUNS].update_one(
            {"_id": community_id},
            {"$set": {"mined_until": until, "written": written}},
            upsert=True,
        )
