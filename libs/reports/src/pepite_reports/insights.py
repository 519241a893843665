"""The insights report: what the community expressed over a window, by kind and category.

Every number comes from the daily rollups and the topics collection, never from the
messages, so a report over a year costs about as much as one over a week. Each count
comes with its share and its change against the previous window of the same length.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, computed_field

from pepite_contracts import INSIGHT_KINDS, MessageKind, Sentiment
from pepite_kit import Database
from pepite_reports.rollups import ActivityCount, KindCount, RollupReader, TopicSummary

#: Name shown for insight messages that no clustering has placed yet.
PENDING_NAME = "not yet categorized"


class NoDataError(LookupError):
    """Nothing was analyzed for the community (or channel) asked about."""


class Period(StrEnum):
    DAYS = "days"
    MONTHS = "months"


class Window(BaseModel):
    """A span of whole UTC days, both ends included."""

    start: date
    end: date
    length: int = Field(description="How many days or months the window spans.")
    period: Period

    @computed_field  # type: ignore[prop-decorator]
    @property
    def days(self) -> int:
        """Days in the window."""
        return (self.end - self.start).days + 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """E.g. ``last 30 days``."""
        unit = self.period.value if self.length != 1 else self.period.value.removesuffix("s")
        return f"last {self.length} {unit}"


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the end of shorter months."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def report_windows(
    until: date, *, days: int | None = None, months: int | None = None
) -> tuple[Window, Window]:
    """The window ending on ``until`` and the one of the same length just before it.

    Args:
        until: Last day of the window (included).
        days: Window length in days...
        months: ...or in calendar months (exactly one of the two).

    Raises:
        ValueError: neither or both lengths given, or a length below 1.
    """
    if (days is None) == (months is None):
        raise ValueError("give the window length in days or in months, not both")
    length = days if days is not None else months
    assert length is not None
    if length < 1:
        raise ValueError(f"the window length must be at least 1, not {length}")
    if days is not None:
        start = until - timedelta(days=days - 1)
        previous_end = start - timedelta(days=1)
        previous_start = previous_end - timedelta(days=days - 1)
        period = Period.DAYS
    else:
        start = add_months(until, -length) + timedelta(days=1)
        previous_end = start - timedelta(days=1)
        previous_start = add_months(until, -2 * length) + timedelta(days=1)
        period = Period.MONTHS
    return (
        Window(start=start, end=until, length=length, period=period),
        Window(start=previous_start, end=previous_end, length=length, period=period),
    )


class Change(BaseModel):
    """A count against the previous window's."""

    previous: int
    delta: int
    percent: float | None = Field(description="Relative change in %; null if previous was 0.")

    @classmethod
    def of(cls, current: int, previous: int) -> Change:
        return cls(
            previous=previous,
            delta=current - previous,
            percent=_percent(current - previous, previous) if previous else None,
        )


class TopicLine(BaseModel):
    """Messages of one kind in one category."""

    topic_id: str | None = Field(description="Null for messages not yet categorized.")
    name: str
    keywords: list[str] = Field(default_factory=list)
    is_other: bool = False
    count: int
    percent_of_kind: float
    change: Change


class KindLine(BaseModel):
    """Messages of one kind, and for insight kinds, their categories."""

    kind: MessageKind
    is_insight: bool
    count: int
    percent_of_messages: float
    percent_of_insights: float | None = Field(description="Null for kinds that are not insights.")
    change: Change
    topics: list[TopicLine] = Field(default_factory=list, description="Largest first.")


class ChannelLine(BaseModel):
    """One channel's share of the activity."""

    channel_id: str
    name: str
    messages: int
    percent_of_messages: float
    insights: int
    percent_insights: float = Field(
        description="Share of the channel's messages that are insights."
    )
    change: Change = Field(description="Change of the channel's messages.")
    kinds: dict[MessageKind, int] = Field(
        default_factory=dict, description="Messages per insight kind (or the kind filtered on)."
    )


class SentimentLine(BaseModel):
    sentiment: Sentiment
    count: int
    percent: float
    change: Change


class ReportFilters(BaseModel):
    channel_id: str | None = None
    channel_name: str | None = None
    kind: MessageKind | None = None


class InsightsReport(BaseModel):
    """Problems, questions, opportunities and satisfaction over a window, by category."""

    community_id: str
    window: Window
    previous_window: Window
    filters: ReportFilters
    messages: int = Field(description="Analyzed messages in the window (channel filter applied).")
    messages_change: Change
    insights: int = Field(description="Messages of an insight kind among them.")
    insights_change: Change
    percent_insights: float
    kinds: list[KindLine] = Field(description="Insight kinds first, each group largest first.")
    channels: list[ChannelLine] = Field(description="Most active first.")
    sentiments: list[SentimentLine]


