"""Community health KPIs over a period, from the rollups the leaderboard service keeps."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from pepite_api.deps import DbDep, ReadKey
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_reports.kpis import (
    DEFAULT_CHURN_DAYS,
    DEFAULT_COHORT_MONTHS,
    MAX_CHURN_DAYS,
    MAX_COHORT_MONTHS,
    KpiQuery,
    KpiReport,
    KpiService,
)

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["kpis"], responses=COMMON_RESPONSES
)


@router.get("/kpis", response_model=KpiReport)
async def community_kpis(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    first: Annotated[
        date, Query(alias="from", description="First day of the period (UTC, included).")
    ],
    last: Annotated[date, Query(alias="to", description="Last day of the period (included).")],
    channel: Annotated[
        str | None, Query(max_length=200, description="Only this channel (its id).")
    ] = None,
    churn_days: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_CHURN_DAYS,
            description="Days without a message after which a member has churned.",
        ),
    ] = DEFAULT_CHURN_DAYS,
    cohort_months: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_COHORT_MONTHS,
            description="Join-month cohorts in the retention table, ending with the last "
            "day's month.",
        ),
    ] = DEFAULT_COHORT_MONTHS,
    timezone: Annotated[
        str | None,
        Query(max_length=64, description="Time zone of the heatmap; default: the community's."),
    ] = None,
) -> KpiReport:
    """Active (DAU, WAU, MAU), new and churned members, retention by join month, first
    response times and unanswered questions, the share of the most active members,
    activity by weekday and hour, and the busiest channels. Bots are never counted."""
    query = KpiQuery(
        community_id,
        first,
        last,
        channel_id=channel,
        churn_days=churn_days,
        cohort_months=cohort_months,
        timezone=timezone,
    )
    try:
        return await KpiService(db).report(query)
    except ValueError as exc:
        raise ProblemError(422, str(exc)) from None
