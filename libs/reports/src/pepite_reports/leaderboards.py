"""Leaderboards: themes, periods, titles, and the read side shared by the API and the CLI.

The leaderboard service keeps three collections up to date as messages are analyzed:

- ``leaderboard_contributions``: what each message gave its author (and, for a thanked
  message, the bonus its author got), with the points before and after the daily cap
  and why; this is what a member reads to see how their score was made.
- ``leaderboard_daily``: per community, member, UTC day and channel, the points of each
  theme and the counts titles are measured on.
- ``leaderboard_monthly`` and ``leaderboard_seasonal``: the same per member and month,
  and per member and calendar quarter, all channels together.

Every query here reads rollups, never messages: a month or a season reads one document
per member and month or season; a custom event or a range that does not start and end on month
boundaries reads the daily rollups for the partial months (and only those). A month's
or a season's page is read in order from its theme's index; other periods are summed
and ranked in MongoDB, so only a page leaves it (:meth:`LeaderboardReader.ranking`).
Titles come from the member's totals up to the end of the period.
"""

from __future__ import annotations

import asyncio
import calendar
import heapq
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from pepite_kit import Database, IndexSpec

CONTRIBUTIONS = "leaderboard_contributions"
DAILY = "leaderboard_daily"
MONTHLY = "leaderboard_monthly"
SEASONAL = "leaderboard_seasonal"
TITLES = "leaderboard_titles"
EVENTS = "leaderboard_events"
#: Per community and month or season, the members with points on each theme.
COUNTS = "leaderboard_counts"
MEMBERS = "members"


#: A rank page is at most this long.
MAX_PAGE = 200
#: Most days whose index scans MongoDB merges in order (``internalQueryMaxScansToExplode``).
MAX_MERGED_DAYS = 200
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
SEASON_PATTERN = re.compile(r"^(\d{4})-Q([1-4])$")
EVENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Theme(StrEnum):
    """What a leaderboard rewards."""

    #: Answers to other members' questions, more when thanked or reacted to.
    HELPFULNESS = "helpfulness"
    #: Encouragement and gratitude towards other members.
    KINDNESS = "kindness"
    #: Resources shared (links, docs, tools).
    SHARING = "sharing"
    #: Wins reported: things that now work, goals reached.
    PROGRESS = "progress"
    #: Taking part at all: every message that counts.
    ACTIVITY = "activity"


LEADERBOARD_INDEXES = (
    # Recomputing a member's day, and explaining a member's score: with the period's days
    # listed, each day's keys are already in (at, _id) order and MongoDB merges them, so
    # a page of the messages behind a score stops at its end instead of sorting them all.
    IndexSpec(
        CONTRIBUTIONS,
        [("community_id", 1), ("member_id", 1), ("day", 1), ("at", 1), ("_id", 1)],
        "member_day",
    ),
    # Custom events and partial months.
    IndexSpec(DAILY, [("community_id", 1), ("day", 1), ("channel_id", 1)], "community_day"),
    # Recomputing a member's month from their days; erasure.
    IndexSpec(DAILY, [("community_id", 1), ("member_id", 1), ("month", 1)], "member_month"),
    # Months and seasons.
    IndexSpec(MONTHLY, [("community_id", 1), ("month", 1)], "community_month"),
    # Lifetime totals for titles.
    IndexSpec(MONTHLY, [("community_id", 1), ("member_id", 1), ("month", 1)], "member_month"),
    IndexSpec(EVENTS, [("community_id", 1), ("first", 1)], "community_first"),
    # Days of a range or an event on a theme, channels included, from the index alone.
    *(
        IndexSpec(
            DAILY,
            [
                ("community_id", 1),
                ("day", 1),
                (f"points.{theme.value}", -1),
                ("channel_id", 1),
                ("member_id", 1),
            ],
            f"day_{theme.value}",
        )
        for theme in Theme
    ),
    # A season's ranking on a theme read from the index alone (covered).
    *(
        IndexSpec(
            SEASONAL,
            [("community_id", 1), ("season", 1), (f"points.{theme.value}", -1), ("member_id", 1)],
            f"season_{theme.value}",
        )
        for theme in Theme
    ),
    IndexSpec(SEASONAL, [("community_id", 1), ("member_id", 1), ("season", 1)], "member_season"),
    # A month's ranking on a theme read from the index alone (covered).
    *(
        IndexSpec(
            MONTHLY,
            [("community_id", 1), ("month", 1), (f"points.{theme.value}", -1), ("member_id", 1)],
            f"month_{theme.value}",
        )
        for theme in Theme
    ),
)


