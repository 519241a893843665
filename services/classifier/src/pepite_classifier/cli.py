"""``pepite insights`` and ``pepite topics``: the insights report and its categories."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import date
from enum import StrEnum
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter
from pymongo.errors import PyMongoError

from pepite_classifier.rollups_repository import ROLLUP_INDEXES
from pepite_classifier.settings import Settings
from pepite_classifier.topics import (
    TOPIC_INDEXES,
    KeywordNamer,
    ReclusterBusyError,
    ReclusterResult,
    Topic,
    TopicClusterer,
    TopicNamer,
    TopicRepository,
    TopicSettings,
)
from pepite_contracts import AnalyzerName, MessageKind
from pepite_kit import Database
from pepite_kit.cli import fail, parse_day, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_reports.insights import (
    PENDING_NAME,
    Change,
    InsightsReport,
    InsightsService,
    KindLine,
    NoDataError,
)

T = TypeVar("T")

#: Categories shown under each kind in the table; JSON has them all.
TABLE_TOPICS = 10
#: How often ``topics rebuild`` looks again while another rebuild holds the community.
REBUILD_BUSY_POLL_S = 2.0
_BAR_WIDTH = 20


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


CommunityOption = Annotated[str, typer.Option("--community", "-c", help="Community id.")]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="A readable table, or JSON.")
]


def _run(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        async with mongo_database(
            settings, app_name="pepite-cli", indexes=[*ROLLUP_INDEXES, *TOPIC_INDEXES]
        ) as db:
            return await action(db)

    try:
        return asyncio.run(run())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    return parse_day("--until", value)


def _parse_kind(value: str | None) -> MessageKind | None:
    if value is None:
        return None
    try:
        return MessageKind(value.strip().lower().replace("-", "_"))
    except ValueError:
        kinds = ", ".join(kind.value for kind in MessageKind)
        raise fail(f"--kind: unknown kind {value!r}; use one of {kinds}") from None


def insights_command(  # noqa: PLR0917 - one parameter per command-line option
    community: CommunityOption,
    days: Annotated[
        int | None, typer.Option("--days", "-d", help="Window: the last N days.", min=1)
    ] = None,
    months: Annotated[
        int | None, typer.Option("--months", "-m", help="Window: the last N months.", min=1)
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Last day of the window, YYYY-MM-DD (UTC). Default: today, or the last day"
            " with analyzed messages if earlier (an imported archive)."
        ),
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel (its id).")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind, e.g. question, problem, feature_request.")
    ] = None,
    output: FormatOption = OutputFormat.TABLE,
) -> None:
    """Problems, questions, opportunities and satisfaction by category, with changes.

    Counts and shares of every kind of message and of each category within a kind, per
    channel and by sentiment, over the last N days (default 30) or months, against the
    window of the same length just before.
    """
    require_community_id(community)
    if days is not None and months is not None:
        raise fail("give --days or --months, not both")
    if days is None and months is None:
        days = 30
    until_day = _parse_day(until)
    wanted_kind = _parse_kind(kind)
    settings = Settings()

    async def build(db: Database) -> InsightsReport:
        return await InsightsService(db).report(
            community,
            days=days,
            months=months,
            until=until_day,
            channel_id=channel,
            kind=wanted_kind,
        )

    try:
        report = _run(settings, build)
    except (NoDataError, ValueError) as exc:
        raise fail(str(exc)) from None
    if output is OutputFormat.JSON:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(render_report(report))


def _count(value: int) -> str:
    return f"{value:,}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _change(change: Change, current: int) -> str:
    if change.percent is None:
        return "new" if current else "—"
    return f"{change.delta:+,} ({change.percent:+.1f}%)"


def _bar(share: float) -> str:
    filled = round(share / 100 * _BAR_WIDTH)
    return "█" * filled


def render_report(report: InsightsReport) -> str:
    """The report as aligned text tables, categories under each insight kind."""
    window, previous = report.window, report.previous_window
    filters = report.filters
    channel = (
        f"#{filters.channel_name or filters.channel_id} ({filters.channel_id})"
        if filters.channel_id
        else "all channels"
    )
    lines = [
        f"Insights of {report.community_id}: {window.label}, {window.start} → {window.end} (UTC)",
        f"compared with {previous.start} → {previous.end} · {channel}"
        + (f" · kind {filters.kind.value}" if filters.kind else ""),
        "",
        f"Messages analyzed  {_count(report.messages):>10}"
        f"  {_change(report.messages_change, report.messages)}",
        f"Insight messages   {_count(report.insights):>10}"
        f"  {_share(report.percent_insights)} of messages"
        f"  {_change(report.insights_change, report.insights)}",
        "",
    ]
    rows: list[tuple[str, ...]] = [
        ("KIND / CATEGORY", "COUNT", "% MSGS", "% INSIGHTS", "% KIND", "CHANGE")
    ]
    bars: list[str] = [""]
    for kind_line in report.kinds:
        rows.append(
            (
                kind_line.kind.value,
                _count(kind_line.count),
                _share(kind_line.percent_of_messages),
                _share(kind_line.percent_of_insights),
                "",
                _change(kind_line.change, kind_line.count),
            )
        )
        bars.append(_bar(kind_line.percent_of_messages))
        for label, count, share, change in _category_rows(kind_line):
            rows.append((f"  {label}", count, "", "", share, change))
            bars.append("")
    lines.extend(_table(rows, bars, right=(1, 2, 3, 4)))
    lines.append("")
    channel_rows: list[tuple[str, ...]] = [
        ("CHANNEL", "MESSAGES", "% MSGS", "CHANGE", "INSIGHTS", "% OF CHANNEL")
    ]
    if filters.kind is not None:
        channel_rows[0] = (*channel_rows[0][:4], filters.kind.value.upper(), "% OF CHANNEL")
    for line in report.channels:
        focus = line.kinds.get(filters.kind, 0) if filters.kind is not None else line.insights
        channel_rows.append(
            (
                f"#{line.name}",
                _count(line.messages),
                _share(line.percent_of_messages),
                _change(line.change, line.messages),
                _count(focus),
                _share(100.0 * focus / line.messages if line.messages else 0.0),
            )
        )
    lines.extend(_table(channel_rows, None, right=(1, 2, 4, 5)))
    lines.append("")
    sentiment_rows: list[tuple[str, ...]] = [("SENTIMENT", "COUNT", "% MSGS", "CHANGE")]
    sentiment_rows.extend(
        (
            line.sentiment.value,
            _count(line.count),
            _share(line.percent),
            _change(line.change, line.count),
        )
        for line in report.sentiments
    )
    lines.extend(_table(sentiment_rows, None, right=(1, 2)))
    return "\n".join(lines)


def _category_rows(kind_line: KindLine) -> list[tuple[str, str, str, str]]:
    rows = []
    shown = kind_line.topics[:TABLE_TOPICS]
    for topic in shown:
        name = topic.name if topic.topic_id is not None else f"({PENDING_NAME})"
        if topic.is_other:
            name = "(other)"
        rows.append(
            (
                name,
                _count(topic.count),
                _share(topic.percent_of_kind),
                _change(topic.change, topic.count),
            )
        )
    rest = kind_line.topics[TABLE_TOPICS:]
    if rest:
        count = sum(topic.count for topic in rest)
        share = sum(topic.percent_of_kind for topic in rest)
        rows.append((f"… {len(rest)} more categories", _count(count), _share(share), ""))
    return rows


def _table(
    rows: list[tuple[str, ...]], bars: list[str] | None, *, right: tuple[int, ...]
) -> list[str]:
    """Rows as aligned columns; ``right`` are the right-aligned (numeric) columns."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(widths[column]) if column in right else cell.ljust(widths[column])
            for column, cell in enumerate(row)
        ]
        text = "  ".join(cells)
        if bars is not None and bars[index]:
            text += "  " + bars[index]
        out.append(text.rstrip())
    return out