@dataclass(frozen=True)
class WindowCounts:
    """What the rollups hold for one window."""

    kinds: list[KindCount]
    activity: list[ActivityCount]


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def compose_report(
    community_id: str,
    windows: tuple[Window, Window],
    counts: tuple[WindowCounts, WindowCounts],
    *,
    topics: dict[str, TopicSummary],
    channel_names: dict[str, str],
    channel_id: str | None = None,
    kind: MessageKind | None = None,
) -> InsightsReport:
    """Build the report from the counts of a window and of the one before (pure).

    Args:
        community_id: The community reported on.
        windows: The window and the previous one.
        counts: The rollups of each, already restricted to ``channel_id`` if given.
        topics: Topics by id, for names.
        channel_names: Channel display names by id.
        channel_id: The channel filter, if any (for the record in the report).
        kind: Only this kind in the kind lines and channel breakdowns.
    """
    current, previous = counts
    now_totals = _Totals.of(current)
    before_totals = _Totals.of(previous)
    kinds_shown = [kind] if kind is not None else list(MessageKind)
    kind_lines: list[KindLine] = []
    for shown in kinds_shown:
        count = now_totals.kinds.get(shown, 0)
        before = before_totals.kinds.get(shown, 0)
        if not count and not before and kind is None:
            continue
        is_insight = shown in INSIGHT_KINDS
        kind_lines.append(
            KindLine(
                kind=shown,
                is_insight=is_insight,
                count=count,
                percent_of_messages=_percent(count, now_totals.messages),
                percent_of_insights=_percent(count, now_totals.insights) if is_insight else None,
                change=Change.of(count, before),
                topics=_topic_lines(shown, now_totals, before_totals, topics) if is_insight else [],
            )
        )
    kind_lines.sort(key=lambda line: (not line.is_insight, -line.count, line.kind.value))
    channel_lines = []
    for channel in sorted(
        set(now_totals.channels) | set(before_totals.channels),
        key=lambda c: (-now_totals.channels.get(c, 0), c),
    ):
        messages = now_totals.channels.get(channel, 0)
        insights = now_totals.channel_insights.get(channel, 0)
        per_kind = now_totals.channel_kinds.get(channel, {})
        channel_lines.append(
            ChannelLine(
                channel_id=channel,
                name=channel_names.get(channel, channel),
                messages=messages,
                percent_of_messages=_percent(messages, now_totals.messages),
                insights=insights,
                percent_insights=_percent(insights, messages),
                change=Change.of(messages, before_totals.channels.get(channel, 0)),
                kinds={
                    k: n
                    for k, n in sorted(per_kind.items(), key=lambda item: -item[1])
                    if (k == kind if kind is not None else k in INSIGHT_KINDS)
                },
            )
        )
    sentiment_lines = [
        SentimentLine(
            sentiment=sentiment,
            count=now_totals.sentiments.get(sentiment, 0),
            percent=_percent(now_totals.sentiments.get(sentiment, 0), now_totals.messages),
            change=Change.of(
                now_totals.sentiments.get(sentiment, 0), before_totals.sentiments.get(sentiment, 0)
            ),
        )
        for sentiment in Sentiment
    ]
    window, previous_window = windows
    return InsightsReport(
        community_id=community_id,
        window=window,
        previous_window=previous_window,
        filters=ReportFilters(
            channel_id=channel_id,
            channel_name=channel_names.get(channel_id) if channel_id else None,
            kind=kind,
        ),
        messages=now_totals.messages,
        messages_change=Change.of(now_totals.messages, before_totals.messages),
        insights=now_totals.insights,
        insights_change=Change.of(now_totals.insights, before_totals.insights),
        percent_insights=_percent(now_totals.insights, now_totals.messages),
        kinds=kind_lines,
        channels=channel_lines,
        sentiments=sentiment_lines,
    )


