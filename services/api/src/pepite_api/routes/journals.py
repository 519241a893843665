"""Members' journals (the Personal Logger): read, or exported as Markdown.

A journal exists only for a member who turned it on: without that consent the API
answers 403 and the digest service has computed and stored nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from pepite_api.deps import DbDep, IdentityRepositoryDep, ReadKey
from pepite_api.identities import IdentityRepository
from pepite_api.journals import JournalReader
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
from pepite_kit import Database
from pepite_reports.journals import JournalEntry, to_markdown

router = APIRouter(
    prefix="/v1/communities/{community_id}/members/{member_id}",
    tags=["journals"],
    responses=COMMON_RESPONSES,
)

#: Days one request covers at most, and by default.
MAX_DAYS = 366
DEFAULT_DAYS = 30

FromQuery = Annotated[
    date | None,
    Query(alias="from", description="First day (community time zone); default: 30 days back."),
]
ToQuery = Annotated[date | None, Query(alias="to", description="Last day; default: today (UTC).")]


def _period(first: date | None, last: date | None) -> tuple[date, date]:
    last = last or datetime.now(UTC).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise ProblemError(422, f"query.to: {last} is before query.from {first}")
    if (last - first).days >= MAX_DAYS:
        raise ProblemError(422, f"query.from: at most {MAX_DAYS} days at a time")
    return first, last


async def _journal_member(
    community_id: str, member_id: str, db: Database, identities: IdentityRepository
) -> None:
    """Raises a problem unless the member is of this community and keeps a journal."""
    require_own_member(community_id, member_id)
    if await identities.identity(community_id, member_id) is None:
        raise ProblemError(404, f"no member {member_id!r} in community {community_id!r}")
    consent = await PrivacyRepository(db).consent(community_id, member_id)
    if not consent.consent.journal:
        raise ProblemError(
            403,
            f"member {member_id!r} has not consented to a journal: none is kept",
            title="No journal consent",
        )


@router.get("/journal", response_model=Page[JournalEntry])
async def read_journal(
    *,
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: ReadKey,
    db: DbDep,
    identities: IdentityRepositoryDep,
    first: FromQuery = None,
    last: ToQuery = None,
    limit: LimitQuery = 31,
    cursor: CursorQuery = None,
) -> Page[JournalEntry]:
    """The member's daily entries, oldest first: mood, challenges, wins, notable actions,
    stats and titles unlocked. Days without messages have no entry."""
    await _journal_member(community_id, member_id, db, identities)
    start, end = _period(first, last)
    after = date.fromisoformat(decode_cursor(cursor, str)[0]) if cursor else None
    items = await JournalReader(db).entries(
        community_id, member_id, start, end, limit=limit + 1, after=after
    )
    return page_of(items, limit, lambda e: encode_cursor(e.day.isoformat()))


@router.get(
    "/journal.md",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def export_journal(
    *,
    community_id: CommunityIdPath,
    member_id: MemberIdPath,
    _: ReadKey,
    db: DbDep,
    identities: IdentityRepositoryDep,
    first: FromQuery = None,
    last: ToQuery = None,
) -> Response:
    """The member's journal over the period as one Markdown document, to download."""
    await _journal_member(community_id, member_id, db, identities)
    start, end = _period(first, last)
    entries = await JournalReader(db).entries(community_id, member_id, start, end)
    native = member_id.split(":", 2)[2]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in native)[:64]
    return Response(
        to_markdown(entries),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="journal-{safe}-{start}-{end}.md"'},
    )
