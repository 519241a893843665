"""What each community spent on the LLM, per calendar month, and whether it may spend more.

Every paid call (labeling, topic naming, digest writing) is booked in one document per
community and month (``llm_usage``), so a single monthly budget covers them all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from pepite_kit import Database, IndexSpec

LLM_USAGE = "llm_usage"

USAGE_INDEXES: list[IndexSpec] = [
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
    #: Calls that wrote (or tried to write) a digest.
    digest_calls: int = 0
    #: Digests kept extractive because the month's budget would have been passed.
    digests_over_budget: int = 0

    def increments(self) -> dict[str, int | float]:
        """The non-zero counters, as a MongoDB ``$inc``."""
        return {name: value for name, value in self.model_dump().items() if value}


class MonthlyUsage(UsageDelta):
    """A community's LLM usage over one calendar month."""

    community_id: str
    month: str
    updated_at: datetime | None = None


class UsageRepository:
    """Reads and adds to the usage counters."""

    def __init__(self, db: Database) -> None:
        self._usage = db[LLM_USAGE]

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


#: Characters per token assumed when estimating a call's cost before making it; chat
#: text averages nearer 4, so the estimate errs on the side of the budget.
ESTIMATE_CHARS_PER_TOKEN = 3


def estimated_tokens(*texts: str) -> int:
    """A generous estimate of the tokens ``texts`` make, before a call is paid for."""
    return sum(len(text) for text in texts) // ESTIMATE_CHARS_PER_TOKEN + 1
