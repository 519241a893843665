"""Community health KPIs, read from the rollups the leaderboard service maintains.

The leaderboard service writes the ``kpi_*`` collections from ``message.analyzed`` and
``members.events``; the API and the command line read them here, so their shapes and
document ids are known in one place on both sides.

What is stored (see docs/kpis.md for the whole picture):

- ``kpi_activity``: one document per (community, UTC day or calendar month, channel or
  the whole community) with the number of members' messages, the messages of each active
  member (``members.<member number>``) and, for days, their number (``active``) and
  the messages of each UTC hour.
  Member numbers are small per-community integers: no member id is kept in counters.
- ``kpi_members``: one document per member with its number, when it joined (its
  ``member.joined`` or its first message, whichever is earlier) and first message.
- ``kpi_questions``: one document per members' question with its first response.
- ``kpi_responses``: per (community, UTC day or calendar month, channel or all) the
  questions asked and a histogram of their first-response times in fixed logarithmic
  buckets (``n.<bucket>``: answered questions, ``ms.<bucket>``: their summed waits in
  milliseconds), so a year's median and 90th percentile merge 12 month histograms
  instead of reading every question.
- ``kpi_joins``: one document per (community, calendar month) listing the numbers of the
  members who joined then (cohorts, new members over whole months); new members on a
  period's leftover days are read from ``kpi_members`` through a covering index.

Days are UTC days (like the insights report); the weekday-hour heatmap is given in the
community's time zone, exactly, since hours are stored as UTC hours of each day.
Bots are left out of every figure: their messages are not counted and never respond.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from pepite_kit import Database

#: Members' messages per (community, day or month, channel or all): see the module doc.
KPI_ACTIVITY = "kpi_activity"
#: One document per member of a community: number, joined, first message.
KPI_MEMBERS = "kpi_members"
#: The next member number of each community.
KPI_COUNTERS = "kpi_counters"
#: One document per question (or message replied to before it was seen).
KPI_QUESTIONS = "kpi_questions"
#: One document per counted message: what makes replays change nothing.
KPI_MESSAGES = "kpi_messages"
#: Questions asked and first-response histograms per (community, day or month, scope).
KPI_RESPONSES = "kpi_responses"
#: Member numbers by calendar month of joining, one document per (community, month).
KPI_JOINS = "kpi_joins"
COMMUNITIES = "communities"
CHANNELS = "channels"

#: Separates the parts of an activity document id; the free-form channel id comes last.
_ID_SEPARATOR = "|"

DEFAULT_CHURN_DAYS = 30
DEFAULT_COHORT_MONTHS = 12
MAX_PERIOD_DAYS = 3660
MAX_CHURN_DAYS = 365
MAX_COHORT_MONTHS = 36
#: Rolling windows of WAU and MAU, ending on the period's last day.
WAU_DAYS = 7
MAU_DAYS = 30
#: Shares of the messages written by the most active members.
TOP_PERCENTS = (5, 10)
BUSIEST_CHANNELS = 10
#: Ratio between the bounds of consecutive first-response buckets. A bucket's waits are
#: estimated by their mean, which lies inside the bucket like each of them: a percentile
#: read from the histograms is within this relative error (minus one) of the exact one.
RESPONSE_BUCKET_GROWTH = 1.02
_LOG_GROWTH = math.log(RESPONSE_BUCKET_GROWTH)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Grain(StrEnum):
    """How long an activity document's period is."""

    DAY = "d"
    MONTH = "m"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``: how days are stored."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def activity_id(community_id: str, grain: Grain, start: date, channel_id: str | None) -> str:
    """The id of an activity document; the community-wide one has an empty channel."""
    return _ID_SEPARATOR.join((community_id, grain.value, start.isoformat(), channel_id or ""))


def joins_id(community_id: str, month: date) -> str:
    """The id of a month's ``kpi_joins`` document."""
    return _ID_SEPARATOR.join((community_id, month.isoformat()))


