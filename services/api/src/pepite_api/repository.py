"""All MongoDB reads of the API."""

from __future__ import annotations

from pepite_api.schemas import CommunityStatus
from pepite_kit import Database

MESSAGES = "messages"
MEMBERS = "members"
CHANNELS = "channels"
#: Daily counters the classifier maintains (one document per community, channel and day).
ACTIVITY_ROLLUPS = "activity_rollups"


class StatusRepository:
    """Counts and time bounds of what a community has stored."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def community_status(self, community_id: str) -> CommunityStatus:
        scope = {"community_id": community_id}
        # Deleted messages keep a tombstone; they are counted apart (a small partial index).
        deleted = await self._db[MESSAGES].count_documents(
            {**scope, "deleted_at": {"$exists": True}}
        )
        messages = await self._db[MESSAGES].count_documents(scope) - deleted
        members = await self._db[MEMBERS].count_documents(scope)
        channels = await self._db[CHANNELS].count_documents(scope)
        projection = {"created_at": 1, "_id": 0}
        live = {**scope, "deleted_at": {"$exists": False}}
        first = await self._db[MESSAGES].find_one(live, projection, sort=[("created_at", 1)])
        last = await self._db[MESSAGES].find_one(live, projection, sort=[("created_at", -1)])
        analyzed = await self._db[ACTIVITY_ROLLUPS].aggregate(
            [{"$match": scope}, {"$group": {"_id": None, "messages": {"$sum": "$messages"}}}]
        )
        totals = await analyzed.to_list()
        awaiting_topic = await self._db[MESSAGES].count_documents(
            {"topic_pending": True, **scope, "deleted_at": {"$exists": False}}
        )
        return CommunityStatus(
            community_id=community_id,
            messages=messages,
            analyzed=totals[0]["messages"] if totals else 0,
            awaiting_topic=awaiting_topic,
            members=members,
            channels=channels,
            first_message_at=first["created_at"] if first else None,
            last_message_at=last["created_at"] if last else None,
        )