class Metric(StrEnum):
    """Counts titles are measured on; ``points`` is the title's theme's points."""

    POINTS = "points"
    MESSAGES = "messages"
    ANSWERS = "answers"
    ACCEPTED_ANSWERS = "accepted_answers"
    THANKS_RECEIVED = "thanks_received"
    REACTIONS_RECEIVED = "reactions_received"
    ENCOURAGEMENTS = "encouragements"
    THANKS_GIVEN = "thanks_given"
    RESOURCES = "resources"
    WINS = "wins"


#: The theme each count belongs to: a message's counts only go into the totals when its
#: points on that theme counted (a burst past the daily cap earns no title either).
METRIC_THEMES: dict[Metric, Theme] = {
    Metric.MESSAGES: Theme.ACTIVITY,
    Metric.ANSWERS: Theme.HELPFULNESS,
    Metric.ACCEPTED_ANSWERS: Theme.HELPFULNESS,
    Metric.THANKS_RECEIVED: Theme.HELPFULNESS,
    Metric.REACTIONS_RECEIVED: Theme.HELPFULNESS,
    Metric.ENCOURAGEMENTS: Theme.KINDNESS,
    Metric.THANKS_GIVEN: Theme.KINDNESS,
    Metric.RESOURCES: Theme.SHARING,
    Metric.WINS: Theme.PROGRESS,
}


class TitleRule(BaseModel):
    """A title a member holds once ``metric`` reaches ``threshold`` (totals to date)."""

    title_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=200)
    theme: Theme
    metric: Metric = Field(description="What is counted; 'points' is the theme's points.")
    threshold: int = Field(ge=1, le=10_000_000)


DEFAULT_TITLES: tuple[TitleRule, ...] = (
    TitleRule(
        title_id="helping-hand",
        name="Helping hand",
        description="Answered a first question of another member.",
        theme=Theme.HELPFULNESS,
        metric=Metric.ANSWERS,
        threshold=1,
    ),
    TitleRule(
        title_id="sage",
        name="Sage",
        description="10 answers accepted (thanked by another member).",
        theme=Theme.HELPFULNESS,
        metric=Metric.ACCEPTED_ANSWERS,
        threshold=10,
    ),
    TitleRule(
        title_id="cheerleader",
        name="Cheerleader",
        description="10 encouragements given.",
        theme=Theme.KINDNESS,
        metric=Metric.ENCOURAGEMENTS,
        threshold=10,
    ),
    TitleRule(
        title_id="grateful-heart",
        name="Grateful heart",
        description="Thanked other members 10 times.",
        theme=Theme.KINDNESS,
        metric=Metric.THANKS_GIVEN,
        threshold=10,
    ),
    TitleRule(
        title_id="librarian",
        name="Librarian",
        description="10 resources shared.",
        theme=Theme.SHARING,
        metric=Metric.RESOURCES,
        threshold=10,
    ),
    TitleRule(
        title_id="achiever",
        name="Achiever",
        description="5 wins reported.",
        theme=Theme.PROGRESS,
        metric=Metric.WINS,
        threshold=5,
    ),
    TitleRule(
        title_id="regular",
        name="Regular",
        description="100 messages that count.",
        theme=Theme.ACTIVITY,
        metric=Metric.MESSAGES,
        threshold=100,
    ),
)


class TitleSet(BaseModel):
    """A community's titles: the defaults until an admin sets its own."""

    titles: list[TitleRule] = Field(max_length=100)
    is_default: bool = True
    updated_at: datetime | None = None

    @field_validator("titles")
    @classmethod
    def _unique_ids(cls, titles: list[TitleRule]) -> list[TitleRule]:
        seen: set[str] = set()
        for rule in titles:
            if rule.title_id in seen:
                raise ValueError(f"title_id {rule.title_id!r} is given twice")
            seen.add(rule.title_id)
        return titles


class PeriodKind(StrEnum):
    MONTH = "month"
    SEASON = "season"
    RANGE = "range"
    EVENT = "event"


class Period(BaseModel):
    """Whole UTC days, both ends included, optionally limited to some channels."""

    kind: PeriodKind
    label: str = Field(description="E.g. 2024-05, 2024-Q2, 2024-05-01..2024-05-14 or the event id.")
    first: date
    last: date
    channels: list[str] = Field(default_factory=list, description="Empty: every channel.")


