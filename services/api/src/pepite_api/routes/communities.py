"""Communities: create, list, settings, and what is stored for each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from pepite_api.communities import (
    Community,
    CommunityCreate,
    CommunityExistsError,
    CommunityRepository,
    CommunityUpdate,
)
from pepite_api.deps import (
    AdminKey,
    DbDep,
    OperatorKey,
    ReadKey,
    StatusRepositoryDep,
)
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES, CONFLICT_RESPONSE, ProblemError
from pepite_api.schemas import CommunityStatus
from pepite_contracts import COMMUNITY_ID_PATTERN

router = APIRouter(prefix="/v1/communities", tags=["communities"], responses=COMMON_RESPONSES)

CommunityIdPath = Annotated[str, Path(pattern=COMMUNITY_ID_PATTERN)]


async def get_community_repository(db: DbDep) -> CommunityRepository:
    return CommunityRepository(db)


CommunityRepositoryDep = Annotated[CommunityRepository, Depends(get_community_repository)]


@router.post("", status_code=201, response_model=Community, responses=CONFLICT_RESPONSE)
async def create_community(
    _: OperatorKey, request: CommunityCreate, repository: CommunityRepositoryDep
) -> Community:
    """Create a community (operator keys only)."""
    try:
        return await repository.create(request)
    except CommunityExistsError:
        raise ProblemError(409, f"community {request.community_id!r} already exists") from None


@router.get("", response_model=Page[Community])
async def list_communities(
    principal: ReadKey,
    repository: CommunityRepositoryDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Community]:
    """Communities this key can see: its own, or every one for an operator key."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    items = await repository.list(limit=limit + 1, after=after, only=principal.community_id)
    return page_of(items, limit, lambda c: encode_cursor(c.community_id))


@router.get("/{community_id}", response_model=Community)
async def get_community(
    community_id: CommunityIdPath, _: ReadKey, repository: CommunityRepositoryDep
) -> Community:
    """A community and its settings."""
    community = await repository.get(community_id)
    if community is None:
        raise ProblemError(404, f"no community {community_id!r}")
    return community


@router.patch("/{community_id}", response_model=Community)
async def update_community(
    community_id: CommunityIdPath,
    changes: CommunityUpdate,
    _: AdminKey,
    repository: CommunityRepositoryDep,
) -> Community:
    """Change settings: name, time zone, language, digest schedule."""
    community = await repository.update(community_id, changes)
    if community is None:
        raise ProblemError(404, f"no community {community_id!r}")
    return community


@router.get("/{community_id}/status", response_model=CommunityStatus)
async def community_status(
    community_id: CommunityIdPath, _: ReadKey, repository: StatusRepositoryDep
) -> CommunityStatus:
    """Messages, members and channels stored for a community, and its time span."""
    return await repository.community_status(community_id)
