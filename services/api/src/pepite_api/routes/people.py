"""Members and the people behind them: one person, several platform identities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pepite_api.deps import IdentityRepositoryDep, ReadKey, WriteKey
from pepite_api.identities import UnknownMembersError
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.schemas import LinkRequest, LinkSuggestion, Person

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["members"], responses=COMMON_RESPONSES
)

MemberIdPath = Annotated[str, Path(min_length=3, max_length=300)]


@router.post("/people", response_model=Person)
async def link_identities(
    community_id: CommunityIdPath,
    request: LinkRequest,
    _: WriteKey,
    repository: IdentityRepositoryDep,
) -> Person:
    """Link identities as one person; people they already belong to are merged."""
    try:
        return await repository.link(community_id, request.member_ids, request.display_name)
    except UnknownMembersError as exc:
        raise ProblemError(422, str(exc)) from None


@router.delete("/people/links/{member_id}", response_model=Person | None)
async def unlink_identity(
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: WriteKey,
    repository: IdentityRepositoryDep,
) -> Person | None:
    """Take an identity out of its person; returns the person, or null if dissolved."""
    if await repository.identity(community_id, member_id) is None:
        raise ProblemError(404, f"no member {member_id!r} in community {community_id!r}")
    return await repository.unlink(community_id, member_id)


@router.get("/people/suggestions", response_model=list[LinkSuggestion])
async def link_suggestions(
    community_id: CommunityIdPath, _: ReadKey, repository: IdentityRepositoryDep
) -> list[LinkSuggestion]:
    """Unlinked identities on different platforms that share a name: candidates to link."""
    return await repository.suggestions(community_id)
