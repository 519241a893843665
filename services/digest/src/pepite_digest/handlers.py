"""What the digest service does with each consumed topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pepite_contracts import Event, MemberConsentChanged, MemberErased
from pepite_digest.consent import ConsentRepository
from pepite_digest.privacy import MemberDataOwner

logger = logging.getLogger(__name__)


class MemberEventsHandler:
    """Keeps consent flags current and carries out withdrawals and erasures.

    Data allowed by a flag that is now off is deleted at once: "no consent, no journal"
    holds for what is already stored, not only for what comes next. Events are applied
    in order; an erasure leaves every flag off as of its request, so a replayed older
    consent does not turn anything back on.
    """

    def __init__(self, consents: ConsentRepository, owners: Sequence[MemberDataOwner]) -> None:
        self._consents = consents
        self._owners = owners

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, MemberConsentChanged):
                change = event.payload
                await self._consents.record([change])
                # The stored flags, not the event's: an older replayed change must not
                # delete what a newer consent allows.
                flags = await self._consents.flags(change.member_id)
                for owner in self._owners:
                    await owner.consent_withdrawn(change.community_id, change.member_id, flags)
            elif isinstance(event, MemberErased):
                erasure = event.payload
                for owner in self._owners:
                    await owner.erase(erasure)
                await self._consents.erase(erasure)
                logger.info("member erased from digests", extra={"member_id": erasure.member_id})
