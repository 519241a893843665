"""API keys: a community's own keys, and operator keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pepite_api.communities import CommunityRepository
from pepite_api.deps import AdminKey, DbDep, KeyRepositoryDep, OperatorKey
from pepite_api.keys import ApiKeyCreate, ApiKeyInfo, CreatedApiKey
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath

router = APIRouter(prefix="/v1", tags=["keys"], responses=COMMON_RESPONSES)

KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


@router.post("/communities/{community_id}/keys", status_code=201, response_model=CreatedApiKey)
async def create_community_key(
    community_id: CommunityIdPath,
    request: ApiKeyCreate,
    _: AdminKey,
    keys: KeyRepositoryDep,
    db: DbDep,
) -> CreatedApiKey:
    """Create a key for this community. The key is in the answer, and only there."""
    await CommunityRepository(db).ensure(community_id)
    return await keys.create(
        name=request.name,
        community_id=community_id,
        scopes=request.scopes,
        rate_limit_per_minute=request.rate_limit_per_minute,
    )


@router.get("/communities/{community_id}/keys", response_model=Page[ApiKeyInfo])
async def list_community_keys(
    community_id: CommunityIdPath,
    _: AdminKey,
    keys: KeyRepositoryDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ApiKeyInfo]:
    """The community's keys, revoked ones included (never the keys themselves)."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    items = await keys.list(community_id, limit=limit + 1, after=after)
    return page_of(items, limit, lambda k: encode_cursor(k.key_id))


@router.delete("/communities/{community_id}/keys/{key_id}", response_model=ApiKeyInfo)
async def revoke_community_key(
    community_id: CommunityIdPath, key_id: KeyIdPath, _: AdminKey, keys: KeyRepositoryDep
) -> ApiKeyInfo:
    """Revoke a key of this community; it stops working within seconds."""
    revoked = await keys.revoke(community_id, key_id)
    if revoked is None:
        raise ProblemError(404, f"no key {key_id!r} in community {community_id!r}")
    return revoked


@router.post("/keys", status_code=201, response_model=CreatedApiKey)
async def create_operator_key(
    request: ApiKeyCreate, _: OperatorKey, keys: KeyRepositoryDep
) -> CreatedApiKey:
    """Create a key of no community (sees every community). Shown this once."""
    return await keys.create(
        name=request.name,
        community_id=None,
        scopes=request.scopes,
        rate_limit_per_minute=request.rate_limit_per_minute,
    )


@router.get("/keys", response_model=Page[ApiKeyInfo])
async def list_operator_keys(
    _: OperatorKey, keys: KeyRepositoryDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[ApiKeyInfo]:
    """Keys of no community."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    items = await keys.list(None, limit=limit + 1, after=after)
    return page_of(items, limit, lambda k: encode_cursor(k.key_id))


@router.delete("/keys/{key_id}", response_model=ApiKeyInfo)
async def revoke_operator_key(
    key_id: KeyIdPath, _: OperatorKey, keys: KeyRepositoryDep
) -> ApiKeyInfo:
    """Revoke a key of no community."""
    revoked = await keys.revoke(None, key_id)
    if revoked is None:
        raise ProblemError(404, f"no operator key {key_id!r}")
    return revoked