def _topic_lines(
    kind: MessageKind, now: _Totals, before: _Totals, topics: dict[str, TopicSummary]
) -> list[TopicLine]:
    current = now.topics.get(kind, {})
    previous = before.topics.get(kind, {})
    total = now.kinds.get(kind, 0)
    lines = []
    for topic_id in set(current) | set(previous):
        topic = topics.get(topic_id) if topic_id else None
        count = current.get(topic_id, 0)
        lines.append(
            TopicLine(
                topic_id=topic_id,
                name=topic.name if topic else (PENDING_NAME if topic_id is None else topic_id),
                keywords=topic.keywords if topic else [],
                is_other=topic.is_other if topic else False,
                count=count,
                percent_of_kind=_percent(count, total),
                change=Change.of(count, previous.get(topic_id, 0)),
            )
        )
    # Real categories first, then "other", then what is not categorized yet.
    lines.sort(key=lambda line: (line.topic_id is None, line.is_other, -line.count, line.name))
    return lines


@dataclass
class _Totals:
    """One window's counts summed along each dimension a report shows."""

    messages: int
    insights: int
    kinds: dict[MessageKind, int]
    topics: dict[MessageKind, dict[str | None, int]]
    channels: dict[str, int]
    channel_insights: dict[str, int]
    channel_kinds: dict[str, dict[MessageKind, int]]
    sentiments: dict[Sentiment, int]

    @classmethod
    def of(cls, counts: WindowCounts) -> _Totals:
        kinds: dict[MessageKind, int] = defaultdict(int)
        topics: dict[MessageKind, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
        channel_insights: dict[str, int] = defaultdict(int)
        channel_kinds: dict[str, dict[MessageKind, int]] = defaultdict(lambda: defaultdict(int))
        for line in counts.kinds:
            kinds[line.kind] += line.count
            channel_kinds[line.channel_id][line.kind] += line.count
            if line.kind in INSIGHT_KINDS:
                topics[line.kind][line.topic_id] += line.count
                channel_insights[line.channel_id] += line.count
        channels: dict[str, int] = defaultdict(int)
        sentiments: dict[Sentiment, int] = defaultdict(int)
        for activity in counts.activity:
            channels[activity.channel_id] += activity.messages
            for sentiment, count in activity.sentiments.items():
                sentiments[sentiment] += count
        return cls(
            messages=sum(channels.values()),
            insights=sum(n for k, n in kinds.items() if k in INSIGHT_KINDS),
            kinds=dict(kinds),
            topics={k: dict(v) for k, v in topics.items()},
            channels=dict(channels),
            channel_insights=dict(channel_insights),
            channel_kinds={c: dict(v) for c, v in channel_kinds.items()},
            sentiments=dict(sentiments),
        )


class InsightsService:
    """Builds insights reports from the rollups; the API and the command line share it."""

    def __init__(self, db: Database) -> None:
        self._rollups = RollupReader(db)

    async def report(
        self,
        community_id: str,
        *,
        days: int | None = None,
        months: int | None = None,
        until: date | None = None,
        channel_id: str | None = None,
        kind: MessageKind | None = None,
        today: date | None = None,
    ) -> InsightsReport:
        """The report over the last ``days`` or ``months`` ending on ``until``.

        Args:
            community_id: The community.
            days: Window length in days...
            months: ...or in calendar months.
            until: Last day of the window (UTC, included). By default the last day with
                analyzed messages if that is before today (an imported archive), else today.
            channel_id: Only this channel.
            kind: Only this kind in kind lines and channel breakdowns.
            today: The current UTC day (for tests).

        Raises:
            ValueError: the window is not valid.
            NoDataError: nothing analyzed in the community, or in the channel.
        """
        latest = await self._rollups.latest_day(community_id, channel_id=channel_id)
        if latest is None:
            where = f"channel {channel_id!r} of " if channel_id else ""
            raise NoDataError(f"no analyzed messages in {where}community {community_id!r}")
        if until is None:
            until = min(today or datetime.now(UTC).date(), latest)
        windows = report_windows(until, days=days, months=months)
        counts = (
            await self._counts(community_id, windows[0], channel_id),
            await self._counts(community_id, windows[1], channel_id),
        )
        topic_ids = {line.topic_id for window in counts for line in window.kinds if line.topic_id}
        return compose_report(
            community_id,
            windows,
            counts,
            topics=await self._rollups.topics_by_id(community_id, topic_ids),
            channel_names=await self._rollups.channel_names(community_id),
            channel_id=channel_id,
            kind=kind,
        )

    async def _counts(
        self, community_id: str, window: Window, channel_id: str | None
    ) -> WindowCounts:
        return WindowCounts(
            kinds=await self._rollups.kind_counts(
                community_id, window.start, window.end, channel_id=channel_id
            ),
            activity=await self._rollups.activity_counts(
                community_id, window.start, window.end, channel_id=channel_id
            ),
        )
