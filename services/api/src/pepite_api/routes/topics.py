"""Topics: the categories insight messages are grouped into."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from pepite_api.deps import DbDep, ReadKey
from pepite_api.messages import MessageOut, MessageRepository
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
from pepite_api.topics import TopicRepository
from pepite_reports.rollups import TopicSummary

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["topics"], responses=COMMON_RESPONSES
)

TopicIdPath = Annotated[str, Path(min_length=1, max_length=200)]


class TopicDetail(TopicSummary):
    """A topic and the messages closest to its centre."""

    samples: list[MessageOut]


@router.get("/topics", response_model=Page[TopicSummary])
async def list_topics(
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    include_inactive: Annotated[
        bool, Query(description="Also topics a later clustering dropped.")
    ] = False,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[TopicSummary]:
    """Topics, largest first."""
    after = decode_cursor(cursor, int, str) if cursor else None
    items = await TopicRepository(db).page(
        community_id, include_inactive=include_inactive, limit=limit + 1, after=after
    )
    return page_of(items, limit, lambda t: encode_cursor(t.size, t.topic_id))


@router.get("/topics/{topic_id}", response_model=TopicDetail)
async def get_topic(
    community_id: CommunityIdPath, topic_id: TopicIdPath, _: ReadKey, db: DbDep
) -> TopicDetail:
    """A topic, its keywords and sample messages."""
    topic = await TopicRepository(db).get(community_id, topic_id)
    if topic is None:
        raise ProblemError(404, f"no topic {topic_id!r} in community {community_id!r}")
    samples = await MessageRepository(db).by_ids(community_id, topic.sample_ids)
    return TopicDetail(**topic.model_dump(), samples=samples)
