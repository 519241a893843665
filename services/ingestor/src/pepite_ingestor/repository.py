"""The ingestor's MongoDB collections: deliveries already handled by live adapters."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from pepite_kit import Database, IndexSpec

DELIVERIES = "ingest_deliveries"

#: Platforms retry for minutes to hours (Slack: 3 retries over ~1 hour); a day covers them all.
DELIVERY_RETENTION_S = 24 * 3600

INDEXES = (
    IndexSpec(
        DELIVERIES,
        [("seen_at", 1)],
        name="deliveries_expire",
        expire_after_seconds=DELIVERY_RETENTION_S,
    ),
)


class DeliveryRepository:
    """Delivery keys seen recently; a unique ``_id`` makes "first time?" one atomic insert.

    Implements :class:`pepite_ingestor.live.sink.ReplayGuard`.
    """

    def __init__(self, db: Database) -> None:
        self._deliveries = db[DELIVERIES]

    async def first_seen(self, key: str) -> bool:
        try:
            await self._deliveries.insert_one({"_id": key, "seen_at": datetime.now(UTC)})
        except DuplicateKeyError:
            return False
        return True

    async def forget(self, key: str) -> None:
        await self._deliveries.delete_one({"_id": key})
