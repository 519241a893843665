"""Insights: what the community expressed over a window, by kind and category."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response

from pepite_api.deps import ReadKey, StateDep
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_contracts import MessageKind
from pepite_reports.insights import InsightsReport, InsightsService, NoDataError
from pepite_reports.rollups import RollupReader

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["insights"], responses=COMMON_RESPONSES
)


@router.get("/insights", response_model=InsightsReport)
async def insights_report(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    state: StateDep,
    days: Annotated[
        int | None, Query(ge=1, le=3660, description="Window in days (default 30).")
    ] = None,
    months: Annotated[
        int | None, Query(ge=1, le=120, description="...or in calendar months.")
    ] = None,
    until: Annotated[
        date | None,
        Query(description="Last day of the window (UTC); default: the last day with data."),
    ] = None,
    channel_id: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[MessageKind | None, Query(description="Only this kind.")] = None,
) -> Response:
    """Counts and shares of questions, problems, requests and satisfaction by category,
    by channel and by sentiment, each with its change against the previous window."""
    if days is not None and months is not None:
        raise ProblemError(422, "give the window in days or in months, not both")
    if days is None and months is None:
        days = 30

    async def compute() -> bytes:
        report = await InsightsService(state.db).report(
            community_id, days=days, months=months, until=until, channel_id=channel_id, kind=kind
        )
        return report.model_dump_json().encode()

    try:
        body = await state.reports.get(
            (community_id, days, months, until, channel_id, kind),
            compute,
            version=partial(RollupReader(state.db).version, community_id),
        )
    except NoDataError as exc:
        raise ProblemError(404, str(exc)) from None
    except ValueError as exc:
        raise ProblemError(422, str(exc)) from None
    return Response(body, media_type="application/json")
