"""Leaderboard benchmark: score updates per second, then leaderboard query latencies.

Generates a quarter of a 400,000-message, 4,000-member, 12-channel community (a few
very active members, many occasional ones; questions, answers replying to them or naming
their asker, thanks replying to answers, resources, wins, bots, spam), stores the
messages as the classifier does, and feeds them as ``message.analyzed`` events through
the scores handler (the code the consumer loop calls, in batches the size of a Kafka
poll) into a throwaway database, printing the messages scored per second. Then it times,
from the rollups: a month's and a season's ranking, a custom event (two weeks, three
channels), a range across months, and a member's standing with the messages behind it,
printing the first (cold) call, p50 and p99. Then where the time goes: each part of a
query alone (the ranking page, names, titles; a standing's rank, messages and counts),
and MongoDB's plan for each rollup read (index keys and documents examined, members
returned, stages).

Prints JSON lines: ``{"metric": ..., "value": ..., "unit": ...}``. The database is
dropped at the end unless ``--keep`` or ``--database``; with ``--database`` naming a
kept database, only the queries are timed again.

    uv run --frozen python bench/leaderboard_bench.py [--messages 400000] [--members 4000]
    uv run --frozen python bench/leaderboard_bench.py --database pepite_bench_lb_x
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import accumulate
from typing import Any

from pymongo import IndexModel

from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MessageAnalyzed,
    MessageKind,
    ModerationScores,
    Platform,
)
from pepite_kit import MongoSettings
from pepite_kit.mongo import Database, mongo_database
from pepite_leaderboard.scores_handlers import ScoresHandler
from pepite_leaderboard.scores_repository import SCORES_INDEXES, ScoresRepository
from pepite_leaderboard.scores_service import DEFAULT_DAILY_CAPS, ScoreUpdater, ScoringPolicy
from pepite_reports.leaderboards import (
    LeaderboardConfigRepository,
    LeaderboardEvent,
    LeaderboardReader,
    Period,
    Theme,
    month_period,
    range_period,
    rollup_parts,
    season_period,
)

COMMUNITY = "bench-lb"
START = datetime(2024, 4, 1, tzinfo=UTC)
DAYS = 91
CHANNELS = 12
#: The consumer loop's largest poll (``kafka_max_poll_records``).
BATCH = 2000
BOTS = 20
KINDS = [
    (MessageKind.SOCIAL, 0.42),
    (MessageKind.QUESTION, 0.20),
    (MessageKind.ANSWER, 0.14),
    (MessageKind.GRATITUDE, 0.06),
    (MessageKind.RESOURCE, 0.05),
    (MessageKind.SATISFACTION, 0.04),
    (MessageKind.PROBLEM, 0.04),
    (MessageKind.ENCOURAGEMENT, 0.02),
    (MessageKind.ANNOUNCEMENT, 0.02),
    (MessageKind.SPAM, 0.005),
    (MessageKind.TOXIC, 0.005),
]


def emit(metric: str, value: float, unit: str, **extra: Any) -> None:
    print(
        json.dumps({"metric": metric, "value": round(value, 3), "unit": unit, **extra}), flush=True
    )


def generate(
    messages: int, members: int, seed: int
) -> tuple[list[dict[str, Any]], list[MessageAnalyzed]]:
    """Stored messages and their events, in time order."""
    rng = random.Random(seed)
    names = [f"m{n}" for n in range(members)]
    # Zipf-like activity: a few members write most messages.
    weights = list(accumulate(1.0 / (n + 1) ** 0.9 for n in range(members)))
    kinds, kind_weights = zip(*KINDS, strict=True)
    kind_cum = list(accumulate(kind_weights))
    step = DAYS * 86400 / messages
    recent: dict[str, list[tuple[str, str, MessageKind]]] = {}
    docs: list[dict[str, Any]] = []
    events: list[MessageAnalyzed] = []
    for n in range(messages):
        at = START + timedelta(seconds=n * step + rng.random() * step)
        channel = f"ch{int(rng.random() ** 2 * CHANNELS)}"
        bot = rng.random() < 0.01
        author = f"bot{rng.randrange(BOTS)}" if bot else rng.choices(names, cum_weights=weights)[0]
        kind = rng.choices(kinds, cum_weights=kind_cum)[0]
        message_id = f"discord:{COMMUNITY}:{n}"
        reply_to: str | None = None
        mentions: list[dict[str, str]] = []
        text = "some words about the thing"
        history = recent.setdefault(channel, [])
        if kind in {MessageKind.ANSWER, MessageKind.GRATITUDE} and history:
            wanted = MessageKind.QUESTION if kind is MessageKind.ANSWER else MessageKind.ANSWER
            parent = next((h for h in reversed(history[-30:]) if h[2] is wanted), history[-1])
            if rng.random() < 0.5:
                reply_to = parent[0]
            else:
                mentions = [{"member_id": f"discord:{COMMUNITY}:{parent[1]}", "name": parent[1]}]
            if kind is MessageKind.GRATITUDE:
                text = "thanks, that worked"
        member = Member(
            id=f"discord:{COMMUNITY}:{author}", native_id=author, name=author, is_bot=bot
        )
        analysis = Analysis(
            kind=kind,
            moderation=ModerationScores(toxicity=0.9 if kind is MessageKind.TOXIC else 0.0),
        )
        docs.append(
            {
                "_id": message_id,
                "community_id": COMMUNITY,
                "channel": {"id": channel, "name": channel},
                "author": member.model_dump(),
                "text": text,
                "created_at": at,
                "reply_to_id": reply_to,
                "mentions": mentions,
                "reactions": [{"emoji": "+1", "count": rng.randrange(4)}]
                if rng.random() < 0.1
                else [],
                "analysis": analysis.model_dump(mode="json"),
            }
        )
        events.append(
            MessageAnalyzed(
                community_id=COMMUNITY,
                payload=AnalyzedMessage(
                    message_id=message_id,
                    platform=Platform.DISCORD,
                    community_id=COMMUNITY,
                    channel=ChannelRef(id=channel, name=channel),
                    reply_to_id=reply_to,
                    author=member,
                    created_at=at,
                    analysis=analysis,
                    analyzed_at=at,
                ),
            )
        )
        history.append((message_id, author, kind))
        if len(history) > 200:
            del history[:100]
    return docs, events


async def timed(
    runs: int, query: Callable[[], Awaitable[object]], *, first: str | None = None
) -> tuple[float, float]:
    """p50 and p99 in ms over ``runs`` calls after one untimed call (emitted as
    ``first`` when named: the cold call)."""
    started = time.perf_counter()
    await query()
    if first is not None:
        emit(first, (time.perf_counter() - started) * 1000, "ms")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await query()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def prepare(db: Database, docs: list[dict[str, Any]]) -> None:
    """Store the messages with the indexes the classifier gives them."""
    await db["messages"].create_indexes(
        [
            IndexModel(
                [("community_id", 1), ("author.id", 1), ("created_at", 1), ("_id", 1)],
                name="author_time",
            ),
            IndexModel([("community_id", 1), ("created_at", 1), ("_id", 1)], name="community_time"),
        ]
    )
    for start in range(0, len(docs), 20_000):
        await db["messages"].insert_many(docs[start : start + 20_000], ordered=False)
    authors = {d["author"]["id"]: d["author"] for d in docs}
    await db["members"].insert_many(
        [{"_id": k, "community_id": COMMUNITY, **v} for k, v in authors.items()]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--members", type=int, default=4_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--database",
        help="Use this database and keep it; when it already holds the rollups of an earlier "
        "run, only the queries are timed.",
    )
    args = parser.parse_args()
    keep = args.keep or args.database is not None
    settings = MongoSettings(mongodb_db=args.database or f"pepite_bench_lb_{uuid.uuid4().hex[:8]}")
    async with mongo_database(settings, app_name="bench", indexes=SCORES_INDEXES) as db:
        try:
            if not await db["leaderboard_monthly"].find_one({"community_id": COMMUNITY}):
                await feed(db, args.messages, args.members, args.seed)
            await time_queries(db, args.runs)
        finally:
            if not keep:
                await db.client.drop_database(settings.mongodb_db)
            else:
                emit("leaderboard_bench_database", 0, "kept", database=settings.mongodb_db)


async def feed(db: Database, messages: int, members: int, seed: int) -> None:
    """Store the generated messages and score them through the handler, timed."""
    docs, events = generate(messages, members, seed)
    await prepare(db, docs)
    handler = ScoresHandler(
        ScoreUpdater(ScoresRepository(db), ScoringPolicy(daily_caps=DEFAULT_DAILY_CAPS))
    )
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        await handler(events[start : start + BATCH])
    elapsed = time.perf_counter() - started
    emit(
        "leaderboard_score_updates_per_s",
        len(events) / elapsed,
        "messages/s",
        messages=len(events),
        batch=BATCH,
    )
    counts = {
        name: await db[name].estimated_document_count()
        for name in (
            "leaderboard_contributions",
            "leaderboard_daily",
            "leaderboard_monthly",
            "leaderboard_seasonal",
        )
    }
    emit("leaderboard_rollup_documents", sum(counts.values()), "documents", **counts)


def _stages(plan: Mapping[str, Any]) -> list[str]:
    """The stage names of a winning plan, outermost first."""
    names = [str(plan.get("stage", "?"))]
    for child in ("inputStage", "queryPlan"):
        if isinstance(plan.get(child), Mapping):
            names.extend(_stages(plan[child]))
    for inputs in plan.get("inputStages") or []:
        names.extend(_stages(inputs))
    return names


def _find_key(doc: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in an explain output."""
    if isinstance(doc, Mapping):
        if key in doc:
            return doc[key]
        for value in doc.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for value in doc:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


