"""Members: profiles, activity, consent, export and erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from pepite_api.deps import (
    AdminKey,
    DbDep,
    IdentityRepositoryDep,
    PublisherDep,
    ReadKey,
    SettingsDep,
    WriteKey,
)
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.privacy import (
    ErasedMemberError,
    ErasureReceipt,
    MemberConsent,
    MemberExport,
    PrivacyRepository,
    announce_consent,
    announce_erasure,
    export_member,
)
from pepite_api.problems import COMMON_RESPONSES, GONE_RESPONSE, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.schemas import Identity, MemberProfile
from pepite_contracts import ConsentFlags

router = APIRouter(
    prefix="/v1/communities/{community_id}/members", tags=["members"], responses=COMMON_RESPONSES
)

#: ``platform:community:native_id``.
MemberIdPath = Annotated[str, Path(pattern=r"^[a-z]+:[A-Za-z0-9._-]+:[^\s]{1,256}$")]


def require_own_member(community_id: str, member_id: str) -> None:
    """Raises 404 for a member id of another community (tenants never see each other)."""
    if member_id.split(":", 2)[1] != community_id:
        raise ProblemError(404, f"no member {member_id!r} in community {community_id!r}")


@router.get("", response_model=Page[Identity])
async def list_members(
    community_id: CommunityIdPath,
    _: ReadKey,
    repository: IdentityRepositoryDep,
    q: Annotated[str | None, Query(max_length=100, description="Name starts with.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Identity]:
    """Members by name."""
    after = decode_cursor(cursor, str, str) if cursor else None
    items = await repository.page(community_id, limit=limit + 1, after=after, query=q)
    return page_of(items, limit, lambda m: encode_cursor(m.name or "", m.member_id))


@router.get("/{member_id}", response_model=MemberProfile)
async def member_profile(
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: ReadKey,
    repository: IdentityRepositoryDep,
    db: DbDep,
) -> MemberProfile:
    """A member: identity, linked person, activity and consent."""
    found = await repository.identity(community_id, member_id)
    if found is None:
        raise ProblemError(404, f"no member {member_id!r} in community {community_id!r}")
    identity, person_id = found
    person = await repository.person(community_id, person_id) if person_id else None
    consent = await PrivacyRepository(db).consent(community_id, member_id)
    return MemberProfile(
        identity=identity,
        person=person,
        activity=await repository.activity(community_id, member_id),
        consent=consent.consent,
    )


@router.get("/{member_id}/consent", response_model=MemberConsent)
async def get_consent(
    community_id: CommunityIdPath, member_id: MemberIdPath, _: ReadKey, db: DbDep
) -> MemberConsent:
    """The member's consent flags (defaults until the member chose)."""
    require_own_member(community_id, member_id)
    return await PrivacyRepository(db).consent(community_id, member_id)


@router.put("/{member_id}/consent", response_model=MemberConsent, responses=GONE_RESPONSE)
async def set_consent(
    *,
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    consent: ConsentFlags,
    _: WriteKey,
    db: DbDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> MemberConsent:
    """Record the member's choices; every service applies them."""
    require_own_member(community_id, member_id)
    try:
        recorded = await PrivacyRepository(db).set_consent(community_id, member_id, consent)
    except ErasedMemberError:
        raise ProblemError(410, f"member {member_id!r} was erased") from None
    await announce_consent(publisher, settings, community_id, recorded)
    return recorded


@router.get(
    "/{member_id}/export",
    response_model=MemberExport,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}}},
)
async def export(
    community_id: CommunityIdPath, member_id: MemberIdPath, _: AdminKey, db: DbDep
) -> StreamingResponse:
    """Everything stored about the member, as one JSON document."""
    require_own_member(community_id, member_id)
    consent = await PrivacyRepository(db).consent(community_id, member_id)
    return StreamingResponse(
        export_member(db, community_id, member_id, consent),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{member_id}.json"'},
    )


@router.delete("/{member_id}", status_code=202, response_model=ErasureReceipt)
async def erase(
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: AdminKey,
    db: DbDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> ErasureReceipt:
    """Erase the member everywhere; re-importing old exports will not bring them back."""
    require_own_member(community_id, member_id)
    receipt = await PrivacyRepository(db).record_erasure(community_id, member_id)
    await announce_erasure(publisher, settings, community_id, receipt)
    return receipt
