"""Community-level views."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pepite_api.deps import StatusRepositoryDep
from pepite_api.schemas import CommunityStatus
from pepite_contracts import COMMUNITY_ID_PATTERN

router = APIRouter(prefix="/v1/communities", tags=["communities"])

CommunityIdPath = Annotated[str, Path(pattern=COMMUNITY_ID_PATTERN)]


@router.get("/{community_id}/status", response_model=CommunityStatus)
async def community_status(
    community_id: CommunityIdPath, repository: StatusRepositoryDep
) -> CommunityStatus:
    """Messages, members and channels stored for a community, and its time span."""
    return await repository.community_status(community_id)
