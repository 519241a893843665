"""KPI benchmark: rollup updates per second, then KPI report latencies, at full size.

Generates a year of a 400,000-message, 4,000-member, 40-channel community (a few very
active members, many occasional ones; daytime peaks; questions, replies and answers),
feeds it as ``message.analyzed`` events through the leaderboard's KPI handler (the same
code the consumer loop calls, in batches the size of a Kafka poll) into a throwaway
database, and prints the updates per second. Then it times the KPI report (every section
at once: members, questions, shares, heatmap, channels, retention) over a week, a month,
a month of one channel, a quarter and the whole year, and prints p50 and p99.

Then it breaks one year report down: the milliseconds of each of its reads (they run
concurrently) and of putting it together, and compares the year's first-response median
and p90 read from the histograms with the exact ones computed from every question.

Prints JSON lines: ``{"metric": ..., "value": ..., "unit": ...}``. The database is
dropped at the end unless ``--keep``; ``--db NAME`` times the reports of a kept one.

    uv run --frozen python bench/kpi_bench.py [--messages 400000] [--members 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MessageAnalyzed,
    MessageKind,
    Platform,
)
from pepite_kit import Database, MongoSettings
from pepite_kit.mongo import mongo_database
from pepite_leaderboard.kpi_handlers import KpiEventsHandler, KpiUpdater
from pepite_leaderboard.kpi_repository import KPI_INDEXES, KpiRepository
from pepite_reports.kpis import KPI_QUESTIONS, KpiQuery, KpiService, day_start, percentile

COMMUNITY = "bench-kpi"
START = datetime(2025, 1, 1, tzinfo=UTC)
CHANNELS = 40
BATCH = 500
KINDS = [
    (MessageKind.SOCIAL, 0.40),
    (MessageKind.QUESTION, 0.18),
    (MessageKind.ANSWER, 0.16),
    (MessageKind.PROBLEM, 0.08),
    (MessageKind.GRATITUDE, 0.08),
    (MessageKind.RESOURCE, 0.10),
]
#: Messages per hour of the day (UTC): quiet nights, busy afternoons.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 9, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2]


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 2), "unit": unit}), flush=True)


@dataclass(frozen=True, slots=True)
class Synthetic:
    """One generated message, made into an event only when its batch is fed."""

    number: int
    member: int
    channel: int
    kind: MessageKind
    created_at: datetime
    reply_to: int | None

    def event(self) -> MessageAnalyzed:
        return MessageAnalyzed(
            community_id=COMMUNITY,
            payload=AnalyzedMessage(
                message_id=f"discord:{COMMUNITY}:{self.number}",
                platform=Platform.DISCORD,
                community_id=COMMUNITY,
                channel=ChannelRef(id=f"c{self.channel}", name=f"channel-{self.channel}"),
                reply_to_id=None
                if self.reply_to is None
                else f"discord:{COMMUNITY}:{self.reply_to}",
                author=Member(
                    id=f"discord:{COMMUNITY}:m{self.member}",
                    native_id=f"m{self.member}",
                    name=f"m{self.member}",
                ),
                created_at=self.created_at,
                analysis=Analysis(kind=self.kind),
                analyzed_at=self.created_at,
            ),
        )


def generate(messages: int, members: int, seed: int = 7) -> list[Synthetic]:
    """The year's messages in time order (members join through the year)."""
    rng = random.Random(seed)
    # Activity follows a Zipf-like law; members join uniformly over the year.
    member_cum = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(members)))
    joined = [rng.uniform(0, 330) for _ in range(members)]
    hour_cum = list(accumulate(HOUR_WEIGHTS))
    channel_cum = list(accumulate(1 / (n + 1) for n in range(CHANNELS)))
    kinds = [kind for kind, _ in KINDS]
    kind_cum = list(accumulate(weight for _, weight in KINDS))
    days = sorted(rng.uniform(0, 365) for _ in range(messages))
    found: list[Synthetic] = []
    recent: dict[int, list[int]] = {}
    for number, day_fraction in enumerate(days):
        day = int(day_fraction)
        hour = rng.choices(range(24), cum_weights=hour_cum)[0]
        created = START + timedelta(days=day, hours=hour, seconds=rng.uniform(0, 3599))
        # Mostly members who joined by then write.
        for _ in range(20):
            member = rng.choices(range(members), cum_weights=member_cum)[0]
            if joined[member] <= day:
                break
        channel = rng.choices(range(CHANNELS), cum_weights=channel_cum)[0]
        kind = rng.choices(kinds, cum_weights=kind_cum)[0]
        previous = recent.setdefault(channel, [])
        reply_to = None
        if previous and rng.random() < 0.2:
            reply_to = previous[-rng.randint(1, len(previous))]
        previous.append(number)
        del previous[:-20]
        found.append(Synthetic(number, member, channel, kind, created, reply_to))
    found.sort(key=lambda s: s.created_at)
    return found


async def time_reports(service: KpiService, label: str, query: KpiQuery, runs: int) -> None:
    await service.report(query)  # warm the cache of the server
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        await service.report(query)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    emit(f"kpi_report_{label}_p50", statistics.median(latencies), "ms")
    emit(
        f"kpi_report_{label}_p99",
        latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "ms",
    )


