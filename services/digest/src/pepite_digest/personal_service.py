"""Personalized digests of a period, for the members who asked for them, stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pepite_digest.consent import ConsentRepository, PerMemberFeature
from pepite_digest.lore import PeriodFacts
from pepite_digest.personal import Directory, personal_digest
from pepite_digest.personal_repository import PersonalDigestRepository
from pepite_digest.repository import DigestRepository, PeriodMessage
from pepite_kit import Database
from pepite_reports.digests.models import Digest

#: How far back a member's messages tell their interests.
DEFAULT_LOOKBACK = timedelta(days=90)


class NotConsentedError(Exception):
    """The member has not turned personalization on: no personal digest is built."""


@dataclass(frozen=True)
class PeriodContext:
    """What every reader's digest of one community digest's period shares."""

    community: Digest
    messages: list[PeriodMessage]
    facts: PeriodFacts
    directory: Directory


class PersonalDigestService:
    """Builds and stores the personal digests of a community digest's period."""

    def __init__(self, db: Database, *, lookback: timedelta = DEFAULT_LOOKBACK) -> None:
        self._messages = DigestRepository(db)
        self._personal = PersonalDigestRepository(db)
        self._consents = ConsentRepository(db)
        self._lookback = lookback

    async def readers(self, community_id: str) -> list[str]:
        """The community's members who turned personalization on."""
        return await self._consents.consenting(community_id, PerMemberFeature.PERSONALIZATION)

    async def member_digest(self, community: Digest, member_id: str) -> Digest:
        """One member's digest of ``community``'s period, stored.

        Raises:
            NotConsentedError: the member has not turned personalization on.
        """
        await self.require_consent(community.community_id, member_id)
        return await self.build(await self.period(community), member_id)

    async def require_consent(self, community_id: str, member_id: str) -> None:
        """Check that ``member_id`` may have a personal digest in the community.

        Raises:
            NotConsentedError: the member has not turned personalization on there.
        """
        if member_id not in await self.readers(community_id):
            raise NotConsentedError(
                f"member {member_id!r} has not turned personalization on in community "
                f"{community_id!r}: no personal digest is built for them"
            )

    async def period(self, community: Digest) -> PeriodContext:
        """What every reader's digest of ``community``'s period shares, read once."""
        community_id = community.community_id
        messages = await self._messages.messages(
            community_id, community.period_start, community.period_end
        )
        nameable = {
            member_id
            for feature in (PerMemberFeature.PERSONALIZATION, PerMemberFeature.JOURNAL)
            for member_id in await self._consents.consenting(community_id, feature)
        }
        known = await self._personal.member_names(community_id)
        return PeriodContext(
            community, messages, PeriodFacts.of(messages), Directory.of(nameable, known, messages)
        )

    async def build(self, period: PeriodContext, member_id: str) -> Digest:
        """``member_id``'s digest of the period, stored. The caller has checked consent."""
        community = period.community
        start = community.period_start
        profile = await self._personal.interest_profile(
            community.community_id, member_id, start - self._lookback, start
        )
        in_period = {m.message_id for m in period.messages}
        outside = {
            m.reply_to_id
            for m in period.messages
            if m.reply_to_id is not None and m.reply_to_id not in in_period
        }
        digest = personal_digest(
            community,
            period.facts,
            profile,
            period.directory,
            generated_at=datetime.now(UTC),
            replied_earlier=await self._personal.own_messages(member_id, outside),
        )
        await self._personal.save(digest)
        return digest
