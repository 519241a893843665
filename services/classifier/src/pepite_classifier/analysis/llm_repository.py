"""All MongoDB access of the classifier's LLM path: the answer cache, and usage per community
and month (kept by :mod:`pepite_llm.usage`)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from pydantic import ValidationError
from pymongo import UpdateOne

from pepite_contracts import Analysis
from pepite_kit import Database, IndexSpec
from pepite_llm.usage import (
    LLM_USAGE,
    USAGE_INDEXES,
    MonthlyUsage,
    UsageDelta,
    UsageRepository,
    month_of,
)

# Usage accounting is shared with every paid call (libs/llm); it is re-exported here for
# the classifier's modules that see the cache and the usage as one store.
__all__ = [
    "LLM_CACHE",
    "LLM_INDEXES",
    "LLM_USAGE",
    "LlmRepository",
    "MonthlyUsage",
    "UsageDelta",
    "month_of",
]

logger = logging.getLogger(__name__)

LLM_CACHE = "llm_cache"

#: Answers older than this are dropped: by then a message is rarely analyzed again, and
#: a cache that only grows would outweigh the messages it serves.
CACHE_TTL_S = 365 * 24 * 3600

LLM_INDEXES: list[IndexSpec] = [
    IndexSpec(LLM_CACHE, [("created_at", 1)], "created_ttl", expire_after_seconds=CACHE_TTL_S),
    *USAGE_INDEXES,
]


class LlmRepository(UsageRepository):
    """Reads and writes the answer cache and the usage counters."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._cache = db[LLM_CACHE]

    async def cached(self, keys: Collection[str]) -> dict[str, Analysis]:
        """The cached analyses of those of ``keys`` that were answered before."""
        if not keys:
            return {}
        found: dict[str, Analysis] = {}
        async for doc in self._cache.find({"_id": {"$in": list(keys)}}, {"analysis": 1}):
            try:
                found[doc["_id"]] = Analysis.model_validate(doc["analysis"])
            except ValidationError:
                # Written by an older contract: answer again rather than fail.
                logger.warning("unreadable LLM cache entry ignored", extra={"key": doc["_id"]})
        return found

    async def store(self, answers: Mapping[str, Analysis], *, prompt_version: str) -> None:
        """Cache answers; an answer already cached (a concurrent call) is left as it is."""
        if not answers:
            return
        now = datetime.now(UTC)
        await self._cache.bulk_write(
            [
                UpdateOne(
                    {"_id": key},
                    {
                        "$setOnInsert": {
                            "analysis": analysis.model_dump(mode="json"),
                            "model": analysis.model,
                            "prompt_version": prompt_version,
                            "created_at": now,
                        }
                    },
                    upsert=True,
                )
                for key, analysis in answers.items()
            ],
            ordered=False,
        )

    async def forget(self, keys: Collection[str]) -> None:
        """Drop cached answers (about an erased member's words)."""
        if keys:
            await self._cache.delete_many({"_id": {"$in": list(keys)}})
