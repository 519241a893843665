"""Alerts: review what was raised, acknowledge it, resolve it. A human always decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from pepite_api.alerts import Alert, AlertReview, AlertReviewRepository, AlertStatus
from pepite_api.deps import DbDep, ReadKey, WriteKey
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

router = APIRouter(
    prefix="/v1/communities/{community_id}/alerts", tags=["alerts"], responses=COMMON_RESPONSES
)

AlertIdPath = Annotated[str, Path(min_length=3, max_length=400)]
#: Kinds and severities are short identifiers (``volume_spike``, ``critical``).
NameQuery = Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")]


def _found(alert: Alert | None, community_id: str, alert_id: str) -> Alert:
    if alert is None:
        raise ProblemError(404, f"no alert {alert_id!r} in community {community_id!r}")
    return alert


@router.get("", response_model=Page[Alert])
async def list_alerts(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    status: AlertStatus | None = None,
    kind: NameQuery = None,
    severity: NameQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Alert]:
    """The community's alerts, newest first; ``status=open`` for those nobody took yet."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await AlertReviewRepository(db).page(
        community_id, status=status, kind=kind, severity=severity, limit=limit + 1, after=after
    )
    return page_of(items, limit, lambda a: encode_cursor(a.raised_at, a.alert_id))


@router.get("/{alert_id}", response_model=Alert)
async def get_alert(
    community_id: CommunityIdPath, alert_id: AlertIdPath, _: ReadKey, db: DbDep
) -> Alert:
    """One alert, with the messages behind it and what became of it."""
    alert = await AlertReviewRepository(db).get(community_id, alert_id)
    return _found(alert, community_id, alert_id)


@router.post("/{alert_id}/acknowledge", response_model=Alert)
async def acknowledge_alert(
    *,
    community_id: CommunityIdPath,
    alert_id: AlertIdPath,
    review: AlertReview | None = None,
    principal: WriteKey,
    db: DbDep,
) -> Alert:
    """Someone is on it. Acknowledging twice, or a resolved alert, changes nothing."""
    alert = await AlertReviewRepository(db).acknowledge(
        community_id, alert_id, principal.key_id, review.note if review else None
    )
    return _found(alert, community_id, alert_id)


@router.post("/{alert_id}/resolve", response_model=Alert)
async def resolve_alert(
    *,
    community_id: CommunityIdPath,
    alert_id: AlertIdPath,
    review: AlertReview | None = None,
    principal: WriteKey,
    db: DbDep,
) -> Alert:
    """Dealt with. Resolving again only replaces the note, when one is given."""
    alert = await AlertReviewRepository(db).resolve(
        community_id, alert_id, principal.key_id, review.note if review else None
    )
    return _found(alert, community_id, alert_id)
