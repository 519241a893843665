"""Journals of the days that ended, for every member who turned their journal on.

Each poll, for every community and each of its members whose journal flag is on, the
local days (community time zone) that ended since the member's last built day are built
and stored, then the member's progress moves to yesterday. The first day built for a
member is the later of the day of their first message and the start of the catch-up
window (``catch_up_days`` before yesterday): a member who turns their journal on gets
the recent days they were active in at once, never an unbounded backlog. The digest
service's consent record keeps only the latest change of a member's flags, not when
the journal was turned on, so the consent day is not a bound; the journal is the
member's own record of their own days and is built only while their flag is on.
Rebuilding a day replaces its entry, so a restarted scheduler repeats nothing visible.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pepite_digest.consent import ConsentRepository, PerMemberFeature
from pepite_digest.journal import days
from pepite_digest.journal_repository import JournalRepository
from pepite_digest.journal_service import JournalService
from pepite_kit import Database

logger = logging.getLogger(__name__)


class JournalScheduler:
    """Builds the journal days that are due, then looks again every ``poll_s``."""

    def __init__(self, db: Database, *, poll_s: float = 300.0, catch_up_days: int = 31) -> None:
        self._journals = JournalRepository(db)
        self._consents = ConsentRepository(db)
        self._service = JournalService(db)
        self._poll_s = poll_s
        self._catch_up = catch_up_days

    async def run_forever(self) -> None:
        while True:
            try:
                await self.build_due(datetime.now(UTC))
            except Exception:
                # The next look tries again; one community's failure is logged below.
                logger.exception("could not look for due journals")
            await asyncio.sleep(self._poll_s)

    async def build_due(self, now: datetime) -> int:
        """Build every journal day that ended before ``now``; how many entries were stored."""
        stored = 0
        for community_id in await self._journals.communities():
            try:
                stored += await self._community(community_id, now)
            except Exception:
                logger.exception("journals failed", extra={"community": community_id})
        return stored

    async def _community(self, community_id: str, now: datetime) -> int:
        members = await self._consents.consenting(community_id, PerMemberFeature.JOURNAL)
        if not members:
            return 0
        timezone = await self._service.timezone(community_id)
        zone = ZoneInfo(timezone)
        yesterday = now.astimezone(zone).date() - timedelta(days=1)
        earliest = yesterday - timedelta(days=self._catch_up - 1)
        first_due: dict[str, date] = {}
        for member_id in members:
            first = await self._first_due(community_id, member_id, earliest, zone)
            if first is not None and first <= yesterday:
                first_due[member_id] = first
        if not first_due:
            return 0
        stored = 0
        for day in days(min(first_due.values()), yesterday):
            due = [m for m, first in first_due.items() if first <= day]
            community_day = await self._service.community_day(community_id, day, timezone)
            for member_id in due:
                if await self._service.build(community_day, member_id) is not None:
                    stored += 1
        for member_id in first_due:
            await self._journals.mark_built(community_id, member_id, yesterday)
        logger.info("journals built", extra={"community": community_id, "entries": stored})
        return stored

    async def _first_due(
        self, community_id: str, member_id: str, earliest: date, zone: ZoneInfo
    ) -> date | None:
        """The first day still to build for the member; None before their first message."""
        first_message = await self._journals.first_message_at(community_id, member_id)
        if first_message is None:
            return None
        first = max(earliest, first_message.astimezone(zone).date())
        built = await self._journals.built_through(member_id)
        if built is not None:
            first = max(first, built + timedelta(days=1))
        return first
