"""The moderation queue: flagged messages with their scores; a human decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

from pepite_api.deps import DbDep, ReadKey, WriteKey
from pepite_api.moderation import Decision, ModerationItem, ModerationRepository, ModerationStatus
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
from pepite_contracts import MessageKind

router = APIRouter(
    prefix="/v1/communities/{community_id}/moderation",
    tags=["moderation"],
    responses=COMMON_RESPONSES,
)

MessageIdPath = Annotated[str, Path(min_length=3, max_length=300)]


@router.get("", response_model=Page[ModerationItem])
async def moderation_queue(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    status: ModerationStatus | None = ModerationStatus.PENDING,
    kind: MessageKind | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ModerationItem]:
    """Flagged messages, most recently flagged first (pending ones by default)."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await ModerationRepository(db).page(
        community_id, status=status, kind=kind, limit=limit + 1, after=after
    )
    return page_of(items, limit, lambda i: encode_cursor(i.flagged_at, i.message_id))


@router.get("/{message_id}", response_model=ModerationItem)
async def moderation_item(
    community_id: CommunityIdPath, message_id: MessageIdPath, _: ReadKey, db: DbDep
) -> ModerationItem:
    """One flagged message and its decisions."""
    item = await ModerationRepository(db).get(community_id, message_id)
    if item is None:
        raise ProblemError(404, f"message {message_id!r} is not in the moderation queue")
    return item


@router.post("/{message_id}/decision", response_model=ModerationItem)
async def decide(
    community_id: CommunityIdPath,
    message_id: MessageIdPath,
    decision: Decision,
    principal: WriteKey,
    db: DbDep,
) -> ModerationItem:
    """Record a moderator's decision (a later one replaces it; the earlier is kept)."""
    item = await ModerationRepository(db).decide(
        community_id, message_id, decision, principal.key_id
    )
    if item is None:
        raise ProblemError(404, f"message {message_id!r} is not in the moderation queue")
    return item
