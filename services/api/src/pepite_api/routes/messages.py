"""Messages: search and filter what was said."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic_core import to_json

from pepite_api.deps import DbDep, ReadKey
from pepite_api.messages import MessageFilters, MessageOut, MessageRepository
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_contracts import MessageKind, Sentiment
from pepite_kit.search import parse_query

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["messages"], responses=COMMON_RESPONSES
)

MessageIdPath = Annotated[str, Path(min_length=3, max_length=300)]


async def get_message_repository(db: DbDep) -> MessageRepository:
    return MessageRepository(db)


MessageRepositoryDep = Annotated[MessageRepository, Depends(get_message_repository)]


async def message_filters(
    *,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description='Words to search (any of them); "a phrase" in quotes; -word excludes.',
        ),
    ] = None,
    channel_id: Annotated[str | None, Query(max_length=200)] = None,
    author_id: Annotated[str | None, Query(max_length=300)] = None,
    kind: MessageKind | None = None,
    sentiment: Sentiment | None = None,
    since: Annotated[datetime | None, Query(description="From this instant (included).")] = None,
    until: Annotated[datetime | None, Query(description="Before this instant.")] = None,
) -> MessageFilters:
    for name, instant in (("since", since), ("until", until)):
        if instant is not None and instant.tzinfo is None:
            raise ProblemError(422, f"{name} needs a time zone, e.g. 2024-05-01T00:00:00Z")
    q = q.strip() if q else None
    if q and parse_query(q).is_empty:
        raise ProblemError(
            422,
            "q has no word to look for: common words such as 'the', "
            "or excluded words alone, match nothing",
        )
    return MessageFilters(
        q=q or None,
        channel_id=channel_id,
        author_id=author_id,
        kind=kind,
        sentiment=sentiment,
        since=since,
        until=until,
    )


@router.get("/messages", response_model=Page[MessageOut])
async def list_messages(
    community_id: CommunityIdPath,
    _: ReadKey,
    repository: MessageRepositoryDep,
    filters: Annotated[MessageFilters, Depends(message_filters)],
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Response:
    """Messages newest first, filtered by words, channel, member, kind, sentiment, time."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await repository.page(community_id, filters, limit=limit + 1, after=after)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["message_id"])
    # Serialized in one go, not through the response model (see message_json).
    return Response(
        to_json({"items": items, "next_cursor": next_cursor}), media_type="application/json"
    )


@router.get("/messages/{message_id}", response_model=MessageOut)
async def get_message(
    community_id: CommunityIdPath,
    message_id: MessageIdPath,
    _: ReadKey,
    repository: MessageRepositoryDep,
) -> MessageOut:
    """One message and its analysis."""
    message = await repository.get(community_id, message_id)
    if message is None:
        raise ProblemError(404, f"no message {message_id!r} in community {community_id!r}")
    return message
