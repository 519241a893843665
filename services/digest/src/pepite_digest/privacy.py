"""What every store of per-member data in this service does when a member withdraws
consent or asks to be erased."""

from __future__ import annotations

from typing import Protocol

from pepite_contracts import ConsentFlags, MemberErasure


class MemberDataOwner(Protocol):
    """A part of the digest service that keeps data about members.

    Each such part (journals, personalized digests, the knowledge base, stored digests)
    implements both methods; the member-events handler calls every one of them.
    """

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        """The member's flags are now ``consent``: delete what a flag now off allowed."""

    async def erase(self, erasure: MemberErasure) -> None:
        """Remove the member, or replace them by ``erasure.pseudonym`` where a record must
        keep an author. Must be idempotent: a replayed erasure finds nothing left."""
