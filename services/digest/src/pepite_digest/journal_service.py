"""Building and keeping journals: consent checked first, the stores read, entries saved.

No consent, no journal: a member whose journal flag is off gets nothing computed and
nothing stored, and what was stored goes when the flag goes off (:class:`JournalDataOwner`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from pepite_contracts import ConsentFlags, MemberErasure
from pepite_digest.consent import ConsentRepository, PerMemberFeature
from pepite_digest.journal import (
    CONTEXT,
    TITLES,
    CommunityDay,
    Totals,
    day_bounds,
    days,
    forget_name,
    member_day,
    reached_titles,
    streak,
)
from pepite_digest.journal_repository import JournalRepository
from pepite_digest.lore import PeriodFacts
from pepite_digest.repository import DigestRepository
from pepite_kit import Database
from pepite_reports.journals import ActionKind, JournalEntry

#: How far back an active-day streak is followed.
STREAK_LOOKBACK = timedelta(days=366)


class JournalNotAllowedError(Exception):
    """The member has not turned their journal on."""

    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"member {member_id!r} has not consented to a journal: nothing is computed for them"
        )


class JournalService:
    """Builds members' days and stores them as journal entries."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self._journals = JournalRepository(db)
        self._messages = DigestRepository(db)
        self._consents = ConsentRepository(db)
        self._clock = clock or (lambda: datetime.now(UTC))

    async def timezone(self, community_id: str) -> str:
        return await self._messages.timezone(community_id)

    async def allowed(self, member_id: str) -> bool:
        return await self._consents.allows(member_id, PerMemberFeature.JOURNAL)

    async def member_journal(
        self, community_id: str, member_id: str, first: date, last: date
    ) -> list[JournalEntry]:
        """Build and store the member's entries of ``first..last`` (local days with
        messages only).

        Raises:
            JournalNotAllowedError: the member's journal flag is off.
        """
        if not await self.allowed(member_id):
            raise JournalNotAllowedError(member_id)
        timezone = await self.timezone(community_id)
        built = []
        for day in days(first, last):
            community_day = await self.community_day(community_id, day, timezone)
            entry = await self.build(community_day, member_id)
            if entry is not None:
                built.append(entry)
        return built

    async def community_day(self, community_id: str, day: date, timezone: str) -> CommunityDay:
        """Everything the journals of one community day read, once for all members."""
        start, end = day_bounds(day, timezone)
        messages = await self._messages.messages(community_id, start - CONTEXT, end)
        involved = {m.author_id for m in messages} | {x for m in messages for x in m.mentioned}
        names = await self._journals.member_names(community_id, involved)
        for message in messages:
            known = names.get(message.author_id, ())
            if message.author_name not in known:
                names[message.author_id] = (*known, message.author_name)
        visible = {
            *await self._consents.consenting(community_id, PerMemberFeature.JOURNAL),
            *await self._consents.consenting(community_id, PerMemberFeature.PERSONALIZATION),
        }
        return CommunityDay(
            community_id=community_id,
            day=day,
            timezone=timezone,
            start=start,
            end=end,
            facts=PeriodFacts.of(messages),
            moods=await self._journals.moods(community_id, start, end),
            names=names,
            visible=frozenset(visible),
        )

    async def build(self, day: CommunityDay, member_id: str) -> JournalEntry | None:
        """Build and store one member's entry of ``day``; None if they wrote nothing then
        or may not have a journal."""
        names = day.names.get(member_id) or (member_id,)
        member = member_day(day, member_id, names[0])
        if member is None:
            return None
        active = await self._journals.active_days(
            day.community_id, member_id, day.start - STREAK_LOOKBACK, day.end, day.timezone
        )
        before = await self._journals.actions_before(member_id, day.day)

        def total(kind: ActionKind) -> int:
            return before.get(kind, 0) + member.count(kind)

        totals = Totals(
            messages=await self._journals.messages_before(day.community_id, member_id, day.end),
            answers=total(ActionKind.ANSWER),
            resources=total(ActionKind.RESOURCE),
            encouragements=total(ActionKind.ENCOURAGEMENT),
            streak=streak(active, day.day),
        )
        unlocked = await self._journals.unlock(
            day.community_id, member_id, [t.title_id for t in reached_titles(totals)], day.day
        )
        entry = member.entry(
            day,
            streak_days=totals.streak,
            titles=[t for t in TITLES if unlocked.get(t.title_id) == day.day],
            generated_at=self._clock(),
        )
        await self._journals.save(entry)
        # A withdrawal may have been applied while this day was built, its deletion
        # running before the save above: checking again afterwards leaves nothing behind.
        if not await self.allowed(member_id):
            await self._journals.delete_member(member_id)
            return None
        return entry


class JournalDataOwner:
    """Journals' part in withdrawals and erasures (a :class:`MemberDataOwner`)."""

    def __init__(self, db: Database) -> None:
        self._journals = JournalRepository(db)

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        if not consent.journal:
            await self._journals.delete_member(member_id)
        if not (consent.journal or consent.personalization):
            # They may no longer be named in anyone else's journal either.
            await self._forget(member_id)

    async def erase(self, erasure: MemberErasure) -> None:
        await self._journals.delete_member(erasure.member_id)
        await self._forget(erasure.member_id)

    async def _forget(self, member_id: str) -> None:
        for entry in await self._journals.entries_naming(member_id):
            await self._journals.save(forget_name(entry, member_id))
