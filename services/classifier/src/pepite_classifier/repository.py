"""All MongoDB access of the classifier: messages, members and channels it maintains."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from pepite_classifier.service import BatchWrites, message_document
from pepite_kit import Database, IndexSpec

MESSAGES = "messages"
MEMBERS = "members"
CHANNELS = "channels"

_DUPLICATE_KEY = 11000

INDEXES: list[IndexSpec] = [
    IndexSpec(MESSAGES, [("community_id", 1), ("created_at", 1)], "community_time"),
    IndexSpec(
        MESSAGES, [("community_id", 1), ("channel.id", 1), ("created_at", 1)], "channel_time"
    ),
    IndexSpec(MESSAGES, [("community_id", 1), ("author.id", 1), ("created_at", 1)], "author_time"),
    IndexSpec(MEMBERS, [("community_id", 1), ("last_seen_at", -1)], "community_last_seen"),
    IndexSpec(CHANNELS, [("community_id", 1)], "community"),
]


class ClassifierRepository:
    """Idempotent writes: replaying any batch leaves the database as it was."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply(self, writes: BatchWrites) -> None:
        """Store one batch's messages, members and channels."""
        now = datetime.now(UTC)
        if writes.messages:
            await self._upsert_messages(writes, now)
        if writes.members:
            await self._db[MEMBERS].bulk_write(
                [
                    UpdateOne(
                        {"_id": member_id},
                        {
                            "$set": {
                                "community_id": seen.community_id,
                                "platform": seen.platform,
                                "native_id": seen.member.native_id,
                                "name": seen.member.name,
                                "display_name": seen.member.display_name,
                                "is_bot": seen.member.is_bot,
                                "avatar_url": seen.member.avatar_url,
                            },
                            "$min": {
                                "first_seen_at": seen.first_seen_at,
                                **({"joined_at": seen.joined_at} if seen.joined_at else {}),
                            },
                            "$max": {
                                "last_seen_at": seen.last_seen_at,
                                **({"left_at": seen.left_at} if seen.left_at else {}),
                            },
                        },
                        upsert=True,
                    )
                    for member_id, seen in writes.members.items()
                ],
                ordered=False,
            )
        if writes.channels:
            await self._db[CHANNELS].bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{community_id}:{channel_id}"},
                        {
                            "$set": {
                                "community_id": community_id,
                                "platform": seen.platform,
                                "channel_id": channel_id,
                                "name": seen.channel.name,
                                "category": seen.channel.category,
                            },
                            "$min": {"first_message_at": seen.first_message_at},
                            "$max": {"last_message_at": seen.last_message_at},
                        },
                        upsert=True,
                    )
                    for (community_id, channel_id), seen in writes.channels.items()
                ],
                ordered=False,
            )

    async def _upsert_messages(self, writes: BatchWrites, now: datetime) -> None:
        operations = []
        for message in writes.messages.values():
            document = message_document(message)
            message_id = document.pop("_id")
            operations.append(
                UpdateOne(
                    # Only a copy at least as new as the stored one may overwrite it, so
                    # re-importing last week's export never reverts this week's edits.
                    {"_id": message_id, "version_at": {"$lte": document["version_at"]}},
                    {"$set": document, "$setOnInsert": {"stored_at": now}},
                    upsert=True,
                )
            )
        try:
            await self._db[MESSAGES].bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            # A duplicate key here means the stored copy is newer: the filter missed and
            # the upsert tried to insert the same id. That is the intended no-op.
            other = [e for e in exc.details["writeErrors"] if e["code"] != _DUPLICATE_KEY]
            if other or exc.details.get("writeConcernErrors"):
                raise
