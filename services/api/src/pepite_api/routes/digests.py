"""Digests: the community's, and members' personalized ones, as JSON, Markdown or HTML;
and the community's digest of any period, asked for and built in the background."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from pepite_api.deps import DbDep, PublisherDep, ReadKey, SettingsDep, WriteKey
from pepite_api.digests import (
    RENDERINGS,
    DigestFormat,
    DigestPeriod,
    DigestReader,
    DigestRequestRepository,
    DigestRequestState,
    DigestSummary,
)
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
from pepite_api.routes.members import MemberIdPath, require_own_member
from pepite_contracts import DigestRequest, DigestRequested, Topic, community_key, encode_event
from pepite_kit import EventPublisher, KafkaSettings
from pepite_reports.digests import Digest

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["digests"], responses=COMMON_RESPONSES
)

DigestIdPath = Annotated[str, Path(min_length=1, max_length=600)]
RequestIdPath = Annotated[str, Path(min_length=1, max_length=64)]
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
    require_own_member(community_id, member_id)
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


async def _announce_request(
    publisher: EventPublisher, settings: KafkaSettings, request: DigestRequestState
) -> None:
    event = DigestRequested(
        community_id=request.community_id,
        payload=DigestRequest(
            request_id=request.request_id,
            first=request.first,
            last=request.last,
            requested_at=request.requested_at,
        ),
    )
    await publisher.send(
        settings.topic_name(Topic.DIGEST_REQUESTS),
        encode_event(event),
        key=community_key(request.community_id),
    )
    await publisher.flush()


@router.post(
    "/digests",
    status_code=202,
    response_model=DigestRequestState,
    responses={202: {"headers": {"Location": {"schema": {"type": "string"}}}}},
)
async def request_digest(
    *,
    community_id: CommunityIdPath,
    period: DigestPeriod,
    _: WriteKey,
    db: DbDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    response: Response,
) -> DigestRequestState:
    """Ask for the community's digest of the days ``from`` to ``to`` (at most 92 days,
    in the community's time zone). It is built in the background: follow ``Location``."""
    repository = DigestRequestRepository(db)
    request = await repository.create(community_id, period)
    try:
        await _announce_request(publisher, settings, request)
    except Exception as error:
        # Never left pending forever: nothing will pick up a request that was not sent.
        await repository.fail(request.request_id, "the request could not be queued")
        raise ProblemError(503, "the digest request could not be queued; try again") from error
    response.headers["Location"] = (
        f"/v1/communities/{community_id}/digest-requests/{request.request_id}"
    )
    return request


@router.get("/digest-requests/{request_id}", response_model=DigestRequestState)
async def get_digest_request(
    community_id: CommunityIdPath, request_id: RequestIdPath, _: ReadKey, db: DbDep
) -> DigestRequestState:
    """Where a requested digest stands: ``pending``, ``done`` (see ``digest_id``),
    ``empty`` (nothing was said) or ``failed`` (see ``error``)."""
    request = await DigestRequestRepository(db).get(community_id, request_id)
    if request is None:
        raise ProblemError(404, f"no digest request {request_id!r} in community {community_id!r}")
    return request
