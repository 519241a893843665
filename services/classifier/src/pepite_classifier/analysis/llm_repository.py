"""All MongoDB access of the LLM path: the answer cache and usage per community and month."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pymongo import UpdateOne

from pepite_contracts import Analysis
from pepite_kit import Database, IndexSpec

logger = logging.getLogger(__name__)

LLM_CACHE = "llm_cache"
LLM_USAGE = "llm_usage"

#: Answers older than this are dropped: by then a message is rarely analyzed again, and
#: a cache that only grows would outweigh the messages it serves.
CACHE_TTL_S = 365 * 24 * 3600

LLM_INDEXES: list[IndexSpec] = [
    IndexSpec(LLM_CACHE, [("created_at", 1)], "created_ttl", expire_after_seconds=CACHE_TTL_S),
    IndexSpec(LLM_USAGE, [("community_id", 1), ("month", -1)], "community_month", unique=True),
]


def month_of(moment: datetime) -> str:
    """The calendar month (UTC) a cost is booked in, e.g. ``2026-05``."""
    return moment.astimezone(UTC).strftime("%Y-%m")


class UsageDelta(BaseModel):
    """What to add to a community's month of usage."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    #: Messages put in calls, retries included.
    messages_sent: int = 0
    #: Messages the model labeled (each is then cached).
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    #: Calls whose answer was malformed or left messages out.
    invalid_answers: int = 0
    #: Calls that failed for good (retries spent or an error retrying cannot fix).
    failed_calls: int = 0
    cache_hits: int = 0
    #: Messages analyzed locally instead, by reason.
    local_opt_out: int = 0
    local_skipped: int = 0
    local_budget: int = 0
    local_failure: int = 0
    topic_calls: int = 0

    def increments(self) -> dict[str, int | float]:
        """The non-zero counters, as a MongoDB ``$inc``."""
        return {name: value for name, value in self.model_dump().items() if value}


class MonthlyUsage(UsageDelta):
    """A community's LLM usage over one calendar month."""

    community_id: str
    month: str
    updated_at: datetime | None = None


class LlmRepository:
    """Reads and writes the answer cache and the usage counters."""

    def __init__(self, db: Database) -> None:
        self._cache = db[LLM_CACHE]
        self._usage = db[LLM_USAGE]

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

    async def add_usage(self, community_id: str, month: str, delta: UsageDelta) -> None:
        """Add to a community's month of usage (created on first use)."""
        increments = delta.increments()
        if not increments:
            return
        await self._usage.update_one(
            {"_id": _usage_id(community_id, month)},
            {
                "$inc": increments,
                "$set": {"updated_at": datetime.now(UTC)},
                "$setOnInsert": {"community_id": community_id, "month": month},
            },
            upsert=True,
        )

    async def usage(self, community_id: str, month: str) -> MonthlyUsage:
        """A community's usage for ``month`` (zeros when nothing was used)."""
        doc: dict[str, Any] | None = await self._usage.find_one(
            {"_id": _usage_id(community_id, month)}
        )
        if doc is None:
            return MonthlyUsage(community_id=community_id, month=month)
        return MonthlyUsage.model_validate(doc)

    async def spent_usd(self, community_id: str, month: str) -> float:
        """Dollars a community has spent in ``month``."""
        doc = await self._usage.find_one(
            {"_id": _usage_id(community_id, month)}, {"cost_usd": 1, "_id": 0}
        )
        return float(doc.get("cost_usd", 0.0)) if doc else 0.0


def _usage_id(community_id: str, month: str) -> str:
    return f"{community_id}:{month}"
