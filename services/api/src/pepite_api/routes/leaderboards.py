"""Themed leaderboards: rankings over a month, a season, a custom event or any days; a
member's standing with the messages behind it; the community's titles and events.

Everything is read from the rollups the leaderboard service keeps (see
docs/leaderboards.md); nothing here reads messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from pepite_api.deps import AdminKey, DbDep, ReadKey
from pepite_api.pagination import CursorQuery, decode_cursor, encode_cursor
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.routes.members import MemberIdPath, require_own_member
from pepite_kit import Database
from pepite_reports.leaderboards import (
    EVENT_ID_PATTERN,
    Leaderboard,
    LeaderboardConfigRepository,
    LeaderboardEvent,
    LeaderboardReader,
    Period,
    Standing,
    Theme,
    TitleRule,
    TitleSet,
    month_label,
    named_period,
    range_period,
)

router = APIRouter(
    prefix="/v1/communities/{community_id}/leaderboards",
    tags=["leaderboards"],
    responses=COMMON_RESPONSES,
)

EventIdPath = Annotated[str, Path(pattern=EVENT_ID_PATTERN)]
PeriodQuery = Annotated[
    str | None,
    Query(
        description="A month (2024-05) or a season (2024-Q2). Default: this month, unless "
        "from/to or event is given.",
        max_length=7,
    ),
]
FromQuery = Annotated[date | None, Query(alias="from", description="First day (UTC), with `to`.")]
ToQuery = Annotated[date | None, Query(alias="to", description="Last day (UTC, included).")]
EventQuery = Annotated[
    str | None, Query(description="A custom event's id.", pattern=EVENT_ID_PATTERN)
]
ChannelQuery = Annotated[
    list[str] | None,
    Query(alias="channel", description="Only these channel ids (repeat).", max_length=50),
]
BoardLimit = Annotated[int, Query(ge=1, le=200, description="Members per page.")]
ItemsLimit = Annotated[int, Query(ge=1, le=200, description="Messages per page.")]


class TitlesUpdate(BaseModel):
    titles: list[TitleRule] = Field(max_length=100)


class EventBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    first: date
    last: date
    channels: list[str] = Field(default_factory=list, max_length=100)


@dataclass(frozen=True)
class PeriodChoice:
    """The query parameters that name a leaderboard's period, as given."""

    period: str | None
    first: date | None
    last: date | None
    event: str | None
    channels: list[str] | None


def period_choice(
    period: PeriodQuery = None,
    first: FromQuery = None,
    last: ToQuery = None,
    event: EventQuery = None,
    channel: ChannelQuery = None,
) -> PeriodChoice:
    """The period's query parameters, shared by the routes that rank over a period."""
    return PeriodChoice(period, first, last, event, channel)


PeriodChoiceDep = Annotated[PeriodChoice, Depends(period_choice)]


async def _period(db: Database, community_id: str, choice: PeriodChoice) -> Period:
    """The period the query names (this month by default).

    Raises:
        ProblemError: 422 naming the query field at fault, 404 for an unknown event.
    """
    period, first, last, event = choice.period, choice.first, choice.last, choice.event
    given = [name for name, v in (("period", period), ("event", event)) if v is not None]
    if first is not None or last is not None:
        given.append("from")
    if len(given) > 1:
        raise ProblemError(422, f"query.{given[1]}: give only one of period, from/to or event")
    if event is not None:
        found = await LeaderboardConfigRepository(db).event(community_id, event)
        if found is None:
            raise ProblemError(404, f"no event {event!r} in community {community_id!r}")
        chosen = found.period()
    elif first is not None or last is not None:
        if first is None or last is None:
            raise ProblemError(
                422, f"query.{'from' if first is None else 'to'}: give both from and to"
            )
        try:
            chosen = range_period(first, last)
        except ValueError as exc:
            raise ProblemError(422, f"query.to: {exc}") from None
    else:
        try:
            chosen = named_period(period or month_label(datetime.now(UTC).date()))
        except ValueError as exc:
            raise ProblemError(422, f"query.period: {exc}") from None
    if choice.channels:
        chosen = chosen.model_copy(update={"channels": sorted(set(choice.channels))})
    return chosen


