"""Reads of the journals the digest service writes (``journals``), for the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from pepite_kit import Database
from pepite_reports.journals import JOURNALS, JournalEntry


def _entry(doc: dict[str, Any]) -> JournalEntry:
    return JournalEntry.model_validate({**doc, "entry_id": doc["_id"]})


class JournalReader:
    """One member's journal entries, oldest day first."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def entries(
        self,
        community_id: str,
        member_id: str,
        first: date,
        last: date,
        *,
        limit: int | None = None,
        after: date | None = None,
    ) -> list[JournalEntry]:
        """Entries of ``first..last`` (days as stored: ISO strings sort like dates), those
        after ``after`` only when given, at most ``limit``."""
        since = {"$gt": after.isoformat()} if after is not None else {"$gte": first.isoformat()}
        cursor = (
            self._db[JOURNALS]
            .find(
                {
                    "member_id": member_id,
                    "community_id": community_id,
                    "day": {**since, "$lte": last.isoformat()},
                }
            )
            .sort("day", 1)
        )
        if limit is not None:
            cursor = cursor.limit(limit)
        return [_entry(doc) async for doc in cursor]

    async def documents(self, community_id: str, member_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every stored entry of the member, as stored (for the member data export)."""
        async for doc in (
            self._db[JOURNALS]
            .find({"member_id": member_id, "community_id": community_id})
            .sort("day", 1)
        ):
            yield doc
