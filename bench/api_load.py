"""API load benchmark: insights and message lists over a generated 400,000-message community.

Generates (once; later runs reuse it) a community the size of the largest target
customer: 400,000 messages over a year, 4,000 members, 40 channels, analyzed and counted
in the rollups the way the classifier leaves them. Starts the API as a process, then 50
concurrent clients call the insights and messages endpoints for a fixed time, first as
fast as they are answered (the most the API serves), then paced at ``--rate`` requests/s
together (the latencies clients see at that load), with a realistic mix: reports over
days and months, with kind and channel filters; message lists newest first, by kind,
channel, member, sentiment, time window, and word searches.

Prints JSON lines: ``{"metric": ..., "value": ..., "unit": ...}`` (throughput, p50, p99,
per endpoint too). The clients speak HTTP/1.1 over keep-alive connections with a few
lines of asyncio, so that the load generator costs the 2-core machine as little as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

from pepite_classifier.repository import INDEXES as CLASSIFIER_INDEXES  # noqa: E402
from pepite_classifier.rollups import rollup_changes, state_from_document  # noqa: E402
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository  # noqa: E402
from pepite_contracts import INSIGHT_KINDS, Analysis, MessageKind, Sentiment  # noqa: E402
from pepite_kit import MongoSettings  # noqa: E402
from pepite_kit.mongo import ensure_indexes, mongo_database  # noqa: E402
from pepite_kit.search import SEARCH_TERMS, search_terms  # noqa: E402
from services import ServiceProcess  # noqa: E402

COMMUNITY = "bench-api"
#: Bump when the generated data changes shape, so an old copy is not reused.
GENERATION = 2
START = datetime(2025, 1, 1, tzinfo=UTC)

KINDS: list[tuple[MessageKind, float]] = [
    (MessageKind.SOCIAL, 0.30),
    (MessageKind.QUESTION, 0.18),
    (MessageKind.ANSWER, 0.16),
    (MessageKind.PROBLEM, 0.08),
    (MessageKind.GRATITUDE, 0.06),
    (MessageKind.FEATURE_REQUEST, 0.04),
    (MessageKind.SATISFACTION, 0.04),
    (MessageKind.COMPLAINT, 0.03),
    (MessageKind.RESOURCE, 0.04),
    (MessageKind.ENCOURAGEMENT, 0.03),
    (MessageKind.ANNOUNCEMENT, 0.02),
    (MessageKind.SPAM, 0.01),
    (MessageKind.TOXIC, 0.01),
]
SENTIMENTS = [Sentiment.NEGATIVE, Sentiment.NEUTRAL, Sentiment.POSITIVE]


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"metric": metric, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def generate(db_name: str, messages: int, members: int, channels: int) -> None:
    """Write the community: messages with analyses, members, channels, topics, rollups."""
    rng = random.Random(20261121)
    words = vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]  # Zipf: a few words dominate
    kinds, kind_weights = zip(*KINDS, strict=True)
    topic_ids = [f"{COMMUNITY}:t{n}" for n in range(30)]
    client: MongoClient[dict[str, Any]] = MongoClient(MongoSettings().mongodb_uri, tz_aware=True)
    client.drop_database(db_name)
    db = client[db_name]
    span_s = 365 * 86400
    batch: list[dict[str, Any]] = []
    started = time.monotonic()

    async def indexes() -> None:
        settings = MongoSettings(mongodb_db=db_name)
        async with mongo_database(settings, app_name="bench") as adb:
            await ensure_indexes(adb, [*CLASSIFIER_INDEXES, *ROLLUP_INDEXES])

    asyncio.run(indexes())
    rollup_docs: list[dict[str, Any]] = []
    for n in range(messages):
        kind = rng.choices(kinds, kind_weights)[0]
        sentiment = rng.choice(SENTIMENTS)
        channel = rng.randrange(channels)
        author = int(rng.paretovariate(1.2)) % members
        created = START + timedelta(seconds=int(span_s * n / messages) + rng.randint(0, 59))
        text = " ".join(rng.choices(words, weights, k=rng.randint(4, 30)))
        document = {
            "_id": f"discord:{COMMUNITY}:{10**9 + n}",
            "platform": "discord",
            "community_id": COMMUNITY,
            "native_id": str(10**9 + n),
            "channel": {"id": f"ch{channel}", "name": f"channel-{channel}"},
            "thread": None,
            "reply_to_id": None,
            "author": {
                "id": f"discord:{COMMUNITY}:{author}",
                "native_id": str(author),
                "name": f"member{author}",
                "display_name": f"Member {author}",
                "is_bot": False,
            },
            "text": text,
            SEARCH_TERMS: search_terms(text),
            "created_at": created,
            "edited_at": None,
            "attachments": [],
            "reactions": [],
            "mentions": [],
            "raw": {},
            "analysis": Analysis(kind=kind, sentiment=sentiment, language="en").model_dump(
                mode="python"
            ),
            "topic_id": rng.choice(topic_ids) if kind in INSIGHT_KINDS else None,
        }
        batch.append(document)
        rollup_docs.append(document)
        if len(batch) == 5000:
            db["messages"].insert_many(batch, ordered=False)
            batch = []
            if (n + 1) % 50_000 == 0:
                print(
                    f"generated {n + 1}/{messages} messages ({time.monotonic() - started:.0f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    if batch:
        db["messages"].insert_many(batch, ordered=False)

    async def rollups() -> None:
        settings = MongoSettings(mongodb_db=db_name)
        async with mongo_database(settings, app_name="bench") as adb:
            await RollupRepository(adb).apply(
                rollup_changes((None, state_from_document(doc)) for doc in rollup_docs)
            )

    asyncio.run(rollups())
    now = datetime.now(UTC)
    db["members"].insert_many(
        [
            {
                "_id": f"discord:{COMMUNITY}:{m}",
                "community_id": COMMUNITY,
                "platform": "discord",
                "native_id": str(m),
                "name": f"member{m}",
                "display_name": f"Member {m}",
                "is_bot": False,
                "first_seen_at": START,
                "last_seen_at": START + timedelta(days=365),
            }
            for m in range(members)
        ]
    )
    db["channels"].insert_many(
        [
            {
                "_id": f"{COMMUNITY}:ch{c}",
                "community_id": COMMUNITY,
                "channel_id": f"ch{c}",
                "name": f"channel-{c}",
            }
            for c in range(channels)
        ]
    )
    db["topics"].insert_many(
        [
            {
                "_id": topic_id,
                "community_id": COMMUNITY,
                "name": " ".join(rng.sample(words[50:500], 3)),
                "keywords": rng.sample(words[50:500], 5),
                "size": 1000 - i,
                "kinds": {},
                "sample_ids": [],
                "is_other": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for i, topic_id in enumerate(topic_ids)
        ]
    )
    db["bench_meta"].insert_one(
        {"_id": "generation", "generation": GENERATION, "messages": messages, "words": words}
    )
    print(f"generated in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)


def ensure_generated(db_name: str, messages: int, members: int, channels: int) -> list[str]:
    client: MongoClient[dict[str, Any]] = MongoClient(MongoSettings().mongodb_uri)
    meta = client[db_name]["bench_meta"].find_one({"_id": "generation"})
    if meta is None or meta["generation"] != GENERATION or meta["messages"] != messages:
        generate(db_name, messages, members, channels)
        meta = client[db_name]["bench_meta"].find_one({"_id": "generation"})
    assert meta is not None
    return list(meta["words"])


def make_key(db_name: str) -> str:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "pepite"),
            "keys",
            "create",
            "--community",
            COMMUNITY,
            "--scope",
            "read",
            "--name",
            "bench",
            "--rate-limit",
            "100000000",
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PEPITE_MONGODB_DB": db_name},
    ).stdout
    return str(json.loads(out)["key"])


def request_mix(words: list[str], members: int, channels: int) -> list[tuple[str, str]]:
    """(endpoint, path) pairs; clients pick among them at random, half insights."""
    rng = random.Random(7)
    base = f"/v1/communities/{COMMUNITY}"
    insights = [f"{base}/insights?days={d}" for d in (7, 30, 90, 365)]
    insights += [f"{base}/insights?months={m}" for m in (1, 3, 6, 12)]
    insights += [f"{base}/insights?days=30&kind={k}" for k in ("question", "problem")]
    insights += [f"{base}/insights?days=30&channel_id=ch{c}" for c in range(0, channels, 8)]
    messages = [f"{base}/messages"] * 4
    messages += [f"{base}/messages?kind={k.value}" for k, _ in KINDS[:8]]
    messages += [f"{base}/messages?channel_id=ch{c}" for c in range(channels)]
    messages += [f"{base}/messages?author_id=discord:{COMMUNITY}:{m}" for m in range(0, 40)]
    messages += [f"{base}/messages?sentiment={s.value}" for s in SENTIMENTS]
    for _ in range(20):
        day = START + timedelta(days=rng.randrange(360))
        since = day.strftime("%Y-%m-%dT%H:%M:%SZ")
        until = (day + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        messages.append(f"{base}/messages?since={since}&until={until}")
    # Searches for words of middling frequency (a topic, a product name), as people do.
    messages += [f"{base}/messages?q={w}" for w in rng.sample(words[200:2000], 40)]
    mix = [("insights", path) for path in insights] + [("messages", p) for p in messages]
    weighted: list[tuple[str, str]] = []
    for endpoint, path in mix:
        share = len(insights) if endpoint == "messages" else len(messages)
        weighted.extend([(endpoint, path)] * share)
    return weighted


async def _client(
    *,
    port: int,
    key: str,
    mix: list[tuple[str, str]],
    deadline: float,
    warm_until: float,
    results: dict[str, list[float]],
    shapes: dict[str, list[float]],
    by_second: dict[int, list[float]],
    statuses: Counter[int],
    seed: int,
    interval_s: float | None,
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {key}\r\n"
    # Paced clients send on a schedule, and a late answer's wait counts from the time
    # the request was due (no coordinated omission): a stall shows in the latencies.
    due = time.perf_counter() + (rng.random() * interval_s if interval_s else 0.0)
    try:
        while True:
            if interval_s is not None:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                now = due
                due += interval_s
            else:
                now = time.perf_counter()
            if now >= deadline:
                return
            endpoint, path = rng.choice(mix)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode())
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if now >= warm_until:
                elapsed = time.perf_counter() - now
                results[endpoint].append(elapsed)
                shapes[f"{endpoint}:{shape(path)}"].append(elapsed)
                by_second[int(now - warm_until)].append(elapsed)
                statuses[status] += 1
    finally:
        writer.close()


def shape(path: str) -> str:
    """A request's filters, without their values: ``channel_id``, ``q``, ``since+until``."""
    _, _, query = path.partition("?")
    names = [pair.partition("=")[0] for pair in query.split("&") if pair]
    return "+".join(names) or "none"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def load(
    port: int,
    key: str,
    mix: list[tuple[str, str]],
    clients: int,
    seconds: float,
    *,
    rate: float | None = None,
) -> None:
    """Closed loop (each client sends as soon as answered) or, with ``rate``, paced."""
    prefix = "api" if rate is None else "api_paced"
    results: dict[str, list[float]] = defaultdict(list)
    shapes: dict[str, list[float]] = defaultdict(list)
    by_second: dict[int, list[float]] = defaultdict(list)
    statuses: Counter[int] = Counter()
    warm_up = 5.0
    start = time.perf_counter()
    warm_until = start + warm_up
    deadline = warm_until + seconds
    await asyncio.gather(
        *(
            _client(
                port=port,
                key=key,
                mix=mix,
                deadline=deadline,
                warm_until=warm_until,
                results=results,
                shapes=shapes,
                by_second=by_second,
                statuses=statuses,
                seed=seed,
                interval_s=clients / rate if rate else None,
            )
            for seed in range(clients)
        )
    )
    everything = [v for values in results.values() for v in values]
    emit(
        f"{prefix}_requests",
        len(everything),
        "requests",
        clients=clients,
        seconds=seconds,
        rate=rate,
    )
    emit(f"{prefix}_throughput", len(everything) / seconds, "requests/s", clients=clients)
    emit(f"{prefix}_latency_p50", 1000 * statistics.median(everything), "ms")
    emit(f"{prefix}_latency_p99", 1000 * percentile(everything, 0.99), "ms")
    for endpoint, values in sorted(results.items()):
        emit(f"{prefix}_{endpoint}_throughput", len(values) / seconds, "requests/s")
        emit(f"{prefix}_{endpoint}_latency_p50", 1000 * statistics.median(values), "ms")
        emit(f"{prefix}_{endpoint}_latency_p99", 1000 * percentile(values, 0.99), "ms")
    for name, values in sorted(shapes.items()):
        emit(
            f"{prefix}_shape_latency",
            1000 * percentile(values, 0.99),
            "ms p99",
            shape=name,
            requests=len(values),
            p50_ms=round(1000 * statistics.median(values), 1),
        )
    # Where the slowest answers were: one stall, or a steady tail.
    worst = sorted(by_second.items(), key=lambda item: max(item[1]), reverse=True)[:5]
    emit(
        f"{prefix}_worst_seconds",
        1000 * max(worst[0][1]) if worst else 0.0,
        "ms max",
        seconds={str(second): round(1000 * max(values), 1) for second, values in worst},
    )
    emit(
        f"{prefix}_non_2xx",
        sum(n for s, n in statuses.items() if not 200 <= s < 300),
        "responses",
        statuses={str(s): n for s, n in sorted(statuses.items())},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--members", type=int, default=4_000)
    parser.add_argument("--channels", type=int, default=40)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="requests/s the clients send together in the paced run (0: no paced run)",
    )
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--db", default="pepite_bench_api")
    args = parser.parse_args()

    words = ensure_generated(args.db, args.messages, args.members, args.channels)
    key = make_key(args.db)
    api = ServiceProcess(
        "api",
        args.port,
        env={
            "PEPITE_MONGODB_DB": args.db,
            "PEPITE_LOG_LEVEL": "WARNING",
            "PEPITE_KAFKA_TOPIC_PREFIX": "bench-api.",
            "PEPITE_API_WORKERS": str(args.workers),
        },
    ).start()
    try:
        # The first start builds the API's indexes (word search) over the messages.
        api.wait_healthy(timeout_s=600)
        mix = request_mix(words, args.members, args.channels)
        # At saturation first: the most it serves, and its latencies when it cannot keep up.
        asyncio.run(load(args.port, key, mix, args.clients, args.seconds))
        if args.rate > 0:
            # Then the same clients at the target rate: the latencies clients see.
            asyncio.run(load(args.port, key, mix, args.clients, args.seconds, rate=args.rate))
    finally:
        api.stop()


if __name__ == "__main__":
    main()
