"""Digests asked for through the API: the ``digest_requests`` documents this service finishes.

The API writes each request ``pending``; this service sets it ``done`` (with the
digest's id), ``empty`` (nothing was said) or ``failed`` (with the error), once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pepite_contracts import DigestRequested
from pepite_kit import Database

DIGEST_REQUESTS = "digest_requests"


class RequestOutcome(StrEnum):
    PENDING = "pending"
    DONE = "done"
    EMPTY = "empty"
    FAILED = "failed"


class DigestRequestRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db[DIGEST_REQUESTS]

    async def finished(self, request_id: str) -> bool:
        """Whether the request already has its outcome (a replayed event is left alone)."""
        doc = await self._collection.find_one(
            {"_id": request_id, "status": {"$ne": RequestOutcome.PENDING.value}}, {"_id": 1}
        )
        return doc is not None

    async def finish(
        self,
        event: DigestRequested,
        outcome: RequestOutcome,
        *,
        digest_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the request's outcome; the event recreates a document that is missing."""
        request = event.payload
        finished: dict[str, Any] = {
            "status": outcome.value,
            "finished_at": datetime.now(UTC),
            "digest_id": digest_id,
            "error": error,
        }
        await self._collection.update_one(
            {"_id": request.request_id},
            {
                "$set": finished,
                "$setOnInsert": {
                    "community_id": event.community_id,
                    "first": request.first.isoformat(),
                    "last": request.last.isoformat(),
                    "requested_at": request.requested_at,
                },
            },
            upsert=True,
        )
