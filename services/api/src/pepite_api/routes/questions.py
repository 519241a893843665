"""Questions: those still waiting for an answer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from pepite_api.deps import DbDep, ReadKey
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES
from pepite_api.questions import UnansweredQuestion, UnansweredReader
from pepite_api.routes.communities import CommunityIdPath

router = APIRouter(
    prefix="/v1/communities/{community_id}/questions",
    tags=["questions"],
    responses=COMMON_RESPONSES,
)


@router.get("/unanswered", response_model=Page[UnansweredQuestion])
async def unanswered_questions(
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[UnansweredQuestion]:
    """Members' questions to everyone still without an answer after the community's
    delay (24 hours unless its settings say otherwise), the longest waiting first."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await UnansweredReader(db).page(community_id, limit=limit + 1, after=after)
    return page_of(items, limit, lambda q: encode_cursor(q.asked_at, q.question_id))
