"""Rate limits per key, shared by every process serving the API.

Each process decides at once from a token bucket in memory, so a request never waits
for the database to be admitted. The processes (workers of one server, or replicas)
then tell each other what they admitted through one counter per key in MongoDB: every
``sync_s`` seconds each adds its own count and reads the others', and spends the
tokens the others spent from its own bucket. Together they admit the key's rate, give
or take what they admit in one exchange interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from pymongo import UpdateOne

from pepite_api.keys import Principal
from pepite_kit import Database, IndexSpec

RATE_USAGE = "rate_usage"

#: Counters of keys unused for a day are dropped; a key used again starts a new one.
RATE_USAGE_INDEXES = (
    IndexSpec(RATE_USAGE, [("updated_at", 1)], "updated_ttl", expire_after_seconds=86400),
)

logger = logging.getLogger(__name__)


class RateLimiter:
    """A token bucket per key: ``per_minute`` on average, bursts of ``burst_s`` seconds."""

    def __init__(self, *, default_per_minute: int, burst_s: float) -> None:
        self._default = default_per_minute
        self._burst_s = burst_s
        #: key id -> (tokens, monotonic time of the last update, tokens per second).
        self._buckets: dict[str, tuple[float, float, float]] = {}
        #: Tokens spent by other processes on keys this one has no bucket for yet,
        #: with when: a first request here starts from what is left.
        self._debts: dict[str, tuple[float, float]] = {}
        self._admitted: Counter[str] = Counter()

    def take(self, principal: Principal) -> tuple[bool, float, int, int]:
        """Spend one token.

        Returns:
            ``(allowed, retry_after_s, limit_per_minute, remaining)``.
        """
        per_minute = principal.rate_limit_per_minute or self._default
        rate = per_minute / 60.0
        capacity = self._capacity(rate)
        now = time.monotonic()
        bucket = self._buckets.get(principal.key_id)
        if bucket is None:
            debt, since = self._debts.pop(principal.key_id, (0.0, now))
            tokens = capacity - debt + (now - since) * rate
        else:
            tokens = bucket[0] + (now - bucket[1]) * rate
        tokens = min(capacity, tokens)
        if tokens >= 1.0:
            self._buckets[principal.key_id] = (tokens - 1.0, now, rate)
            self._admitted[principal.key_id] += 1
            return True, 0.0, per_minute, int(tokens - 1.0)
        self._buckets[principal.key_id] = (tokens, now, rate)
        return False, (1.0 - tokens) / rate, per_minute, 0

    def _capacity(self, rate: float) -> float:
        return max(1.0, rate * self._burst_s)

    def drain_admitted(self) -> Counter[str]:
        """What this process admitted per key since the last call."""
        admitted, self._admitted = self._admitted, Counter()
        return admitted

    def spent_elsewhere(self, key_id: str, tokens: int) -> None:
        """Take from ``key_id``'s bucket what other processes admitted on that key."""
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            debt, since = self._debts.get(key_id, (0.0, now))
            self._debts[key_id] = (debt + tokens, since)
            return
        current, last, rate = bucket
        current = min(self._capacity(rate), current + (now - last) * rate)
        # Never more than one burst in debt: a key is not locked out for long because
        # several processes admitted the same burst in one interval.
        self._buckets[key_id] = (max(-self._capacity(rate), current - tokens), now, rate)


class RateUsageRepository:
    """One ever-growing counter of admitted requests per key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def exchange(self, admitted: Counter[str], *, recent_s: float) -> dict[str, int]:
        """Add this process's counts, then read the counters of the keys used lately."""
        now = datetime.now(UTC)
        if admitted:
            await self._db[RATE_USAGE].bulk_write(
                [
                    UpdateOne(
                        {"_id": key_id},
                        {"$inc": {"count": count}, "$set": {"updated_at": now}},
                        upsert=True,
                    )
                    for key_id, count in admitted.items()
                ],
                ordered=False,
            )
        cursor = self._db[RATE_USAGE].find(
            {"updated_at": {"$gte": now - timedelta(seconds=recent_s)}}, {"count": 1}
        )
        return {doc["_id"]: int(doc["count"]) async for doc in cursor}


async def share_rate_limits(
    limiter: RateLimiter, usage: RateUsageRepository, *, sync_s: float, recent_s: float = 120.0
) -> None:
    """Exchange admitted counts with the other processes every ``sync_s``, forever."""
    seen: dict[str, int] = {}
    first = True
    while True:
        await asyncio.sleep(sync_s)
        admitted = limiter.drain_admitted()
        try:
            totals = await usage.exchange(admitted, recent_s=recent_s)
        except Exception:
            # Limits stay enforced per process meanwhile; counts of this interval are
            # not shared, which errs toward admitting.
            logger.warning("could not share rate-limit counts", exc_info=True)
            continue
        for key_id, total in totals.items():
            # At the first exchange, counts so far are history; a counter that appears
            # later was started by another process since, from zero.
            previous = seen.get(key_id, None if first else 0)
            seen[key_id] = total
            if previous is None:
                continue
            elsewhere = total - previous - admitted.get(key_id, 0)
            if elsewhere > 0:
                limiter.spent_elsewhere(key_id, elsewhere)
        first = False