async def explain_plans(db: Database, name: str, theme: Theme, period: Period) -> None:
    """What MongoDB does for each rollup a query reads: index keys and documents
    examined, members returned, plan stages (a covered read examines no document)."""
    parts = rollup_parts(COMMUNITY, theme, period)
    field = f"points.{theme.value}"
    for n, part in enumerate(parts):
        collection = db[part.collection]
        if len(parts) == 1 and part.label is not None:
            # The page read in index order, as LeaderboardReader.ranking does.
            explained = await (
                collection.find(part.match, {"_id": 0, "member_id": 1, field: 1})
                .sort([(field, -1), ("member_id", 1)])
                .limit(20)
                .hint(part.hint)
                .explain()
            )
            how = "page"
        else:
            explained = await db.command(
                {
                    "explain": {
                        "aggregate": part.collection,
                        "pipeline": [
                            {"$match": part.match},
                            {"$group": {"_id": "$member_id", "p": {"$sum": f"${field}"}}},
                        ],
                        "cursor": {},
                        "hint": part.hint,
                    },
                    "verbosity": "executionStats",
                }
            )
            how = "sum"
        stats = _find_key(explained, "executionStats") or {}
        plan = _find_key(explained, "winningPlan") or {}
        emit(
            f"leaderboard_plan_{name}",
            float(stats.get("totalKeysExamined", -1)),
            "index keys",
            part=n,
            read=how,
            collection=part.collection,
            index=part.hint,
            docs_examined=stats.get("totalDocsExamined"),
            returned=stats.get("nReturned"),
            server_ms=stats.get("executionTimeMillis"),
            stages=" < ".join(_stages(plan)),
        )


