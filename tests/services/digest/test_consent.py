"""The digest service's copy of members' consent: newest choice wins, erasure turns all off,
and every store of per-member data hears of withdrawals and erasures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pepite_contracts import (
    ConsentChange,
    ConsentFlags,
    MemberConsentChanged,
    MemberErased,
    MemberErasure,
)
from pepite_digest.consent import ConsentRepository, PerMemberFeature
from pepite_digest.handlers import MemberEventsHandler
from pepite_kit import Database

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
ADA = "discord:acme:ada"
BOB = "discord:acme:bob"


def change(member: str, at: datetime, **flags: bool) -> MemberConsentChanged:
    return MemberConsentChanged(
        community_id="acme",
        payload=ConsentChange(
            member_id=member,
            community_id="acme",
            consent=ConsentFlags(**flags),
            changed_at=at,
        ),
    )


class RecordingOwner:
    def __init__(self) -> None:
        self.withdrawn: list[tuple[str, ConsentFlags]] = []
        self.erased: list[str] = []

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        self.withdrawn.append((member_id, consent))

    async def erase(self, erasure: MemberErasure) -> None:
        self.erased.append(erasure.member_id)


async def test_nobody_has_consented_until_they_choose(mongo_db: Database) -> None:
    consents = ConsentRepository(mongo_db)
    assert not await consents.allows(ADA, PerMemberFeature.JOURNAL)
    assert await consents.consenting("acme", PerMemberFeature.JOURNAL) == []
    assert (await consents.flags(ADA)).journal is False


async def test_the_newest_choice_wins_whatever_the_order(mongo_db: Database) -> None:
    consents = ConsentRepository(mongo_db)
    owner = RecordingOwner()
    handler = MemberEventsHandler(consents, [owner])
    await handler([change(ADA, T0 + timedelta(hours=1), journal=True, personalization=True)])
    await handler([change(BOB, T0, journal=True)])
    # A replayed older choice of Ada's arrives late: it must not turn her journal off.
    await handler([change(ADA, T0, journal=False)])

    assert await consents.allows(ADA, PerMemberFeature.JOURNAL)
    assert await consents.allows(ADA, PerMemberFeature.PERSONALIZATION)
    assert not await consents.allows(BOB, PerMemberFeature.PERSONALIZATION)
    assert await consents.consenting("acme", PerMemberFeature.JOURNAL) == [ADA, BOB]
    # Owners are told the flags as stored, so the late event deletes nothing of Ada's.
    assert owner.withdrawn[-1] == (ADA, ConsentFlags(journal=True, personalization=True))


async def test_erasure_turns_everything_off_and_reaches_every_owner(mongo_db: Database) -> None:
    consents = ConsentRepository(mongo_db)
    owners = [RecordingOwner(), RecordingOwner()]
    handler = MemberEventsHandler(consents, owners)
    await handler([change(ADA, T0, journal=True, personalization=True)])
    erasure = MemberErasure(
        member_id=ADA,
        community_id="acme",
        pseudonym="member-7f3a",
        requested_at=T0 + timedelta(days=1),
    )
    await handler([MemberErased(community_id="acme", payload=erasure)])

    assert [o.erased for o in owners] == [[ADA], [ADA]]
    assert not await consents.allows(ADA, PerMemberFeature.JOURNAL)
    assert await consents.consenting("acme", PerMemberFeature.JOURNAL) == []
    # A consent given before the erasure, replayed afterwards, does not come back.
    await handler([change(ADA, T0 + timedelta(hours=2), journal=True)])
    assert not await consents.allows(ADA, PerMemberFeature.JOURNAL)
    # A new choice made after the erasure counts.
    await handler([change(ADA, T0 + timedelta(days=2), journal=True)])
    assert await consents.allows(ADA, PerMemberFeature.JOURNAL)
