"""Digests: the community's, and members' personalized ones, as JSON, Markdown or HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from pepite_api.deps import DbDep, ReadKey
from pepite_api.digests import RENDERINGS, DigestFormat, DigestReader, DigestSummary
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.privacy import PrivacyRepository
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.routes.members import MemberIdPath
from pepite_reports.digests import Digest

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["digests"], responses=COMMON_RESPONSES
)

DigestIdPath = Annotated[str, Path(min_length=1, max_length=600)]
FormatQuery = Annotated[
    DigestFormat,
    Query(alias="format", description="json (the stored digest), markdown or html."),
]

_RENDERED_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            "application/json": {},
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        }
    }
}


async def _page(
    reader: DigestReader, community_id: str, limit: int, cursor: str | None
) -> Page[DigestSummary]:
    after = decode_cursor(cursor, datetime, str) if cursor else None
    items = await reader.page(community_id, limit=limit + 1, after=after)
    return page_of(items, limit, lambda d: encode_cursor(d.period_start, d.digest_id))


def _rendered(digest: Digest, output: DigestFormat) -> Response:
    if output is DigestFormat.JSON:
        return Response(digest.model_dump_json(), media_type="application/json")
    media_type, render = RENDERINGS[output]
    return Response(render(digest), media_type=media_type)


async def _require_personalization(db: DbDep, community_id: str, member_id: str) -> None:
    """Personalized digests are shown only while the member consents to them."""
    if member_id.split(":", 2)[1] != community_id:
        raise ProblemError(404, f"no member {member_id!r} in community {community_id!r}")
    consent = await PrivacyRepository(db).consent(community_id, member_id)
    if not consent.consent.personalization:
        raise ProblemError(403, f"member {member_id!r} has not consented to personalized digests")


@router.get("/digests", response_model=Page[DigestSummary])
async def list_digests(
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[DigestSummary]:
    """The community's digests, newest period first."""
    return await _page(DigestReader(db), community_id, limit, cursor)


@router.get(
    "/digests/{digest_id}",
    response_model=Digest,
    response_class=Response,
    responses=_RENDERED_RESPONSES,
)
async def get_digest(
    community_id: CommunityIdPath,
    digest_id: DigestIdPath,
    _: ReadKey,
    db: DbDep,
    output: FormatQuery = DigestFormat.JSON,
) -> Response:
    """One digest: its statements each cite the messages they are drawn from."""
    digest = await DigestReader(db).get(community_id, digest_id)
    if digest is None:
        raise ProblemError(404, f"no digest {digest_id!r} in community {community_id!r}")
    return _rendered(digest, output)


@router.get("/members/{member_id}/digests", response_model=Page[DigestSummary])
async def list_member_digests(
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: ReadKey,
    db: DbDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[DigestSummary]:
    """The member's personalized digests, newest period first (only while the member
    consents to personalization)."""
    await _require_personalization(db, community_id, member_id)
    return await _page(DigestReader(db, member_id=member_id), community_id, limit, cursor)


@router.get(
    "/members/{member_id}/digests/{digest_id}",
    response_model=Digest,
    response_class=Response,
    responses=_RENDERED_RESPONSES,
)
async def get_member_digest(
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    digest_id: DigestIdPath,
    _: ReadKey,
    db: DbDep,
    output: FormatQuery = DigestFormat.JSON,
) -> Response:
    """One of the member's personalized digests."""
    await _require_personalization(db, community_id, member_id)
    digest = await DigestReader(db, member_id=member_id).get(community_id, digest_id)
    if digest is None:
        raise ProblemError(404, f"no digest {digest_id!r} for member {member_id!r}")
    return _rendered(digest, output)