async def time_queries(db: Database, runs: int) -> None:
    """p50 and p99 of each query, after one untimed warm-up run."""
    reader = LeaderboardReader(db)
    event = LeaderboardEvent(
        event_id="jam",
        name="Jam",
        first=date(2024, 5, 6),
        last=date(2024, 5, 19),
        channels=["ch0", "ch1", "ch2"],
    )
    await LeaderboardConfigRepository(db).put_event(COMMUNITY, event)
    queries: dict[str, Callable[[], Awaitable[object]]] = {
        "month": lambda: reader.leaderboard(COMMUNITY, Theme.HELPFULNESS, month_period("2024-05")),
        "season": lambda: reader.leaderboard(COMMUNITY, Theme.ACTIVITY, season_period("2024-Q2")),
        "custom_event": lambda: reader.leaderboard(COMMUNITY, Theme.HELPFULNESS, event.period()),
        "range_across_months": lambda: reader.leaderboard(
            COMMUNITY, Theme.KINDNESS, range_period(date(2024, 4, 15), date(2024, 6, 14))
        ),
    }
    board, _ = await reader.leaderboard(COMMUNITY, Theme.HELPFULNESS, month_period("2024-05"))
    emit("leaderboard_month_members", board.members, "members", theme="helpfulness")
    top = board.entries[0].member_id
    queries["explanation"] = lambda: reader.standing(
        COMMUNITY, top, Theme.HELPFULNESS, month_period("2024-05")
    )
    for name, query in queries.items():
        p50, p99 = await timed(runs, query, first=f"leaderboard_query_{name}_first")
        emit(f"leaderboard_query_{name}_p50", p50, "ms", runs=runs)
        emit(f"leaderboard_query_{name}_p99", p99, "ms", runs=runs)
    # Where the time goes: each part of a query alone, and MongoDB's plans.
    periods = {
        "month": (Theme.HELPFULNESS, month_period("2024-05")),
        "season": (Theme.ACTIVITY, season_period("2024-Q2")),
        "custom_event": (Theme.HELPFULNESS, event.period()),
        "range_across_months": (Theme.KINDNESS, range_period(date(2024, 4, 15), date(2024, 6, 14))),
    }
    parts: dict[str, Callable[[], Awaitable[object]]] = {}
    for name, (theme, period) in periods.items():
        page, _ = await reader.ranking(COMMUNITY, theme, period, limit=20)
        members = [member_id for _, member_id, _ in page]
        parts[f"{name}_ranking"] = partial(reader.ranking, COMMUNITY, theme, period, limit=20)
        parts[f"{name}_names"] = partial(reader.names, COMMUNITY, members)
        parts[f"{name}_titles"] = partial(reader.titles, COMMUNITY, members, period.last)
    month = month_period("2024-05")
    parts["explanation_rank"] = partial(reader.rank_of, COMMUNITY, top, Theme.HELPFULNESS, month)
    parts["explanation_messages"] = partial(
        reader.contributions, COMMUNITY, top, Theme.HELPFULNESS, month, limit=51
    )
    parts["explanation_metrics"] = partial(reader.period_metrics, COMMUNITY, top, month)
    for name, part in parts.items():
        p50, p99 = await timed(max(10, runs // 4), part)
        emit(f"leaderboard_part_{name}_p50", p50, "ms", runs=max(10, runs // 4))
        emit(f"leaderboard_part_{name}_p99", p99, "ms", runs=max(10, runs // 4))
    for name, (theme, period) in periods.items():
        await explain_plans(db, name, theme, period)


if __name__ == "__main__":
    asyncio.run(main())
