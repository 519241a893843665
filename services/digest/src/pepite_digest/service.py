"""Digests of any period, from what is stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pepite_digest.lore import LoreKeeper
from pepite_digest.repository import DigestRepository
from pepite_kit import Database
from pepite_reports.digests.models import Digest

if TYPE_CHECKING:
    # Only the protocol: the service itself never loads the LLM client.
    from pepite_digest.writer import DigestWriter


class EmptyPeriodError(Exception):
    """Nothing was said in the community during the period."""


def period_bounds(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC for the days ``first`` to ``last`` (included) in ``timezone``."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


class DigestService:
    """Community digests: the Lore Keeper chooses what to tell, a writer may retell it.

    Without a writer the extractive digest is published; with one (an LLM), the
    writer's version, which falls back to the extractive one on its own.
    """

    def __init__(
        self,
        db: Database,
        *,
        keeper: LoreKeeper | None = None,
        writer: DigestWriter | None = None,
    ) -> None:
        self._repository = DigestRepository(db)
        self._keeper = keeper or LoreKeeper()
        self._writer = writer

    async def community_digest(self, community_id: str, first: date, last: date) -> Digest:
        """The digest of the days ``first`` to ``last`` in the community's time zone, stored.

        Raises:
            ValueError: the period is not valid.
            EmptyPeriodError: no message in the period.
        """
        repository = self._repository
        timezone = await repository.timezone(community_id)
        start, end = period_bounds(first, last, timezone)
        current = await repository.messages(community_id, start, end)
        if not current:
            raise EmptyPeriodError(
                f"no messages in community {community_id!r} from {first} to {last} ({timezone})"
            )
        before = start - (end - start)
        previous = await repository.messages(community_id, before, start)
        topic_ids = {m.topic_id for m in [*current, *previous] if m.topic_id}
        digest = self._keeper.build(
            community_id=community_id,
            community_name=await repository.community_name(community_id),
            timezone=timezone,
            start=start,
            end=end,
            current=current,
            previous=previous,
            topics=await repository.topics(community_id, topic_ids),
            new_members=await repository.new_members(community_id, start, end),
            previous_new_members=await repository.count_new_members(community_id, before, start),
            generated_at=datetime.now(UTC),
        )
        if self._writer is not None:
            digest = await self._writer.write(digest, current)
        await repository.save(digest)
        return digest
