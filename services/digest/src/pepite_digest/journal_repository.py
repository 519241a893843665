"""MongoDB side of the Personal Logger: what a member's day is read from, and the journals.

``journals`` holds one document per member and local day (``member_id:YYYY-MM-DD``),
replaced whole on every build. ``journal_titles`` holds one document per member and title
with the day it was unlocked (the earliest day that reached it, kept whatever the order
days are built in). ``journal_progress`` remembers, per member, the last day built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from pymongo import UpdateOne

from pepite_contracts import Mood
from pepite_digest.repository import COMMUNITIES, MEMBERS, MESSAGES
from pepite_kit import Database, IndexSpec
from pepite_reports.journals import JOURNALS, ActionKind, JournalEntry

JOURNAL_TITLES = "journal_titles"
JOURNAL_PROGRESS = "journal_progress"

JOURNAL_INDEXES = (
    IndexSpec(JOURNALS, [("member_id", 1), ("day", 1)], "member_day"),
    IndexSpec(JOURNALS, [("named.member_id", 1)], "named_member"),
    IndexSpec(JOURNAL_TITLES, [("member_id", 1)], "member"),
)


def _day_key(day: date) -> str:
    # ISO strings sort like the days they name, and BSON has no date-only type.
    return day.isoformat()


class JournalRepository:
    """Reads and writes everything journals need, members' messages included."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def communities(self) -> list[str]:
        cursor = self._db[COMMUNITIES].find({}, {"_id": 1}).sort("_id", 1)
        return [doc["_id"] async for doc in cursor]

    async def moods(self, community_id: str, start: datetime, end: datetime) -> dict[str, Mood]:
        """The mood the analyzer read in each message of ``[start, end)``, by message id."""
        cursor = self._db[MESSAGES].find(
            {
                "community_id": community_id,
                "created_at": {"$gte": start, "$lt": end},
                "analysis.mood": {"$exists": True},
            },
            {"analysis.mood": 1},
        )
        return {doc["_id"]: Mood(doc["analysis"]["mood"]) async for doc in cursor}

    async def member_names(
        self, community_id: str, member_ids: Iterable[str]
    ) -> dict[str, tuple[str, ...]]:
        """Every name each member goes by (display name first), from ``members``."""
        cursor = self._db[MEMBERS].find(
            {"_id": {"$in": sorted(set(member_ids))}, "community_id": community_id},
            {"name": 1, "display_name": 1},
        )
        return {
            doc["_id"]: tuple(n for n in (doc.get("display_name"), doc.get("name")) if n)
            async for doc in cursor
        }

    async def first_message_at(self, community_id: str, member_id: str) -> datetime | None:
        doc = await self._db[MESSAGES].find_one(
            {"community_id": community_id, "author.id": member_id, "erased_at": None},
            {"created_at": 1},
            sort=[("created_at", 1)],
        )
        return doc["created_at"] if doc else None

    async def messages_before(self, community_id: str, member_id: str, end: datetime) -> int:
        """How many messages the member wrote before ``end``, deleted ones left out."""
        return await self._db[MESSAGES].count_documents(
            {
                "community_id": community_id,
                "author.id": member_id,
                "created_at": {"$lt": end},
                "deleted_at": {"$exists": False},
                "erased_at": None,
            }
        )

    async def active_days(
        self, community_id: str, member_id: str, start: datetime, end: datetime, timezone: str
    ) -> set[date]:
        """The local days of ``[start, end)`` on which the member wrote."""
        cursor = await self._db[MESSAGES].aggregate(
            [
                {
                    "$match": {
                        "community_id": community_id,
                        "author.id": member_id,
                        "created_at": {"$gte": start, "$lt": end},
                        "deleted_at": {"$exists": False},
                    }
                },
                {
                    "$group": {
                        "_id": {
                            "$dateToString": {
                                "format": "%Y-%m-%d",
                                "date": "$created_at",
                                "timezone": timezone,
                            }
                        }
                    }
                },
            ]
        )
        return {date.fromisoformat(doc["_id"]) async for doc in cursor}

    async def actions_before(self, member_id: str, day: date) -> dict[ActionKind, int]:
        """Answers, resources and encouragements in the member's entries before ``day``."""
        cursor = await self._db[JOURNALS].aggregate(
            [
                {"$match": {"member_id": member_id, "day": {"$lt": _day_key(day)}}},
                {"$unwind": "$actions"},
                {"$group": {"_id": "$actions.kind", "count": {"$sum": 1}}},
            ]
        )
        return {ActionKind(doc["_id"]): doc["count"] async for doc in cursor}

    async def unlock(
        self, community_id: str, member_id: str, title_ids: Sequence[str], day: date
    ) -> dict[str, date]:
        """Record the titles reached on ``day`` (a title keeps its earliest day); every
        title the member holds, with the day it was unlocked."""
        if title_ids:
            await self._db[JOURNAL_TITLES].bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{member_id}:{title_id}"},
                        {
                            "$setOnInsert": {
                                "community_id": community_id,
                                "member_id": member_id,
                                "title_id": title_id,
                            },
                            "$min": {"unlocked_on": _day_key(day)},
                        },
                        upsert=True,
                    )
                    for title_id in title_ids
                ],
                ordered=False,
            )
        cursor = self._db[JOURNAL_TITLES].find({"member_id": member_id})
        return {doc["title_id"]: date.fromisoformat(doc["unlocked_on"]) async for doc in cursor}

    async def save(self, entry: JournalEntry) -> None:
        """Store the entry, replacing the one of the same member and day."""
        document = entry.model_dump(mode="python")
        document["_id"] = document.pop("entry_id")
        document["day"] = _day_key(entry.day)
        await self._db[JOURNALS].replace_one({"_id": document["_id"]}, document, upsert=True)

    async def entries(self, member_id: str, first: date, last: date) -> list[JournalEntry]:
        cursor = (
            self._db[JOURNALS]
            .find(
                {"member_id": member_id, "day": {"$gte": _day_key(first), "$lte": _day_key(last)}}
            )
            .sort("day", 1)
        )
        return [_entry(doc) async for doc in cursor]

    async def entries_naming(self, member_id: str) -> list[JournalEntry]:
        """Other members' entries that name ``member_id``."""
        cursor = self._db[JOURNALS].find({"named.member_id": member_id})
        return [_entry(doc) async for doc in cursor]

    async def built_through(self, member_id: str) -> date | None:
        doc = await self._db[JOURNAL_PROGRESS].find_one({"_id": member_id})
        return date.fromisoformat(doc["built_through"]) if doc else None

    async def mark_built(self, community_id: str, member_id: str, day: date) -> None:
        await self._db[JOURNAL_PROGRESS].update_one(
            {"_id": member_id},
            {
                "$set": {"community_id": community_id},
                "$max": {"built_through": _day_key(day)},
            },
            upsert=True,
        )

    async def delete_member(self, member_id: str) -> int:
        """Remove the member's journal, titles and progress; how many entries went."""
        deleted = await self._db[JOURNALS].delete_many({"member_id": member_id})
        await self._db[JOURNAL_TITLES].delete_many({"member_id": member_id})
        await self._db[JOURNAL_PROGRESS].delete_one({"_id": member_id})
        return deleted.deleted_count


def _entry(doc: dict[str, Any]) -> JournalEntry:
    return JournalEntry.model_validate({**doc, "entry_id": doc["_id"]})