class LeaderboardEvent(BaseModel):
    """A custom event a community runs: a date range and, optionally, some channels."""

    event_id: str = Field(pattern=EVENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    first: date
    last: date
    channels: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _ordered(self) -> LeaderboardEvent:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is before first ({self.first})")
        if (self.last - self.first).days > 366:
            raise ValueError("an event lasts at most 366 days")
        return self

    def period(self) -> Period:
        return Period(
            kind=PeriodKind.EVENT,
            label=self.event_id,
            first=self.first,
            last=self.last,
            channels=sorted(set(self.channels)),
        )


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def season_label(day: date) -> str:
    return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


def month_period(label: str) -> Period:
    """``2024-05``: that calendar month.

    Raises:
        ValueError: not a month like 2024-05.
    """
    match = MONTH_PATTERN.match(label)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{label!r} is not a month like 2024-05")
    year, month = int(match.group(1)), int(match.group(2))
    last = calendar.monthrange(year, month)[1]
    return Period(
        kind=PeriodKind.MONTH, label=label, first=date(year, month, 1), last=date(year, month, last)
    )


def season_period(label: str) -> Period:
    """``2024-Q2``: that calendar quarter.

    Raises:
        ValueError: not a season like 2024-Q2.
    """
    match = SEASON_PATTERN.match(label)
    if not match:
        raise ValueError(f"{label!r} is not a season like 2024-Q2")
    year, quarter = int(match.group(1)), int(match.group(2))
    first_month = 3 * (quarter - 1) + 1
    last = calendar.monthrange(year, first_month + 2)[1]
    return Period(
        kind=PeriodKind.SEASON,
        label=label,
        first=date(year, first_month, 1),
        last=date(year, first_month + 2, last),
    )


def named_period(label: str) -> Period:
    """A month (``2024-05``) or a season (``2024-Q2``).

    Raises:
        ValueError: neither.
    """
    if SEASON_PATTERN.match(label):
        return season_period(label)
    if MONTH_PATTERN.match(label):
        return month_period(label)
    raise ValueError(f"{label!r} is neither a month like 2024-05 nor a season like 2024-Q2")


def range_period(first: date, last: date, channels: Iterable[str] = ()) -> Period:
    """Any days, optionally limited to channels.

    Raises:
        ValueError: ``last`` before ``first``, or more than 366 days.
    """
    if last < first:
        raise ValueError(f"to ({last}) is before from ({first})")
    if (last - first).days > 366:
        raise ValueError("a range covers at most 366 days")
    return Period(
        kind=PeriodKind.RANGE,
        label=f"{first.isoformat()}..{last.isoformat()}",
        first=first,
        last=last,
        channels=sorted(set(channels)),
    )


@dataclass(frozen=True)
class RollupPlan:
    """Which rollups answer a period: whole seasons from the seasonal ones, other whole
    months from the monthly ones, other days from the daily ones."""

    months: tuple[str, ...]
    day_ranges: tuple[tuple[date, date], ...]
    seasons: tuple[str, ...] = ()


def plan_rollups(period: Period) -> RollupPlan:
    """Split a period into whole months and leftover day ranges.

    A channel filter needs the daily rollups (the monthly ones do not split channels).
    """
    if period.channels:
        return RollupPlan((), ((period.first, period.last),))
    months: list[str] = []
    ranges: list[tuple[date, date]] = []
    day = period.first
    while day <= period.last:
        month_end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        end = min(month_end, period.last)
        if day.day == 1 and end == month_end:
            months.append(month_label(day))
        elif ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((day, end))
        day = end + timedelta(days=1)
    by_season: dict[str, list[str]] = defaultdict(list)
    for month in months:
        by_season[season_label(date.fromisoformat(month + "-01"))].append(month)
    seasons = tuple(label for label, within in by_season.items() if len(within) == 3)
    rest = tuple(m for m in months if season_label(date.fromisoformat(m + "-01")) not in seasons)
    return RollupPlan(rest, tuple(ranges), seasons)


class EarnedTitle(BaseModel):
    title_id: str
    name: str
    description: str
    theme: Theme


class LeaderboardEntry(BaseModel):
    rank: int = Field(description="1 for the first; members with the same points share a rank.")
    member_id: str
    name: str
    points: float
    titles: list[EarnedTitle] = Field(default_factory=list)


class Leaderboard(BaseModel):
    """One page of a theme's ranking over a period."""

    community_id: str
    theme: Theme
    period: Period
    members: int = Field(description="Members with points on this theme in the period.")
    entries: list[LeaderboardEntry]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page.")


class ContributionItem(BaseModel):
    """One message behind a member's score, and what it gave."""

    contribution_id: str
    message_id: str
    source: str = Field(description="'message' (the member's own) or 'thanks' (others thanked it).")
    kind: str
    channel_id: str
    at: datetime
    points: float = Field(description="Points on this theme before the daily cap.")
    counted: float = Field(description="Points that count, after the daily cap.")
    reason: str = Field(description="Why it gives these points, or why nothing.")
    thanked_by: int = Field(default=0, description="Members who thanked this message.")


class Standing(BaseModel):
    """Where a member stands on a theme over a period, and why."""

    community_id: str
    member_id: str
    name: str
    theme: Theme
    period: Period
    rank: int | None = Field(description="Null without points on this theme in the period.")
    members: int
    points: float
    metrics: dict[str, int]
    titles: list[EarnedTitle]
    contributions: list[ContributionItem]
    next_cursor: str | None = None


def competition_ranks(scores: Sequence[tuple[str, float]]) -> list[tuple[int, str, float]]:
    """``1, 2, 2, 4`` ranks of ``(member, points)`` sorted best first (ties share a rank)."""
    ranked: list[tuple[int, str, float]] = []
    previous: float | None = None
    rank = 0
    for position, (member_id, points) in enumerate(scores, start=1):
        if previous is None or points != previous:
            rank = position
            previous = points
        ranked.append((rank, member_id, points))
    return ranked


def reached_titles(
    rules: Sequence[TitleRule], points: Mapping[str, float], metrics: Mapping[str, int]
) -> list[EarnedTitle]:
    """The titles whose threshold the totals reach."""
    earned: list[EarnedTitle] = []
    for rule in rules:
        value = (
            points.get(rule.theme.value, 0.0)
            if rule.metric is Metric.POINTS
            else metrics.get(rule.metric.value, 0)
        )
        if value >= rule.threshold:
            earned.append(
                EarnedTitle(
                    title_id=rule.title_id,
                    name=rule.name,
                    description=rule.description,
                    theme=rule.theme,
                )
            )
    return earned


def _day(value: date) -> str:
    return value.isoformat()


def _round(value: float) -> float:
    return round(value, 2)


class LeaderboardConfigRepository:
    """A community's titles and custom events (the API writes them; everyone reads)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def titles(self, community_id: str) -> TitleSet:
        doc = await self._db[TITLES].find_one({"_id": community_id})
        if doc is None:
            return TitleSet(titles=list(DEFAULT_TITLES))
        return TitleSet(
            titles=[TitleRule.model_validate(t) for t in doc["titles"]],
            is_default=False,
            updated_at=doc.get("updated_at"),
        )

    async def set_titles(self, community_id: str, titles: Sequence[TitleRule]) -> TitleSet:
        now = datetime.now(UTC)
        await self._db[TITLES].update_one(
            {"_id": community_id},
            {
                "$set": {
                    "community_id": community_id,
                    "titles": [t.model_dump(mode="json") for t in titles],
                    "updated_at": now,
                }
            },
            upsert=True,
        )
        return TitleSet(titles=list(titles), is_default=False, updated_at=now)

    async def reset_titles(self, community_id: str) -> TitleSet:
        await self._db[TITLES].delete_one({"_id": community_id})
        return TitleSet(titles=list(DEFAULT_TITLES))

    async def events(self, community_id: str) -> list[LeaderboardEvent]:
        cursor = self._db[EVENTS].find({"community_id": community_id}).sort("first", -1)
        return [_event(doc) async for doc in cursor]

    async def event(self, community_id: str, event_id: str) -> LeaderboardEvent | None:
        doc = await self._db[EVENTS].find_one({"_id": f"{community_id}|{event_id}"})
        return _event(doc) if doc else None

    async def put_event(self, community_id: str, event: LeaderboardEvent) -> LeaderboardEvent:
        await self._db[EVENTS].update_one(
            {"_id": f"{community_id}|{event.event_id}"},
            {
                "$set": {
                    "community_id": community_id,
                    "event_id": event.event_id,
                    "name": event.name,
                    "first": _day(event.first),
                    "last": _day(event.last),
                    "channels": sorted(set(event.channels)),
                    "updated_at": datetime.now(UTC),
                }
            },
            upsert=True,
        )
        return event

    async def delete_event(self, community_id: str, event_id: str) -> bool:
        result = await self._db[EVENTS].delete_one({"_id": f"{community_id}|{event_id}"})
        return result.deleted_count == 1


def _event(doc: Mapping[str, Any]) -> LeaderboardEvent:
    return LeaderboardEvent(
        event_id=doc["event_id"],
        name=doc["name"],
        first=date.fromisoformat(doc["first"]),
        last=date.fromisoformat(doc["last"]),
        channels=list(doc.get("channels") or []),
    )


@dataclass(frozen=True)
class RollupPart:
    """One aggregation of a period's points: a collection, its filter and its index."""

    collection: str
    match: dict[str, Any]
    hint: str
    #: The one month or season the part reads, when it reads one: its index is then
    #: the ranking itself (one document per member).
    label: str | None = None


def rollup_parts(community_id: str, theme: Theme, period: Period) -> list[RollupPart]:
    """The rollups a period's points on ``theme`` are read from, each through the index
    on that theme's points (a covered read: the documents themselves are not fetched)."""
    plan = plan_rollups(period)
    points = {f"points.{theme.value}": {"$gt": 0}}
    parts: list[RollupPart] = []
    if plan.seasons:
        seasons: Any = plan.seasons[0] if len(plan.seasons) == 1 else {"$in": list(plan.seasons)}
        parts.append(
            RollupPart(
                SEASONAL,
                {"community_id": community_id, "season": seasons, **points},
                f"season_{theme.value}",
                seasons if isinstance(seasons, str) else None,
            )
        )
    if plan.months:
        months: Any = plan.months[0] if len(plan.months) == 1 else {"$in": list(plan.months)}
        parts.append(
            RollupPart(
                MONTHLY,
                {"community_id": community_id, "month": months, **points},
                f"month_{theme.value}",
                months if isinstance(months, str) else None,
            )
        )
    for first, last in plan.day_ranges:
        match: dict[str, Any] = {
            "community_id": community_id,
            "day": {"$gte": _day(first), "$lte": _day(last)},
        }
        if period.channels:
            match["channel_id"] = {"$in": period.channels}
        parts.append(RollupPart(DAILY, {**match, **points}, f"day_{theme.value}"))
    return parts


def counts_id(community_id: str, label: str) -> str:
    """The id of a month's or a season's member counts (``2024-05``, ``2024-Q2``)."""
    return f"{community_id}|{label}"


def _ranked_page(
    page: Sequence[tuple[str, float]], above: int, offset: int
) -> list[tuple[int, str, float]]:
    """Competition ranks of a page of a ranking whose first entry has ``above`` members
    with more points (the page's order is the ranking's)."""
    ranked: list[tuple[int, str, float]] = []
    for position, (member_id, points) in enumerate(page):
        if not ranked:
            rank = above + 1
        elif points != ranked[-1][2]:
            rank = offset + position + 1
        else:
            rank = ranked[-1][0]
        ranked.append((rank, member_id, points))
    return ranked


class LeaderboardReader:
    """Rankings, standings and explanations from the rollups."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def scores(
        self, community_id: str, theme: Theme, period: Period
    ) -> list[tuple[str, float]]:
        """Every member with points on ``theme`` in ``period``, best first (then by id)."""
        totals = await self._totals(community_id, theme, period)
        return sorted(
            ((member, _round(points)) for member, points in totals.items() if points > 0),
            key=lambda item: (-item[1], item[0]),
        )

    async def _totals(self, community_id: str, theme: Theme, period: Period) -> dict[str, float]:
        """Each member's points on ``theme`` in ``period``, summed over the rollups the
        period is made of; the parts are read at once."""
        field = f"$points.{theme.value}"
        totals: dict[str, float] = defaultdict(float)

        async def read(part: RollupPart) -> list[tuple[str, float]]:
            cursor = await self._db[part.collection].aggregate(
                [{"$match": part.match}, {"$group": {"_id": "$member_id", "p": {"$sum": field}}}],
                hint=part.hint,
            )
            return [(doc["_id"], doc["p"]) async for doc in cursor]

        parts = rollup_parts(community_id, theme, period)
        # Summed in the order of the parts, whichever answers first: the same floats.
        for found in await asyncio.gather(*(read(part) for part in parts)):
            for member_id, points in found:
                totals[member_id] += points
        return totals

    async def ranking(
        self, community_id: str, theme: Theme, period: Period, *, limit: int, offset: int = 0
    ) -> tuple[list[tuple[int, str, float]], int]:
        """A page of :meth:`scores` with competition ranks, and how many members are ranked.

        A month or a season is one rollup document per member, ranked by an index on
        (community, period, theme's points, member): the page is read from the index in
        order and the members ranked are read from their count, so nothing is sorted and
        only the page leaves MongoDB. Days alone (an event, channels) are summed, ranked
        and paged in MongoDB (:meth:`_summed`); several parts are summed side by side.
        """
        parts = rollup_parts(community_id, theme, period)
        if len(parts) == 1 and parts[0].label is not None:
            return await self._indexed_ranking(parts[0], theme, limit=limit, offset=offset)
        if len(parts) > 1:
            # Several parts (days, a month, days): each is summed per member on its own
            # index at once (MongoDB runs them side by side, a pipeline of them would run
            # one after the other), then only the page is sorted here.
            totals = await self._totals(community_id, theme, period)
            positive = [(m, _round(points)) for m, points in totals.items() if points > 0]
            best = heapq.nsmallest(offset + limit, positive, key=lambda item: (-item[1], item[0]))
            chosen = best[offset:]
            above = sum(1 for _, points in positive if chosen and points > chosen[0][1])
            return _ranked_page(chosen, above, offset), len(positive)
        page: list[dict[str, Any]] = [
            {"$sort": {"p": -1, "_id": 1}},
            {"$skip": offset},
            {"$limit": limit},
        ]
        found = await self._summed(parts[0], theme, {"members": [{"$count": "n"}], "page": page})
        members = found["members"][0]["n"] if found["members"] else 0
        return [(doc["rank"], doc["_id"], doc["p"]) for doc in found["page"]], members

    async def _summed(
        self, part: RollupPart, theme: Theme, facets: dict[str, list[dict[str, Any]]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Sum each member's points over one part and rank them in MongoDB: only what
        ``facets`` keep of the ranked members (``_id``, ``p``, ``rank``) comes back.

        Ranked as :meth:`scores` ranks them: on the points rounded to two decimals, the
        members with points only, competition ranks.
        """
        field = f"points.{theme.value}"
        pipeline: list[dict[str, Any]] = [
            {"$match": part.match},
            {"$group": {"_id": "$member_id", "raw": {"$sum": f"${field}"}}},
            {"$match": {"raw": {"$gt": 0}}},
            {"$set": {"p": {"$round": ["$raw", 2]}}},
            {"$setWindowFields": {"sortBy": {"p": -1}, "output": {"rank": {"$rank": {}}}}},
            {"$facet": facets},
        ]
        cursor = await self._db[part.collection].aggregate(pipeline, hint=part.hint)
        result: dict[str, list[dict[str, Any]]] = await anext(aiter(cursor))
        return result

    async def _indexed_ranking(
        self, part: RollupPart, theme: Theme, *, limit: int, offset: int
    ) -> tuple[list[tuple[int, str, float]], int]:
        field = f"points.{theme.value}"
        collection = self._db[part.collection]
        cursor = (
            collection.find(part.match, {"_id": 0, "member_id": 1, field: 1})
            .sort([(field, -1), ("member_id", 1)])
            .skip(offset)
            .limit(limit)
            .hint(part.hint)
        )

        async def page() -> list[tuple[str, float]]:
            return [(doc["member_id"], doc["points"][theme.value]) async for doc in cursor]

        found, members = await asyncio.gather(page(), self._members(part, theme))
        above = 0
        if found and offset:
            above = await self._count(part, {**part.match, field: {"$gt": found[0][1]}})
        rounded = [(member, _round(points)) for member, points in found]
        return _ranked_page(rounded, above, offset), members

    async def _members(self, part: RollupPart, theme: Theme) -> int:
        """Members ranked on a month or a season: counted by the scores service as it
        writes the rollups, else (rollups written before it counted) counted here."""
        stored = await self._db[COUNTS].find_one(
            {"_id": counts_id(part.match["community_id"], str(part.label))},
            {f"members.{theme.value}": 1},
        )
        if stored is not None:
            return int((stored.get("members") or {}).get(theme.value, 0))
        return await self._count(part, part.match)

    async def _count(self, part: RollupPart, match: Mapping[str, Any]) -> int:
        """Documents matching ``match``, counted on the part's index alone (``count``
        runs a COUNT_SCAN directly, without the aggregation ``count_documents`` runs)."""
        reply = await self._db.command(
            {"count": part.collection, "query": dict(match), "hint": part.hint}
        )
        return int(reply["n"])

    async def rank_of(
        self, community_id: str, member_id: str, theme: Theme, period: Period
    ) -> tuple[int | None, float, int]:
        """The member's rank (``None`` without points), points, and members ranked."""
        parts = rollup_parts(community_id, theme, period)
        if len(parts) == 1 and parts[0].label is not None:
            part = parts[0]
            field = f"points.{theme.value}"
            collection = self._db[part.collection]
            own, members = await asyncio.gather(
                collection.find_one({**part.match, "member_id": member_id}, {field: 1}),
                self._members(part, theme),
            )
            if own is None:
                return None, 0.0, members
            mine = own["points"][theme.value]
            above = await self._count(part, {**part.match, field: {"$gt": mine}})
            return above + 1, _round(mine), members
        if len(parts) > 1:
            totals = await self._totals(community_id, theme, period)
            ranked = [_round(points) for points in totals.values() if points > 0]
            if totals.get(member_id, 0.0) <= 0:
                return None, 0.0, len(ranked)
            mine = _round(totals[member_id])
            return 1 + sum(1 for points in ranked if points > mine), mine, len(ranked)
        found = await self._summed(
            parts[0], theme, {"members": [{"$count": "n"}], "me": [{"$match": {"_id": member_id}}]}
        )
        members = found["members"][0]["n"] if found["members"] else 0
        if not found["me"]:
            return None, 0.0, members
        return found["me"][0]["rank"], found["me"][0]["p"], members

    async def leaderboard(
        self,
        community_id: str,
        theme: Theme,
        period: Period,
        *,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[Leaderboard, bool]:
        """A page of the ranking; the flag says whether more entries follow."""
        page, ranked = await self.ranking(community_id, theme, period, limit=limit, offset=offset)
        members = [member_id for _, member_id, _ in page]
        names, titles = await asyncio.gather(
            self.names(community_id, members), self.titles(community_id, members, period.last)
        )
        entries = [
            LeaderboardEntry(
                rank=rank,
                member_id=member_id,
                name=names.get(member_id, member_id),
                points=points,
                titles=titles.get(member_id, []),
            )
            for rank, member_id, points in page
        ]
        board = Leaderboard(
            community_id=community_id,
            theme=theme,
            period=period,
            members=ranked,
            entries=entries,
        )
        return board, offset + limit < ranked

    async def names(self, community_id: str, member_ids: Sequence[str]) -> dict[str, str]:
        if not member_ids:
            return {}
        cursor = self._db[MEMBERS].find(
            {"_id": {"$in": list(member_ids)}, "community_id": community_id},
            {"name": 1, "display_name": 1},
        )
        return {
            doc["_id"]: str(doc.get("display_name") or doc.get("name") or doc["_id"])
            async for doc in cursor
        }

    async def totals(
        self, community_id: str, member_ids: Sequence[str], until: date
    ) -> dict[str, tuple[dict[str, float], dict[str, int]]]:
        """Each member's points per theme and counts, from their first month to ``until``'s.

        The month of ``until`` is counted whole: titles are about what a member has done,
        and a few days past the end of a period do not change that meaningfully.
        """
        if not member_ids:
            return {}
        cursor = self._db[MONTHLY].find(
            {
                "community_id": community_id,
                "member_id": {"$in": list(member_ids)},
                "month": {"$lte": month_label(until)},
            },
            {"member_id": 1, "points": 1, "metrics": 1},
        )
        sums: dict[str, tuple[dict[str, float], dict[str, int]]] = {}
        async for doc in cursor:
            points, metrics = sums.setdefault(doc["member_id"], ({}, {}))
            for key, value in (doc.get("points") or {}).items():
                points[key] = points.get(key, 0.0) + float(value)
            for key, count in (doc.get("metrics") or {}).items():
                metrics[key] = metrics.get(key, 0) + int(count)
        return sums

    async def titles(
        self, community_id: str, member_ids: Sequence[str], until: date
    ) -> dict[str, list[EarnedTitle]]:
        """The titles each member holds as of ``until``."""
        title_set, totals = await asyncio.gather(
            LeaderboardConfigRepository(self._db).titles(community_id),
            self.totals(community_id, member_ids, until),
        )
        return {
            member_id: reached_titles(title_set.titles, points, metrics)
            for member_id, (points, metrics) in totals.items()
        }

    async def period_metrics(
        self, community_id: str, member_id: str, period: Period
    ) -> dict[str, int]:
        """The member's counts within the period itself."""
        plan = plan_rollups(period)
        metrics: dict[str, int] = defaultdict(int)
        queries: list[tuple[str, dict[str, Any]]] = []
        if plan.seasons:
            queries.append(
                (
                    SEASONAL,
                    {
                        "community_id": community_id,
                        "member_id": member_id,
                        "season": {"$in": list(plan.seasons)},
                    },
                )
            )
        if plan.months:
            queries.append(
                (
                    MONTHLY,
                    {
                        "community_id": community_id,
                        "member_id": member_id,
                        "month": {"$in": list(plan.months)},
                    },
                )
            )
        for first, last in plan.day_ranges:
            query: dict[str, Any] = {
                "community_id": community_id,
                "member_id": member_id,
                "day": {"$gte": _day(first), "$lte": _day(last)},
            }
            if period.channels:
                query["channel_id"] = {"$in": period.channels}
            queries.append((DAILY, query))
        for collection, query in queries:
            async for doc in self._db[collection].find(query, {"metrics": 1}):
                for key, count in (doc.get("metrics") or {}).items():
                    metrics[key] += int(count)
        return dict(metrics)

    async def contributions(
        self,
        community_id: str,
        member_id: str,
        theme: Theme,
        period: Period,
        *,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
    ) -> list[ContributionItem]:
        """The messages behind the member's points on ``theme``, oldest first: those that
        gave points, and those that gave nothing with the reason (self-reply, flagged…)."""
        days = (period.last - period.first).days + 1
        query: dict[str, Any] = {
            "community_id": community_id,
            "member_id": member_id,
            # Days listed one by one (up to MongoDB's limit of merged scans) give a merge
            # of ordered index scans; a range would need every message read and sorted.
            "day": {"$in": [_day(period.first + timedelta(days=n)) for n in range(days)]}
            if days <= MAX_MERGED_DAYS
            else {"$gte": _day(period.first), "$lte": _day(period.last)},
            "$or": [{f"points.{theme.value}": {"$gt": 0}}, {"excluded": {"$type": "string"}}],
        }
        if period.channels:
            query["channel_id"] = {"$in": period.channels}
        if after is not None:
            at, contribution_id = after
            # The bound on ``at`` skips the earlier pages' keys in every day's scan.
            query["at"] = {"$gte": at}
            query["$and"] = [
                {"$or": [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": contribution_id}}]}
            ]
        cursor = self._db[CONTRIBUTIONS].find(query).sort([("at", 1), ("_id", 1)]).limit(limit)
        items: list[ContributionItem] = []
        async for doc in cursor:
            points = doc.get("points") or {}
            counted = doc.get("counted") or {}
            items.append(
                ContributionItem(
                    contribution_id=doc["_id"],
                    message_id=doc["message_id"],
                    source=doc.get("source", "message"),
                    kind=doc.get("kind", ""),
                    channel_id=doc.get("channel_id", ""),
                    at=doc["at"],
                    points=_round(float(points.get(theme.value, 0.0))),
                    counted=_round(float(counted.get(theme.value, 0.0))),
                    reason=doc.get("excluded") or doc.get("reason", ""),
                    thanked_by=len({t["member_id"] for t in doc.get("thanks") or []}),
                )
            )
        return items

    async def standing(
        self,
        community_id: str,
        member_id: str,
        theme: Theme,
        period: Period,
        *,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
    ) -> tuple[Standing, bool]:
        """The member's rank, points, counts, titles and a page of the messages behind
        them; the flag says whether more messages follow."""
        (rank, points, members), items, names, titles, metrics = await asyncio.gather(
            self.rank_of(community_id, member_id, theme, period),
            self.contributions(
                community_id, member_id, theme, period, limit=limit + 1, after=after
            ),
            self.names(community_id, [member_id]),
            self.titles(community_id, [member_id], period.last),
            self.period_metrics(community_id, member_id, period),
        )
        more = len(items) > limit
        items = items[:limit]
        standing = Standing(
            community_id=community_id,
            member_id=member_id,
            name=names.get(member_id, member_id),
            theme=theme,
            period=period,
            rank=rank,
            members=members,
            points=points,
            metrics=metrics,
            titles=titles.get(member_id, []),
            contributions=items,
        )
        return standing, more
