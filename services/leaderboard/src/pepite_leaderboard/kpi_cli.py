"""``pepite kpis``: a community's health KPIs over a period, and rebuilding their rollups."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_kit.cli import fail, parse_day, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_leaderboard.kpi_handlers import KpiUpdater
from pepite_leaderboard.kpi_repository import KPI_INDEXES, KpiRepository
from pepite_leaderboard.settings import Settings
from pepite_reports.kpis import (
    DEFAULT_CHURN_DAYS,
    DEFAULT_COHORT_MONTHS,
    WEEKDAYS,
    KpiQuery,
    KpiReport,
    KpiService,
)

_BAR_WIDTH = 20
_HEAT = " .:-=+*#%@"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


app = typer.Typer(
    help="Community health KPIs: active, new and churned members, retention, response "
    "times, concentration, heatmap and busiest channels.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def kpis_command(  # noqa: PLR0917 - one parameter per command-line option
    ctx: typer.Context,
    community: Annotated[
        str | None, typer.Option("--community", "-c", help="Community id.")
    ] = None,
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC, included).")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC, included).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel (its id).")] = None,
    churn_days: Annotated[
        int, typer.Option(help="Days without a message after which a member has churned.")
    ] = DEFAULT_CHURN_DAYS,
    cohort_months: Annotated[
        int, typer.Option(help="Join-month cohorts in the retention table.")
    ] = DEFAULT_COHORT_MONTHS,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="A readable table, or JSON.")
    ] = OutputFormat.TABLE,
) -> None:
    """A community's health over a period of UTC days, from the KPI rollups.

    Members are counted once per platform identity; bots are left out. The heatmap is
    in the community's time zone. ``pepite kpis rebuild`` fills the rollups from the
    messages already stored.
    """
    if ctx.invoked_subcommand is not None:
        return
    if community is None or first is None or last is None:
        raise fail("give --community, --from and --to (or a subcommand: rebuild)")
    require_community_id(community)
    query = KpiQuery(
        community,
        parse_day("--from", first),
        parse_day("--to", last),
        channel_id=channel,
        churn_days=churn_days,
        cohort_months=cohort_months,
    )
    try:
        query.check()
    except ValueError as exc:
        raise fail("--" + str(exc).replace("_", "-", 1)) from None
    settings = Settings()

    async def build() -> KpiReport:
        async with mongo_database(settings, app_name="pepite-cli", indexes=KPI_INDEXES) as db:
            return await KpiService(db).report(query)

    try:
        report = asyncio.run(build())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    if output is OutputFormat.JSON:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(render_table(report))


@app.command("rebuild")
def rebuild_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
    batch: Annotated[int, typer.Option(help="Messages per write.", min=100)] = 2_000,
) -> None:
    """Recount a community's KPI rollups from its stored, analyzed messages.

    Its counters, questions, response histograms, join listings and counted-message
    records are cleared, then every stored message is fed in time order through the same
    update as the live consumer. Members keep their numbers and join dates. Running it
    again gives the same figures.
    """
    require_community_id(community)
    settings = Settings()
    started = time.monotonic()

    async def rebuild() -> int:
        async with mongo_database(settings, app_name="pepite-cli", indexes=KPI_INDEXES) as db:
            repository = KpiRepository(db)
            updater = KpiUpdater(
                repository, answer_window=timedelta(minutes=settings.kpi_answer_window_minutes)
            )
            total = await repository.stored_count(community)
            await repository.reset(community)
            done = 0
            async for messages in repository.stored_messages(community, batch_size=batch):
                await updater.apply(messages)
                done += len(messages)
                rate = done / max(time.monotonic() - started, 1e-9)
                typer.echo(f"{done:,}/{total:,} messages ({rate:,.0f}/s)", err=True)
            return done

    try:
        done = asyncio.run(rebuild())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    typer.echo(
        f"KPI rollups of {community} rebuilt from {done:,} messages "
        f"in {time.monotonic() - started:.1f}s"
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_table(report: KpiReport) -> str:
    """The report as text for a terminal."""
    scope = f" #{report.channel_id}" if report.channel_id else ""
    m, q = report.members, report.questions
    lines = [
        f"KPIs of {report.community_id}{scope}, {report.first} to {report.last} "
        f"({report.days} days, UTC)",
        "",
        f"  messages           {report.messages:,}",
        f"  active members     {m.active:,}   DAU {m.dau:.1f}   WAU {m.wau:,}   MAU {m.mau:,}",
        f"  new members        {m.new:,}",
        f"  churned            {m.churned:,}   (no message for {report.churn_days} days)",
        f"  questions          {q.asked:,}   answered {q.answered:,}   "
        f"unanswered {_share(q.unanswered_share)}",
        f"  first response     median {_seconds(q.first_response_median_s)}   "
        f"p90 {_seconds(q.first_response_p90_s)}",
    ]
    lines += [
        f"  {f'top {share.top_percent}% members':<19}{_share(share.share)} of messages "
        f"({share.members:,} members)"
        for share in report.top_shares
    ]
    if report.busiest_channels:
        lines += ["", "busiest channels"]
        for channel in report.busiest_channels:
            bar = "#" * round(channel.share * _BAR_WIDTH)
            lines.append(
                f"  {channel.name[:24]:<24} {channel.messages:>8,} {channel.share:>6.1%} {bar}"
            )
    heat = report.heatmap.counts
    peak = max((max(row) for row in heat), default=0)
    lines += ["", f"activity by weekday and hour ({report.heatmap.timezone})"]
    lines.append("       " + "".join(f"{hour:<3}" for hour in range(0, 24, 3)).rstrip())
    for name, row in zip(WEEKDAYS, heat, strict=True):
        cells = "".join(
            _HEAT[min(len(_HEAT) - 1, round(count / peak * (len(_HEAT) - 1)))] if peak else " "
            for count in row
        )
        lines.append(f"  {name[:3]}  {cells}")
    if report.retention.cohorts:
        lines += ["", "retention by join month (active share, month 0 first)"]
        for cohort in report.retention.cohorts:
            cells = " ".join(f"{rate:>4.0%}" for rate in cohort.retention)
            lines.append(f"  {cohort.month}  {cohort.members:>6,}  {cells}")
    return "\n".join(lines)
