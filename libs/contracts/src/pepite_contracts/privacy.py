"""What a member decided about their data: consent flags and erasure requests."""

from __future__ import annotations

from pydantic import Field

from pepite_contracts.ids import CommunityId
from pepite_contracts.messages import ContractModel, UtcDatetime


class ConsentFlags(ContractModel):
    """A member's choices. Per-member features stay off until the member opts in."""

    journal: bool = Field(
        default=False, description="A personal journal of moods, wins and progress is kept."
    )
    personalization: bool = Field(
        default=False, description="Digests are personalized from the member's interests."
    )
    ai_processing: bool = Field(
        default=True,
        description="The member's messages may be sent to a remote LLM. When false they are"
        " still counted, but analyzed only by the local analyzer.",
    )


class ConsentChange(ContractModel):
    """Payload of ``member.consent_changed``: a member's consent flags as they now are."""

    member_id: str = Field(description="Stable member id: platform:community:native_id.")
    community_id: CommunityId
    consent: ConsentFlags
    changed_at: UtcDatetime


class MemberErasure(ContractModel):
    """Payload of ``member.erased``: remove or anonymize everything about a member.

    Every service that stores anything about members reacts, and remembers the erasure
    so that re-importing an old export never brings the member back.
    """

    member_id: str = Field(description="Stable member id: platform:community:native_id.")
    community_id: CommunityId
    pseudonym: str = Field(
        description="What replaces the member id where a record must keep an author (counts"
        " stay right); the same for every service, meaningless outside Pépite."
    )
    requested_at: UtcDatetime