@router.get("/titles", response_model=TitleSet)
async def read_titles(community_id: CommunityIdPath, _: ReadKey, db: DbDep) -> TitleSet:
    """The titles members can hold and their thresholds (the defaults until set)."""
    return await LeaderboardConfigRepository(db).titles(community_id)


@router.put("/titles", response_model=TitleSet)
async def set_titles(
    community_id: CommunityIdPath, update: TitlesUpdate, _: AdminKey, db: DbDep
) -> TitleSet:
    """Replace the community's titles: each names a theme, what is counted (a count or
    the theme's points) and the threshold that unlocks it."""
    ids = [t.title_id for t in update.titles]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ProblemError(422, f"body.titles: title_id {duplicates[0]!r} is given twice")
    return await LeaderboardConfigRepository(db).set_titles(community_id, update.titles)


@router.delete("/titles", response_model=TitleSet)
async def reset_titles(community_id: CommunityIdPath, _: AdminKey, db: DbDep) -> TitleSet:
    """Go back to the default titles."""
    return await LeaderboardConfigRepository(db).reset_titles(community_id)


@router.get("/events", response_model=list[LeaderboardEvent])
async def list_events(
    community_id: CommunityIdPath, _: ReadKey, db: DbDep
) -> list[LeaderboardEvent]:
    """The community's custom events, latest first."""
    return await LeaderboardConfigRepository(db).events(community_id)


@router.put("/events/{event_id}", response_model=LeaderboardEvent)
async def put_event(
    community_id: CommunityIdPath, event_id: EventIdPath, body: EventBody, _: AdminKey, db: DbDep
) -> LeaderboardEvent:
    """Create or change a custom event: a date range (UTC days) and optionally channels."""
    try:
        event = LeaderboardEvent(event_id=event_id, **body.model_dump())
    except ValueError as exc:
        raise ProblemError(422, f"body.last: {exc}") from None
    return await LeaderboardConfigRepository(db).put_event(community_id, event)


@router.delete("/events/{event_id}", status_code=204, response_class=Response)
async def delete_event(
    community_id: CommunityIdPath, event_id: EventIdPath, _: AdminKey, db: DbDep
) -> Response:
    """Remove a custom event (its scores stay in the rollups)."""
    if not await LeaderboardConfigRepository(db).delete_event(community_id, event_id):
        raise ProblemError(404, f"no event {event_id!r} in community {community_id!r}")
    return Response(status_code=204)


@router.get("/{theme}", response_model=Leaderboard)
async def leaderboard(
    *,
    community_id: CommunityIdPath,
    theme: Theme,
    _: ReadKey,
    db: DbDep,
    choice: PeriodChoiceDep,
    limit: BoardLimit = 20,
    cursor: CursorQuery = None,
) -> Leaderboard:
    """Members ranked on a theme over a period, best first, with the titles they hold.

    Members with the same points share a rank; members without points are not listed.
    """
    chosen = await _period(db, community_id, choice)
    offset = decode_cursor(cursor, int)[0] if cursor else 0
    if offset < 0:
        raise ProblemError(400, "invalid cursor: pass the next_cursor of a previous page unchanged")
    board, more = await LeaderboardReader(db).leaderboard(
        community_id, theme, chosen, limit=limit, offset=offset
    )
    if more:
        board.next_cursor = encode_cursor(offset + limit)
    return board


@router.get("/{theme}/members/{member_id}", response_model=Standing)
async def standing(
    *,
    community_id: CommunityIdPath,
    theme: Theme,
    member_id: MemberIdPath,
    _: ReadKey,
    db: DbDep,
    choice: PeriodChoiceDep,
    limit: ItemsLimit = 50,
    cursor: CursorQuery = None,
) -> Standing:
    """How a member's score on a theme was made: rank, points, counts, titles, and the
    messages behind it (what each gave after the daily cap, and why), oldest first.
    Messages that gave nothing (self-replies, flagged messages) are listed with the reason.
    """
    require_own_member(community_id, member_id)
    chosen = await _period(db, community_id, choice)
    after = decode_cursor(cursor, datetime, str) if cursor else None
    result, more = await LeaderboardReader(db).standing(
        community_id, member_id, theme, chosen, limit=limit, after=after
    )
    if more:
        last_item = result.contributions[-1]
        result.next_cursor = encode_cursor(last_item.at, last_item.contribution_id)
    return result