async def profile_year(db: Database, service: KpiService, query: KpiQuery, runs: int) -> None:
    """Where a year report's time goes, and how far its histogram percentiles are."""
    found: dict[str, list[float]] = {}
    for _ in range(runs):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        report = await service.report(query, timings=timings)
        timings["total"] = (time.perf_counter() - started) * 1000
        for name, value in timings.items():
            found.setdefault(name, []).append(value)
    for name, values in found.items():
        emit(f"kpi_year_profile_{name}_p50", statistics.median(values), "ms")
    day = timedelta(days=1)
    waits = [
        float(doc["response_s"])
        async for doc in db[KPI_QUESTIONS].find(
            {
                "community_id": query.community_id,
                "is_question": True,
                "response_s": {"$ne": None},
                "asked_at": {"$gte": day_start(query.first), "$lt": day_start(query.last + day)},
            },
            {"_id": 0, "response_s": 1},
        )
    ]
    emit("kpi_year_answered_exact", len(waits), "questions")
    emit("kpi_year_answered", report.questions.answered, "questions")
    for label, q, estimate in (
        ("median", 0.5, report.questions.first_response_median_s),
        ("p90", 0.9, report.questions.first_response_p90_s),
    ):
        exact = percentile(waits, q)
        emit(f"kpi_year_first_response_{label}_exact", exact or 0.0, "s")
        emit(f"kpi_year_first_response_{label}", estimate or 0.0, "s")
        if exact and estimate is not None:
            emit(f"kpi_year_first_response_{label}_error", abs(estimate - exact) / exact * 100, "%")


async def feed(db: Database, events: list[Synthetic]) -> None:
    """The year through the consumer's handler, then a replay of its last 50,000."""
    repository = KpiRepository(db)
    handler = KpiEventsHandler(KpiUpdater(repository), repository)
    spent = 0.0
    for start in range(0, len(events), BATCH):
        batch = [s.event() for s in events[start : start + BATCH]]
        began = time.perf_counter()
        await handler(batch)
        spent += time.perf_counter() - began
        if start and start % 100_000 == 0:
            emit("kpi_updates_progress_messages", start, "messages")
    emit("kpi_updates_per_second", len(events) / spent, "messages/s")
    # A replay of the last 50,000 (after a crash, a rebalance): nothing moves.
    tail = events[-50_000:]
    batches = [
        [s.event() for s in tail[start : start + BATCH]] for start in range(0, len(tail), BATCH)
    ]
    began = time.perf_counter()
    for batch in batches:
        await handler(batch)
    emit("kpi_replay_per_second", len(tail) / (time.perf_counter() - began), "messages/s")


async def run(args: argparse.Namespace) -> None:
    # The machine's load says how far the figures can be compared with another run's.
    emit("load_average_1m_at_start", os.getloadavg()[0], "processes")
    name = args.db or f"pepite_bench_kpi_{uuid.uuid4().hex[:8]}"
    settings = MongoSettings(mongodb_db=name)
    async with mongo_database(settings, app_name="kpi-bench", indexes=KPI_INDEXES) as db:
        try:
            if args.db is None:
                started = time.perf_counter()
                events = generate(args.messages, args.members)
                emit("kpi_generate_seconds", time.perf_counter() - started, "s")
                await feed(db, events)
            service = KpiService(db)
            year = START.date()
            queries = {
                "week": KpiQuery(COMMUNITY, date(2025, 6, 9), date(2025, 6, 15)),
                "month": KpiQuery(COMMUNITY, date(2025, 6, 1), date(2025, 6, 30)),
                "month_channel": KpiQuery(
                    COMMUNITY, date(2025, 6, 1), date(2025, 6, 30), channel_id="c0"
                ),
                "rolling_30_days": KpiQuery(COMMUNITY, date(2025, 10, 12), date(2025, 11, 10)),
                "quarter": KpiQuery(COMMUNITY, date(2025, 4, 1), date(2025, 6, 30)),
                "year_24_cohorts": KpiQuery(COMMUNITY, year, date(2025, 12, 31), cohort_months=24),
            }
            for label, query in queries.items():
                await time_reports(service, label, query, args.runs)
            month = await service.report(queries["month"])
            emit("kpi_month_active_members", month.members.active, "members")
            emit("kpi_month_messages", month.messages, "messages")
            emit("kpi_month_questions", month.questions.asked, "questions")
            await profile_year(db, service, queries["year_24_cohorts"], args.runs)
            emit("load_average_1m_at_end", os.getloadavg()[0], "processes")
        finally:
            if args.keep or args.db is not None:
                print(f"# database kept: {db.name}", flush=True)
            else:
                await db.client.drop_database(db.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--members", type=int, default=4_000)
    parser.add_argument("--runs", type=int, default=50, help="Reports timed per query.")
    parser.add_argument("--keep", action="store_true", help="Keep the database.")
    parser.add_argument("--db", help="Time the reports of this kept database (no feeding).")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
