"""Dependencies injected into routes: the database, repositories and the caller's key."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pepite_api.cache import SharedCache
from pepite_api.identities import IdentityRepository
from pepite_api.keys import KeyCache, KeyRepository, Principal, Scope, grants
from pepite_api.problems import ProblemError
from pepite_api.ratelimit import RateLimiter
from pepite_api.repository import StatusRepository
from pepite_api.settings import Settings
from pepite_kit import Database, EventPublisher

#: last_used_at is written at most this often per key and process.
_TOUCH_EVERY_S = 60.0


@dataclass
class ApiState:
    """What the app holds for its lifetime, built in the lifespan."""

    settings: Settings
    db: Database
    publisher: EventPublisher
    keys: KeyCache
    limiter: RateLimiter
    touched: dict[str, float]
    #: Insights reports, kept as the JSON they are sent as (serializing is most of a hit).
    reports: SharedCache[bytes]


# Dependencies are coroutines even when they await nothing: FastAPI runs plain functions
# in a thread pool, which costs more than the work they do.
async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_db(state: StateDep) -> Database:
    return state.db


DbDep = Annotated[Database, Depends(get_db)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_publisher(state: StateDep) -> EventPublisher:
    return state.publisher


PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer pep_...`.",
)

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="pepite"'}


async def authenticate(
    state: StateDep,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller's key, verified and within its rate limit.

    Raises:
        ProblemError: 401 without a valid key, 429 over the key's rate limit.
    """
    if credentials is None:
        raise ProblemError(
            401, "send an API key as 'Authorization: Bearer <key>'", headers=_UNAUTHENTICATED
        )
    key = credentials.credentials
    found, principal = state.keys.get(key)
    if not found:
        principal = await KeyRepository(state.db).principal(key)
        state.keys.put(key, principal)
    if principal is None:
        raise ProblemError(401, "unknown or revoked API key", headers=_UNAUTHENTICATED)
    allowed, retry_after, limit, remaining = state.limiter.take(principal)
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)}
    if not allowed:
        seconds = max(1, math.ceil(retry_after))
        raise ProblemError(
            429,
            f"rate limit of {limit} requests per minute reached for key {principal.key_id}; "
            f"retry in {seconds} s",
            headers={**headers, "Retry-After": str(seconds)},
        )
    response.headers.update(headers)
    now = time.monotonic()
    if now - state.touched.get(principal.key_id, -_TOUCH_EVERY_S) >= _TOUCH_EVERY_S:
        state.touched[principal.key_id] = now
        await KeyRepository(state.db).touch(principal.key_id, datetime.now(UTC))
    return principal


def require(scope: Scope, *, operator: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys with ``scope`` on the community in the path.

    Args:
        scope: The least scope the route needs.
        operator: Only admin keys of no community (they manage every community).
    """

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if operator and not principal.is_operator:
            raise ProblemError(403, "this needs an operator key (admin of every community)")
        if not grants(principal.scopes, scope):
            raise ProblemError(403, f"this key lacks the '{scope.value}' scope")
        community_id = request.path_params.get("community_id")
        if community_id is not None and not principal.may_access(community_id):
            # Said the same way whether the community exists or not: nothing leaks.
            raise ProblemError(403, f"this key cannot access community {community_id!r}")
        return principal

    return dependency


ReadKey = Annotated[Principal, Depends(require(Scope.READ))]
WriteKey = Annotated[Principal, Depends(require(Scope.WRITE))]
AdminKey = Annotated[Principal, Depends(require(Scope.ADMIN))]
OperatorKey = Annotated[Principal, Depends(require(Scope.ADMIN, operator=True))]


async def get_status_repository(db: DbDep) -> StatusRepository:
    return StatusRepository(db)


StatusRepositoryDep = Annotated[StatusRepository, Depends(get_status_repository)]


async def get_identity_repository(db: DbDep) -> IdentityRepository:
    return IdentityRepository(db)


IdentityRepositoryDep = Annotated[IdentityRepository, Depends(get_identity_repository)]


async def get_key_repository(db: DbDep) -> KeyRepository:
    return KeyRepository(db)


KeyRepositoryDep = Annotated[KeyRepository, Depends(get_key_repository)]