@dataclass(frozen=True, slots=True)
class Segments:
    """Whole calendar months and leftover days that exactly cover a range of days."""

    months: tuple[date, ...]
    days: tuple[date, ...]

    def ids(self, community_id: str, channel_id: str | None) -> list[str]:
        return [activity_id(community_id, Grain.MONTH, m, channel_id) for m in self.months] + [
            activity_id(community_id, Grain.DAY, d, channel_id) for d in self.days
        ]

    def day_runs(self) -> list[tuple[date, date]]:
        """The leftover days as runs of consecutive days (first, last included)."""
        runs: list[tuple[date, date]] = []
        for day in self.days:
            if runs and runs[-1][1] + timedelta(days=1) == day:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        return runs


def segments(first: date, last: date) -> Segments:
    """Cover ``first``..``last`` (included) with as few activity documents as possible.

    A month inside the range is read from its month document; only the partial months
    at its ends are read day by day, so a year costs about 12 + 60 documents, not 365.
    """
    months: list[date] = []
    days: list[date] = []
    day = first
    while day <= last:
        month = month_start(day)
        following = next_month(month)
        if day == month and following - timedelta(days=1) <= last:
            months.append(month)
            day = following
        else:
            end = min(last, following - timedelta(days=1))
            days.extend(day + timedelta(days=n) for n in range((end - day).days + 1))
            day = end + timedelta(days=1)
    return Segments(tuple(months), tuple(days))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` with linear interpolation between ranks.

    The median of 10 and 50 is 30; their 90th percentile 46. ``None`` without values.
    """
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def response_ms(seconds: float) -> int:
    """A first-response time as whole milliseconds: integer sums add and subtract exactly."""
    return max(0, round(seconds * 1000))


def response_bucket(ms: int) -> int:
    """The histogram bucket of a first-response time in milliseconds.

    Bucket 0 holds waits under a second; bucket ``k >= 1`` holds waits from
    ``RESPONSE_BUCKET_GROWTH ** (k - 1)`` up to ``RESPONSE_BUCKET_GROWTH ** k`` seconds.
    """
    if ms < 1000:
        return 0
    return 1 + math.floor(math.log(ms / 1000) / _LOG_GROWTH)


@dataclass(slots=True)
class ResponseHistogram:
    """First-response times merged over documents: per bucket, waits and summed ms."""

    asked: int = 0
    #: Answered questions per bucket (keys as stored: the bucket number as text).
    counts: dict[str, int] = field(default_factory=dict)
    #: Their first-response times summed, in milliseconds, per bucket.
    sums_ms: dict[str, int] = field(default_factory=dict)

    def add(self, asked: int, counts: Mapping[str, int], sums_ms: Mapping[str, int]) -> None:
        """Merge one stored document (``asked``, ``n.<bucket>`` and ``ms.<bucket>``).

        Two flat maps rather than a sub-document per bucket: a year merges a dozen
        documents of several hundred buckets, and flat maps decode and add fastest.
        """
        self.asked += asked
        for merged, part in ((self.counts, counts), (self.sums_ms, sums_ms)):
            if not merged:
                merged.update(part)
                continue
            get = merged.get
            for key, value in part.items():
                merged[key] = get(key, 0) + value

    @property
    def answered(self) -> int:
        return sum(count for count in self.counts.values() if count > 0)

    def _buckets(self) -> list[tuple[int, int]]:
        """(count, summed ms) of the non-empty buckets, shortest waits first."""
        found = [
            (int(key), count, self.sums_ms.get(key, 0))
            for key, count in self.counts.items()
            # Zero: emptied by a question that lost or changed its response.
            if count > 0
        ]
        found.sort()
        return [(count, ms) for _, count, ms in found]

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) in seconds, as :func:`percentile` on the exact waits.

        Ranks are found exactly; a rank's wait is its bucket's mean, so the result is
        exact when the buckets at the ranks hold a single distinct wait, and otherwise
        within ``RESPONSE_BUCKET_GROWTH - 1`` (relative) of the exact percentile.
        """
        buckets = self._buckets()
        total = sum(count for count, _ in buckets)
        if total == 0:
            return None
        position = q * (total - 1)
        low = math.floor(position)
        high = min(low + 1, total - 1)
        low_value = high_value = 0.0
        seen = 0
        for count, ms in buckets:
            mean = ms / count / 1000
            if seen <= low < seen + count:
                low_value = mean
            if seen <= high < seen + count:
                high_value = mean
                break
            seen += count
        return low_value + (high_value - low_value) * (position - low)


class MemberKpis(BaseModel):
    """Active, new and churned members (bots never count)."""

    active: int = Field(description="Members who wrote at least once in the period.")
    dau: float = Field(description="Daily active members, averaged over the period's days.")
    wau: int = Field(description="Active members in the 7 days ending on the last day.")
    mau: int = Field(description="Active members in the 30 days ending on the last day.")
    new: int = Field(
        description="Members who joined in the period (their join event or first message, "
        "whichever is earlier); with a channel, those of them who wrote in it in the period."
    )
    churned: int = Field(
        description="Members whose inactivity reached churn_days during the period: their "
        "last message, as of the last day, was between churn_days before the first day and "
        "churn_days before the last day."
    )


class DayActivity(BaseModel):
    day: date
    active_members: int
    messages: int


class QuestionKpis(BaseModel):
    """Members' questions asked in the period and their first responses."""

    asked: int
    answered: int = Field(description="Questions that drew a response from another member.")
    unanswered: int
    unanswered_share: float | None = Field(description="unanswered / asked; null without any.")
    first_response_median_s: float | None = Field(description="Seconds; null if none answered.")
    first_response_p90_s: float | None = None


class TopShare(BaseModel):
    """The share of the period's messages written by its most active members."""

    top_percent: int
    members: int = Field(description="ceil(top_percent% of active members), at least 1.")
    messages: int
    share: float | None = Field(description="Of all members' messages; null without any.")


class ChannelActivity(BaseModel):
    channel_id: str
    name: str
    messages: int
    share: float


class Heatmap(BaseModel):
    """Members' messages by weekday (Monday first) and hour, in ``timezone``."""

    timezone: str
    weekdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS))
    counts: list[list[int]] = Field(description="7 rows of 24 hours.")


class Cohort(BaseModel):
    """Members who joined in one month, and how many were active each month since."""

    month: str = Field(description="YYYY-MM of joining.")
    members: int
    active: list[int] = Field(description="Active members in the joining month, then each next.")
    retention: list[float] = Field(description="active / members, same order.")


class Retention(BaseModel):
    months: int = Field(description="Cohorts of this many months, ending with the last day's.")
    cohorts: list[Cohort]


class KpiReport(BaseModel):
    """A community's (or one of its channels') health over a period of UTC days."""

    community_id: str
    channel_id: str | None
    first: date
    last: date
    days: int
    churn_days: int
    messages: int = Field(description="Members' messages in the period.")
    members: MemberKpis
    daily: list[DayActivity]
    questions: QuestionKpis
    top_shares: list[TopShare]
    heatmap: Heatmap
    busiest_channels: list[ChannelActivity]
    retention: Retention


@dataclass(frozen=True, slots=True)
class KpiQuery:
    """What to report on; :meth:`check` names the field at fault."""

    community_id: str
    first: date
    last: date
    channel_id: str | None = None
    churn_days: int = DEFAULT_CHURN_DAYS
    cohort_months: int = DEFAULT_COHORT_MONTHS
    #: The heatmap's time zone; ``None``: the community's (UTC unless set).
    timezone: str | None = None

    def check(self) -> None:
        """Raises: ValueError naming the field that is out of range."""
        if self.last < self.first:
            raise ValueError(f"to: {self.last} is before from {self.first}")
        if (self.last - self.first).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"to: the period is longer than {MAX_PERIOD_DAYS} days")
        if not 1 <= self.churn_days <= MAX_CHURN_DAYS:
            raise ValueError(f"churn_days: {self.churn_days} is not between 1 and {MAX_CHURN_DAYS}")
        if not 1 <= self.cohort_months <= MAX_COHORT_MONTHS:
            raise ValueError(
                f"cohort_months: {self.cohort_months} is not between 1 and {MAX_COHORT_MONTHS}"
            )
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _members_of(docs: Mapping[str, Mapping[str, int]], ids: Iterable[str]) -> dict[str, int]:
    """Messages per member number over the documents ``ids`` (missing ones are empty)."""
    total: dict[str, int] = {}
    get = total.get
    for doc_id in ids:
        members = docs.get(doc_id)
        if not members:
            continue
        if not total:
            # The first document is copied at C speed; a month covers most of a period.
            total.update(members)
            continue
        for member, count in members.items():
            total[member] = get(member, 0) + count
    return total


def _active(docs: Mapping[str, Mapping[str, int]], ids: Iterable[str]) -> set[str]:
    """Members with a message in any of the documents ``ids``."""
    return set().union(*(docs.get(doc_id) or () for doc_id in ids))


def top_shares(
    per_member: Mapping[str, int], percents: Sequence[int] = TOP_PERCENTS
) -> list[TopShare]:
    """Share of the messages of the top ``p``% most active members, for each ``p``."""
    counts = sorted(per_member.values(), reverse=True)
    total = sum(counts)
    shares = []
    for percent in percents:
        members = max(1, math.ceil(len(counts) * percent / 100)) if counts else 0
        messages = sum(counts[:members])
        shares.append(
            TopShare(
                top_percent=percent,
                members=members,
                messages=messages,
                share=messages / total if total else None,
            )
        )
    return shares


#: Stored hour keys ("0".."23") to numbers: a look-up is cheaper than parsing each one.
_HOURS = {str(hour): hour for hour in range(24)}
_WEEK_HOURS = 7 * 24


def _offset_hours(day: date, hour: int, zone: ZoneInfo) -> int:
    """Whole hours to add to ``hour`` UTC of ``day`` to get its local hour (floored).

    The local hour of an instant on a UTC hour is ``hour + floor(offset / 1 h)`` for any
    offset, half and quarter hours included, so one shift serves a whole day.
    """
    offset = datetime.combine(day, time(hour), tzinfo=UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) // 3600 if offset is not None else 0


@lru_cache(maxsize=65_536)
def _midnight_offset_hours(day: date, zone: ZoneInfo) -> int:
    """:func:`_offset_hours` at midnight UTC; past days never change, so kept."""
    return _offset_hours(day, 0, zone)


def heatmap(hours_by_day: Iterable[tuple[date, Mapping[str, int]]], timezone: str) -> Heatmap:
    """Weekday x hour counts in ``timezone`` from counts per UTC day and UTC hour.

    Exact in any zone: each UTC hour is moved by the zone's offset at that hour. The
    offset is looked up once per day (at midnight UTC, remembered) and per hour only on
    the days it changes, so a year costs 365 look-ups rather than 8,760.
    """
    # Hours of the week, Monday 00:00 first; local weekday and hour fall out of one index.
    week = [0] * _WEEK_HOURS
    zone = None if timezone == "UTC" else ZoneInfo(timezone)
    for day, hours in hours_by_day:
        if not hours:
            continue
        start = day.weekday() * 24
        if zone is not None:
            # The same offset at this midnight and the next: none of the day's hours
            # crosses a change (zones change at most once a day).
            opening = _midnight_offset_hours(day, zone)
            if opening != _midnight_offset_hours(day + timedelta(days=1), zone):
                for hour, count in hours.items():
                    utc_hour = _HOURS[hour]
                    shifted = start + utc_hour + _offset_hours(day, utc_hour, zone)
                    week[shifted % _WEEK_HOURS] += count
                continue
            start += opening
        if 0 <= start <= _WEEK_HOURS - 24:
            for hour, count in hours.items():
                week[start + _HOURS[hour]] += count
        else:
            for hour, count in hours.items():
                week[(start + _HOURS[hour]) % _WEEK_HOURS] += count
    return Heatmap(timezone=timezone, counts=[week[row : row + 24] for row in range(0, 168, 24)])


_T = TypeVar("_T")


async def _timed(timings: dict[str, float] | None, name: str, read: Awaitable[_T]) -> _T:
    """Await ``read``, noting how long it took (ms) under ``name`` when asked to."""
    if timings is None:
        return await read
    started = _clock()
    try:
        return await read
    finally:
        timings[name] = (_clock() - started) * 1000


def _clock() -> float:
    return asyncio.get_running_loop().time()


class KpiService:
    """Computes :class:`KpiReport` from the rollups, in a handful of small queries.

    Every read is bounded by the number of months and leftover days of the period, never
    by its number of messages or questions: a year reads about a dozen month documents
    per kind, plus its days for the daily series.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def report(
        self, query: KpiQuery, *, timings: dict[str, float] | None = None
    ) -> KpiReport:
        """The KPIs of ``query``'s period.

        Args:
            query: What to report on.
            timings: When given, filled with the milliseconds each read took and the
                time spent putting the report together (``assemble``).

        Raises:
            ValueError: a field of the query is out of range (the message names it).
        """
        query.check()
        community, channel = query.community_id, query.channel_id
        first, last, churn = query.first, query.last, timedelta(days=query.churn_days)
        period = segments(first, last)
        wau = segments(last - timedelta(days=WAU_DAYS - 1), last)
        mau = segments(last - timedelta(days=MAU_DAYS - 1), last)
        # Churned: active when their last message could still be churn_days old by the
        # last day, and silent in the churn_days ending on the last day.
        before = segments(first - churn, last - churn)
        silent = segments(last - churn + timedelta(days=1), last)
        last_month = month_start(last)
        cohort_months = [last_month]
        while len(cohort_months) < query.cohort_months:
            previous = month_start(cohort_months[-1] - timedelta(days=1))
            cohort_months.append(previous)
        cohort_months.reverse()
        month_ids = [activity_id(community, Grain.MONTH, m, channel) for m in cohort_months]
        period_ids = period.ids(community, channel)
        wanted = {
            *period_ids,
            *wau.ids(community, channel),
            *mau.ids(community, channel),
            *before.ids(community, channel),
            *silent.ids(community, channel),
            *month_ids,
        }
        # Every read starts at once; together they take about as long as the slowest.
        members_task = asyncio.create_task(
            _timed(timings, "members", self._members_by_doc(sorted(wanted)))
        )
        daily_task = asyncio.create_task(
            _timed(timings, "daily", self._daily(community, channel, first, last))
        )
        channels_task = asyncio.create_task(
            _timed(timings, "channels", self._channel_messages(community, period))
        )
        responses_task = asyncio.create_task(
            _timed(timings, "responses", self._responses(period_ids))
        )
        joins_task = asyncio.create_task(
            _timed(
                timings,
                "joins",
                self._joins(community, sorted({*period.months, *cohort_months}), period),
            )
        )
        timezone_task = asyncio.create_task(
            _timed(timings, "timezone", self._timezone(community, query.timezone))
        )
        names_task = asyncio.create_task(
            _timed(timings, "channel_names", self._channel_names(community))
        )
        members_by_doc = await members_task
        daily_docs = await daily_task
        channel_counts = await channels_task
        responses = await responses_task
        joins = await joins_task
        timezone = await timezone_task
        names = await names_task
        started = _clock()
        per_member = _members_of(members_by_doc, period_ids)
        mau_active = _active(members_by_doc, mau.ids(community, channel))
        # With the default churn_days (30) the silent window is the MAU one: union once.
        silent_active = (
            mau_active if silent == mau else _active(members_by_doc, silent.ids(community, channel))
        )
        churned = _active(members_by_doc, before.ids(community, channel)) - silent_active
        new_members = joins.new(period)
        new = len(new_members) if channel is None else len(new_members.intersection(per_member))
        days = _days(first, last)
        daily = [
            DayActivity(
                day=day,
                active_members=daily_docs[day][0] if day in daily_docs else 0,
                messages=daily_docs[day][1] if day in daily_docs else 0,
            )
            for day in days
        ]
        total_channels = sum(channel_counts.values())
        busiest = [
            ChannelActivity(
                channel_id=channel_id,
                name=names.get(channel_id, channel_id),
                messages=count,
                share=count / total_channels,
            )
            for channel_id, count in sorted(channel_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if count > 0
        ][:BUSIEST_CHANNELS]
        messages = sum(per_member.values())
        answered = responses.answered
        report = KpiReport(
            community_id=community,
            channel_id=channel,
            first=first,
            last=last,
            days=len(days),
            churn_days=query.churn_days,
            messages=messages,
            members=MemberKpis(
                active=len(per_member),
                dau=sum(d.active_members for d in daily) / len(days),
                wau=len(_active(members_by_doc, wau.ids(community, channel))),
                mau=len(mau_active),
                new=new,
                churned=len(churned),
            ),
            daily=daily,
            questions=QuestionKpis(
                asked=responses.asked,
                answered=answered,
                unanswered=responses.asked - answered,
                unanswered_share=(responses.asked - answered) / responses.asked
                if responses.asked
                else None,
                first_response_median_s=responses.percentile(0.5),
                first_response_p90_s=responses.percentile(0.9),
            ),
            top_shares=top_shares(per_member),
            heatmap=heatmap(
                ((day, hours) for day, (_, _, hours) in sorted(daily_docs.items())), timezone
            ),
            busiest_channels=busiest,
            retention=_retention(joins.by_month, cohort_months, members_by_doc, month_ids),
        )
        if timings is not None:
            timings["assemble"] = (_clock() - started) * 1000
        return report

    async def _members_by_doc(self, ids: list[str]) -> dict[str, dict[str, int]]:
        return {
            doc["_id"]: doc.get("members") or {}
            async for doc in self._db[KPI_ACTIVITY].find(
                {"_id": {"$in": ids}}, {"members": 1}, batch_size=len(ids) + 1
            )
        }

    async def _daily(
        self, community_id: str, channel_id: str | None, first: date, last: date
    ) -> dict[date, tuple[int, int, dict[str, int]]]:
        """Active members, messages and messages per UTC hour of each day with any.

        Packed by the server into one document of arrays (a year: 365 days, well under
        a megabyte): one reply to decode instead of a document per day.
        """
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "grain": Grain.DAY.value,
                    "channel_id": channel_id,
                    "start": {"$gte": day_start(first), "$lte": day_start(last)},
                }
            },
            {
                "$group": {
                    "_id": None,
                    "start": {"$push": "$start"},
                    "active": {"$push": {"$ifNull": ["$active", 0]}},
                    "messages": {"$push": {"$ifNull": ["$messages", 0]}},
                    "hours": {"$push": {"$ifNull": ["$hours", {}]}},
                }
            },
        ]
        cursor = await self._db[KPI_ACTIVITY].aggregate(pipeline)
        found = await cursor.to_list(1)
        if not found:
            return {}
        doc = found[0]
        return {
            start.astimezone(UTC).date(): (int(active), int(messages), hours)
            for start, active, messages, hours in zip(
                doc["start"], doc["active"], doc["messages"], doc["hours"], strict=True
            )
        }

    async def _channel_messages(self, community_id: str, period: Segments) -> dict[str, int]:
        """Members' messages per channel over the period."""
        covering: list[dict[str, Any]] = []
        if period.months:
            covering.append(
                {
                    "grain": Grain.MONTH.value,
                    "start": {"$in": [day_start(m) for m in period.months]},
                }
            )
        if period.days:
            covering.append(
                {"grain": Grain.DAY.value, "start": {"$in": [day_start(d) for d in period.days]}}
            )
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "channel_id": {"$type": "string"},
                    "$or": covering,
                }
            },
            {"$group": {"_id": "$channel_id", "messages": {"$sum": "$messages"}}},
        ]
        cursor = await self._db[KPI_ACTIVITY].aggregate(pipeline)
        return {doc["_id"]: int(doc["messages"]) async for doc in cursor}

    async def _responses(self, ids: list[str]) -> ResponseHistogram:
        """Questions asked and first-response histograms merged over the period's documents.

        The ids are those of the activity documents (same months and leftover days,
        same scope): each names one community, so no other community is ever read.
        """
        merged = ResponseHistogram()
        async for doc in self._db[KPI_RESPONSES].find(
            {"_id": {"$in": ids}}, {"_id": 0, "asked": 1, "n": 1, "ms": 1}, batch_size=len(ids) + 1
        ):
            merged.add(int(doc.get("asked", 0)), doc.get("n") or {}, doc.get("ms") or {})
        return merged

    async def _joins(self, community_id: str, months: list[date], period: Segments) -> Joins:
        """Members by month of joining for ``months``, and those who joined on the
        period's leftover days.

        Months come from ``kpi_joins`` (one document each); the leftover days, at most
        two runs of a month or less, through a covering index on ``kpi_members``.
        """
        ids = [joins_id(community_id, month) for month in months]
        listed = {
            doc["start"].astimezone(UTC).date(): list(map(str, doc.get("members") or ()))
            async for doc in self._db[KPI_JOINS].find(
                {"_id": {"$in": ids}}, {"_id": 0, "start": 1, "members": 1}
            )
        }
        runs = period.day_runs()
        on_days: list[str] = []
        if runs:
            query = {
                "community_id": community_id,
                "$or": [
                    {
                        "joined_at": {
                            "$gte": day_start(run_first),
                            "$lt": day_start(run_last + timedelta(days=1)),
                        }
                    }
                    for run_first, run_last in runs
                ],
            }
            on_days = [
                str(doc["idx"])
                async for doc in self._db[KPI_MEMBERS].find(
                    query, {"_id": 0, "idx": 1}, batch_size=100_000
                )
            ]
        return Joins(listed, on_days)

    async def _timezone(self, community_id: str, wanted: str | None) -> str:
        if wanted is not None:
            return wanted
        doc = await self._db[COMMUNITIES].find_one({"_id": community_id}, {"timezone": 1})
        return str(doc.get("timezone") or "UTC") if doc else "UTC"

    async def _channel_names(self, community_id: str) -> dict[str, str]:
        return {
            doc["channel_id"]: doc.get("name") or doc["channel_id"]
            async for doc in self._db[CHANNELS].find(
                {"community_id": community_id}, {"channel_id": 1, "name": 1}
            )
        }


@dataclass(frozen=True, slots=True)
class Joins:
    """Member numbers (as text, like the activity documents' keys) by month of joining,
    and those who joined on a period's leftover days."""

    by_month: dict[date, list[str]]
    on_days: list[str]

    def new(self, period: Segments) -> set[str]:
        """Members who joined in ``period``."""
        found = set(self.on_days)
        for month in period.months:
            found.update(self.by_month.get(month, ()))
        return found


def _retention(
    cohorts: Mapping[date, list[str]],
    months: list[date],
    members_by_doc: Mapping[str, Mapping[str, int]],
    month_ids: list[str],
) -> Retention:
    rows = []
    for index, month in enumerate(months):
        joined = set(cohorts.get(month, ()))
        if not joined:
            continue
        # A month's keys against the cohort: the intersection walks the smaller side.
        active = [
            len((members_by_doc.get(doc_id) or {}).keys() & joined) for doc_id in month_ids[index:]
        ]
        rows.append(
            Cohort(
                month=f"{month:%Y-%m}",
                members=len(joined),
                active=active,
                retention=[round(n / len(joined), 4) for n in active],
            )
        )
    return Retention(months=len(months), cohorts=rows)