# ----- pepite topics -----

topics_app = typer.Typer(
    help="Insight categories (topics): list them, rebuild them.", no_args_is_help=True
)


def _topic_settings(settings: Settings) -> TopicSettings:
    # The service's Settings carries the topic settings once mixed in; until then the
    # same PEPITE_TOPIC_* variables are read on their own.
    return settings if isinstance(settings, TopicSettings) else TopicSettings()


@topics_app.command("rebuild")
def rebuild_command(
    community: CommunityOption,
    output: FormatOption = OutputFormat.TABLE,
    wait_s: Annotated[
        float,
        typer.Option(
            "--wait-s",
            min=0,
            help="How long to wait for a rebuild already running (the service's own) to end",
        ),
    ] = 600.0,
) -> None:
    """Recluster a community's insight messages into topics and rebuild its rollups.

    Known topics keep their ids (and names) when their messages still group together.
    """
    require_community_id(community)
    settings = Settings()
    started = time.perf_counter()

    def progress(step: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {step}", err=True)

    async def rebuild(db: Database) -> ReclusterResult:
        async with AsyncExitStack() as stack:
            namer = await _namer(settings, db, stack)
            clusterer = TopicClusterer(db, _topic_settings(settings), namer=namer)
            return await clusterer.recluster(community, progress=progress)

    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        try:
            result = _run(settings, rebuild)
            break
        except ReclusterBusyError as exc:
            if time.monotonic() >= deadline:
                raise fail(f"{exc}; try again when it is done") from None
            if not waiting:
                progress(f"{exc}; waiting for it to end")
                waiting = True
            time.sleep(REBUILD_BUSY_POLL_S)
    if result.messages == 0:
        raise fail(f"no insight messages with embeddings in community {community!r}")
    if output is OutputFormat.JSON:
        typer.echo(TypeAdapter(ReclusterResult).dump_json(result, indent=2).decode())
        return
    typer.echo(
        f"{result.topics} topics from {result.messages:,} insight messages"
        f" ({result.other:,} in other) in {result.duration_s:.1f}s:"
        f" {result.kept_topics} kept, {result.new_topics} new, {result.retired_topics} retired;"
        f" {result.reassigned:,} messages changed topic"
    )


async def _namer(settings: Settings, db: Database, stack: AsyncExitStack) -> TopicNamer:
    """The LLM namer when the service is set up for the OpenAI analyzer, else keywords."""
    if settings.analyzer is not AnalyzerName.OPENAI:
        return KeywordNamer()
    from pepite_classifier.analysis.llm.topic_namer import OpenAITopicNamer
    from pepite_classifier.analysis.llm_repository import LlmRepository
    from pepite_llm.errors import LlmConfigError

    try:
        namer = OpenAITopicNamer(settings, LlmRepository(db))
    except LlmConfigError as exc:
        raise fail(str(exc)) from None
    stack.push_async_callback(namer.aclose)
    return namer


@topics_app.command("list")
def list_command(
    community: CommunityOption,
    output: FormatOption = OutputFormat.TABLE,
    retired: Annotated[bool, typer.Option(help="Also list topics no longer found.")] = False,
) -> None:
    """List a community's topics, largest first, with their keywords."""
    require_community_id(community)
    settings = Settings()
    topics = _run(
        settings, lambda db: TopicRepository(db).topics(community, active_only=not retired)
    )
    if not topics:
        raise fail(
            f"no topics in community {community!r}; run `pepite topics rebuild -c {community}`"
        )
    if output is OutputFormat.JSON:
        typer.echo(TypeAdapter(list[Topic]).dump_json(topics, indent=2).decode())
        return
    typer.echo(render_topics(topics))


def render_topics(topics: list[Topic]) -> str:
    """Topics as an aligned table."""
    rows: list[tuple[str, ...]] = [("TOPIC", "NAME", "MESSAGES", "KINDS", "KEYWORDS")]
    for topic in topics:
        kinds = ", ".join(f"{kind.value} {count:,}" for kind, count in topic.kinds.items())
        rows.append(
            (
                topic.id,
                ("(other)" if topic.is_other else topic.name)
                + ("" if topic.active else " [retired]"),
                _count(topic.size),
                kinds,
                ", ".join(topic.keywords[:6]),
            )
        )
    return "\n".join(_table(rows, None, right=(2,)))


def main() -> None:  # pragma: no cover - a convenience for `python -m`
    typer.run(insights_command)
    sys.exit(0)
