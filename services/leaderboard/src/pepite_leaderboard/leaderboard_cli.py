"""``pepite leaderboard``: a theme's ranking over a period, and rebuilding the scores."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from enum import StrEnum
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_kit.cli import fail, parse_day, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_leaderboard.scores_handlers import scoring_policy
from pepite_leaderboard.scores_repository import SCORES_INDEXES, ScoresRepository
from pepite_leaderboard.scores_service import ScoreUpdater
from pepite_leaderboard.settings import Settings
from pepite_reports.leaderboards import (
    LEADERBOARD_INDEXES,
    Leaderboard,
    LeaderboardConfigRepository,
    LeaderboardReader,
    Period,
    Theme,
    named_period,
    range_period,
)

app = typer.Typer(
    help="Themed leaderboards: a ranking over a period (default), or `rebuild` the scores.",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def render_table(board: Leaderboard) -> str:
    period = board.period
    channels = f", channels {', '.join(period.channels)}" if period.channels else ""
    lines = [
        f"{board.theme.value} leaderboard of {board.community_id}, {period.label} "
        f"({period.first} to {period.last}{channels}): {board.members} members with points",
    ]
    if not board.entries:
        lines.append("nobody has points on this theme in this period")
        return "\n".join(lines) + "\n"
    name_width = min(max(len(e.name) for e in board.entries), 32)
    lines.append(f"{'rank':>4}  {'member':<{name_width}}  {'points':>8}  titles")
    for entry in board.entries:
        titles = ", ".join(t.name for t in entry.titles)
        name = entry.name[:name_width]
        lines.append(f"{entry.rank:>4}  {name:<{name_width}}  {entry.points:>8g}  {titles}")
    return "\n".join(lines) + "\n"


@app.callback(invoke_without_command=True)
def leaderboard_command(  # noqa: PLR0917 - one parameter per command-line option
    ctx: typer.Context,
    community: Annotated[
        str | None, typer.Option("--community", "-c", help="Community id.")
    ] = None,
    theme: Annotated[
        Theme,
        typer.Option("--theme", "-t", help="helpfulness, kindness, sharing, progress or activity."),
    ] = Theme.HELPFULNESS,
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC days, included).")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (included).")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            "--period", "-p", help="A month (2024-05) or a season (2024-Q2) instead of --from/--to."
        ),
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", "-e", help="A custom event's id instead of a period.")
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Only this channel id (repeat for more).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Members shown.")
    ] = 20,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Rank a community's members on a theme over a month, a season, a custom event or
    any days (optionally some channels), with the titles they hold."""
    if ctx.invoked_subcommand is not None:
        return
    if community is None:
        raise fail("--community: give the community id")
    require_community_id(community)
    chosen = sum(x is not None for x in (period, event)) + (first is not None or last is not None)
    if chosen != 1:
        raise fail("give exactly one of --from/--to, --period or --event")
    settings = Settings()

    async def read() -> Leaderboard:
        async with mongo_database(
            settings, app_name="pepite-cli", indexes=LEADERBOARD_INDEXES
        ) as db:
            wanted: Period
            if event is not None:
                found = await LeaderboardConfigRepository(db).event(community, event)
                if found is None:
                    raise fail(f"--event: community {community!r} has no event {event!r}")
                wanted = found.period()
            elif period is not None:
                try:
                    wanted = named_period(period)
                except ValueError as exc:
                    raise fail(f"--period: {exc}") from None
            else:
                if first is None or last is None:
                    raise fail("--from and --to go together")
                try:
                    wanted = range_period(
                        parse_day("--from", first), parse_day("--to", last), channel or ()
                    )
                except ValueError as exc:
                    raise fail(f"--to: {exc}") from None
            if channel and wanted.channels != sorted(set(channel)):
                wanted = wanted.model_copy(update={"channels": sorted(set(channel))})
            board, _ = await LeaderboardReader(db).leaderboard(
                community, theme, wanted, limit=limit
            )
            return board

    try:
        board = asyncio.run(read())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    if output is OutputFormat.JSON:
        sys.stdout.write(json.dumps(board.model_dump(mode="json"), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(board))


@app.command("rebuild")
def rebuild_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
) -> None:
    """Score the community again from its stored analyzed messages (only the leaderboard
    collections are written): for a community imported before the service ran, or after
    changing the scoring."""
    require_community_id(community)
    settings = Settings()
    try:
        policy = scoring_policy(settings)
    except ValueError as exc:
        raise fail(str(exc)) from None
    started = time.monotonic()

    def progress(read: int) -> None:
        typer.echo(f"  {read} messages scored, {time.monotonic() - started:.0f}s", err=True)

    async def run() -> int:
        async with mongo_database(settings, app_name="pepite-cli", indexes=SCORES_INDEXES) as db:
            return await ScoreUpdater(ScoresRepository(db), policy).rebuild(
                community, progress=progress
            )

    try:
        read = asyncio.run(run())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    elapsed = time.monotonic() - started
    typer.echo(
        f"rebuilt the leaderboards of {community}: {read} messages in {elapsed:.1f}s", err=True
    )
