"""Community health KPIs, read from the rollups the leaderboard service maintains.

The leaderboard service writes the ``kpi_*`` collections from ``message.analyzed`` and
``members.events``; the API and the command line read them here, so their shapes and
document ids are known in one place on both sides.

What is stored (see docs/kpis.md for the whole picture):

- ``kpi_activity``: one document per (community, UTC day or calendar month, channel or
  the whole community) with the number of members' messages, the messages of each active
  member (``members.<member number>``), their number (``active``) and, for days, the
  messages of each UTC hour.
  Member numbers are small per-community integers: no member id is kept in counters.
- ``kpi_members``: one document per member with its number, when it joined (its
  ``member.joined`` or its first message, whichever is earlier) and first message.
- ``kpi_questions``: one document per members' question with its first response.

Days are UTC days (like the insights report); the weekday-hour heatmap is given in the
community's time zone, exactly, since hours are stored as UTC hours of each day.
Bots are left out of every figure: their messages are not counted and never respond.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
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


@dataclass(frozen=True, slots=True)
class Segments:
    """Whole calendar months and leftover days that exactly cover a range of days."""

    months: tuple[date, ...]
    days: tuple[date, ...]

    def ids(self, community_id: str, channel_id: str | None) -> list[str]:
        return [activity_id(community_id, Grain.MONTH, m, channel_id) for m in self.months] + [
            activity_id(community_id, Grain.DAY, d, channel_id) for d in self.days
        ]


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
            days.append(day)
            day += timedelta(days=1)
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


def _members_of(docs: dict[str, dict[str, int]], ids: Iterable[str]) -> Counter[str]:
    """Messages per member number over the documents ``ids`` (missing ones are empty)."""
    total: Counter[str] = Counter()
    for doc_id in ids:
        members = docs.get(doc_id)
        if members:
            total.update(members)
    return total


def _active(docs: dict[str, dict[str, int]], ids: Iterable[str]) -> set[str]:
    active: set[str] = set()
    for doc_id in ids:
        members = docs.get(doc_id)
        if members:
            active.update(members)
    return active


def top_shares(per_member: Counter[str], percents: Sequence[int] = TOP_PERCENTS) -> list[TopShare]:
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


def heatmap(hours_by_day: Iterable[tuple[date, dict[str, int]]], timezone: str) -> Heatmap:
    """Weekday x hour counts in ``timezone`` from counts per UTC day and UTC hour."""
    counts = [[0] * 24 for _ in range(7)]
    zone = ZoneInfo(timezone)
    for day, hours in hours_by_day:
        for hour, count in hours.items():
            instant = datetime.combine(day, time(int(hour)), tzinfo=UTC)
            local = instant if timezone == "UTC" else instant.astimezone(zone)
            counts[local.weekday()][local.hour] += count
    return Heatmap(timezone=timezone, counts=counts)


class KpiService:
    """Computes :class:`KpiReport` from the rollups, in a handful of small queries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def report(self, query: KpiQuery) -> KpiReport:
        """The KPIs of ``query``'s period.

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
        wanted = {
            *period.ids(community, channel),
            *wau.ids(community, channel),
            *mau.ids(community, channel),
            *before.ids(community, channel),
            *silent.ids(community, channel),
            *month_ids,
        }
        # Every read starts at once; together they take about as long as the slowest.
        members_task = asyncio.create_task(self._members_by_doc(sorted(wanted)))
        daily_task = asyncio.create_task(self._daily(community, channel, first, last))
        channels_task = asyncio.create_task(self._channel_messages(community, period))
        questions_task = asyncio.create_task(self._questions(community, channel, first, last))
        new_task = asyncio.create_task(self._new_members(community, first, last))
        cohorts_task = asyncio.create_task(
            self._cohorts(community, cohort_months[0], next_month(last_month))
        )
        timezone_task = asyncio.create_task(self._timezone(community, query.timezone))
        names_task = asyncio.create_task(self._channel_names(community))
        members_by_doc = await members_task
        daily_docs = await daily_task
        channel_counts = await channels_task
        questions = await questions_task
        new_members = await new_task
        cohorts = await cohorts_task
        timezone = await timezone_task
        names = await names_task
        per_member = _members_of(members_by_doc, period.ids(community, channel))
        active = set(per_member)
        churned = _active(members_by_doc, before.ids(community, channel)) - _active(
            members_by_doc, silent.ids(community, channel)
        )
        new = new_members if channel is None else new_members & active
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
        return KpiReport(
            community_id=community,
            channel_id=channel,
            first=first,
            last=last,
            days=len(days),
            churn_days=query.churn_days,
            messages=messages,
            members=MemberKpis(
                active=len(active),
                dau=sum(d.active_members for d in daily) / len(days),
                wau=len(_active(members_by_doc, wau.ids(community, channel))),
                mau=len(_active(members_by_doc, mau.ids(community, channel))),
                new=len(new),
                churned=len(churned),
            ),
            daily=daily,
            questions=questions,
            top_shares=top_shares(per_member),
            heatmap=heatmap(
                ((day, hours) for day, (_, _, hours) in sorted(daily_docs.items())), timezone
            ),
            busiest_channels=busiest,
            retention=_retention(cohorts, cohort_months, members_by_doc, month_ids),
        )

    async def _members_by_doc(self, ids: list[str]) -> dict[str, dict[str, int]]:
        return {
            doc["_id"]: doc.get("members") or {}
            async for doc in self._db[KPI_ACTIVITY].find({"_id": {"$in": ids}}, {"members": 1})
        }

    async def _daily(
        self, community_id: str, channel_id: str | None, first: date, last: date
    ) -> dict[date, tuple[int, int, dict[str, int]]]:
        """Active members, messages and messages per UTC hour of each day with any."""
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
                "$project": {
                    "_id": 0,
                    "start": 1,
                    "messages": 1,
                    "hours": 1,
                    "active": 1,
                }
            },
        ]
        cursor = await self._db[KPI_ACTIVITY].aggregate(pipeline)
        return {
            doc["start"].astimezone(UTC).date(): (
                int(doc.get("active", 0)),
                doc.get("messages", 0),
                doc.get("hours") or {},
            )
            async for doc in cursor
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

    async def _questions(
        self, community_id: str, channel_id: str | None, first: date, last: date
    ) -> QuestionKpis:
        query: dict[str, Any] = {
            "community_id": community_id,
            "is_question": True,
            "asked_at": {"$gte": day_start(first), "$lt": day_start(last + timedelta(days=1))},
        }
        if channel_id is not None:
            query["channel_id"] = channel_id
        # Sorted and picked by the server: a year holds tens of thousands of questions,
        # and only four numbers need to travel.
        waits: dict[str, Any] = {
            "$sortArray": {
                "input": {"$filter": {"input": "$waits", "cond": {"$ne": ["$$this", None]}}},
                "sortBy": 1,
            }
        }
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$group": {"_id": None, "asked": {"$sum": 1}, "waits": {"$push": "$response_s"}}},
            {"$project": {"_id": 0, "asked": 1, "waits": waits}},
            {
                "$project": {
                    "asked": 1,
                    "answered": {"$size": "$waits"},
                    "p50": _ranks("$waits", 0.5),
                    "p90": _ranks("$waits", 0.9),
                }
            },
        ]
        cursor = await self._db[KPI_QUESTIONS].aggregate(pipeline)
        found = await cursor.to_list(1)
        if not found:
            return QuestionKpis(
                asked=0,
                answered=0,
                unanswered=0,
                unanswered_share=None,
                first_response_median_s=None,
                first_response_p90_s=None,
            )
        doc = found[0]
        asked, answered = int(doc["asked"]), int(doc["answered"])
        unanswered = asked - answered
        return QuestionKpis(
            asked=asked,
            answered=answered,
            unanswered=unanswered,
            unanswered_share=unanswered / asked,
            first_response_median_s=_interpolated(doc["p50"]) if answered else None,
            first_response_p90_s=_interpolated(doc["p90"]) if answered else None,
        )

    async def _new_members(self, community_id: str, first: date, last: date) -> set[str]:
        query = {
            "community_id": community_id,
            "joined_at": {"$gte": day_start(first), "$lt": day_start(last + timedelta(days=1))},
        }
        return {
            str(doc["idx"]) async for doc in self._db[KPI_MEMBERS].find(query, {"_id": 0, "idx": 1})
        }

    async def _cohorts(self, community_id: str, start: date, end: date) -> dict[date, list[str]]:
        """Member numbers by month of joining, for joins in ``[start, end)``."""
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "joined_at": {"$gte": day_start(start), "$lt": day_start(end)},
                }
            },
            {
                "$group": {
                    "_id": {"$dateTrunc": {"date": "$joined_at", "unit": "month"}},
                    "members": {"$push": "$idx"},
                }
            },
        ]
        cursor = await self._db[KPI_MEMBERS].aggregate(pipeline)
        return {
            doc["_id"].astimezone(UTC).date(): [str(idx) for idx in doc["members"]]
            async for doc in cursor
        }

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


def _ranks(values: str, q: float) -> dict[str, Any]:
    """The server-side pick of the two ranks around the ``q`` quantile of a sorted array,
    with the fraction between them (see :func:`percentile`)."""
    position = {"$multiply": [q, {"$subtract": [{"$size": values}, 1]}]}
    low = {"$toInt": {"$floor": position}}
    high = {"$toInt": {"$ceil": position}}
    return {
        "low": {"$arrayElemAt": [values, low]},
        "high": {"$arrayElemAt": [values, high]},
        "fraction": {"$subtract": [position, {"$floor": position}]},
    }


def _interpolated(ranks: dict[str, Any]) -> float:
    low, high = float(ranks["low"]), float(ranks["high"])
    return low + (high - low) * float(ranks["fraction"])


def _retention(
    cohorts: dict[date, list[str]],
    months: list[date],
    members_by_doc: dict[str, dict[str, int]],
    month_ids: list[str],
) -> Retention:
    active_by_month = {
        month: set(members_by_doc.get(doc_id) or {})
        for month, doc_id in zip(months, month_ids, strict=True)
    }
    rows = []
    for index, month in enumerate(months):
        joined = set(cohorts.get(month, ()))
        if not joined:
            continue
        active = [len(joined & active_by_month[later]) for later in months[index:]]
        rows.append(
            Cohort(
                month=f"{month:%Y-%m}",
                members=len(joined),
                active=active,
                retention=[round(n / len(joined), 4) for n in active],
            )
        )
    return Retention(months=len(months), cohorts=rows)
