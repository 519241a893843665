"""Topic clustering benchmark: seconds to recluster a community of N insight messages.

Stores N synthetic insight messages in a throwaway database: embeddings drawn around
40 random directions (cosine ~0.6 to their centre, like paraphrases) plus 30% of
unrelated ones, texts made of each group's words. Then reclusters twice: the first run
writes every message's topic, the second is the steady state (known topics kept).

Prints one JSON line per figure: ``{"metric": ..., "value": ..., "unit": ..., "run": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pymongo import AsyncMongoClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

import stack  # noqa: E402

from pepite_classifier.repository import INDEXES  # noqa: E402
from pepite_classifier.rollups_repository import ROLLUP_INDEXES  # noqa: E402
from pepite_classifier.topics import (  # noqa: E402
    TOPIC_INDEXES,
    EmbeddedInsight,
    TopicAssigner,
    TopicClusterer,
    TopicRepository,
    TopicSettings,
)
from pepite_contracts import INSIGHT_KINDS, Analysis  # noqa: E402
from pepite_kit.mongo import ensure_indexes  # noqa: E402

GROUPS = 40
DIM = 384
NOISE_SHARE = 0.3
COMMUNITY = "bench"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def emit(metric: str, value: float, unit: str, **labels: Any) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 3), "unit": unit, **labels}))


def synthetic(count: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Embeddings and texts: groups of paraphrase-like vectors, and unrelated ones."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(GROUPS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    words = [[f"w{g}x{i}" for i in range(6)] for g in range(GROUPS)]
    groups = rng.integers(0, GROUPS, count)
    noise = rng.normal(size=(count, DIM))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    unrelated = rng.random(count) < NOISE_SHARE
    vectors = np.where(unrelated[:, None], noise, 0.6 * centres[groups] + 0.8 * noise)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    texts = [
        "how do I fix this thing"
        if unrelated[n]
        else " ".join(rng.choice(words[groups[n]], 3, replace=False))
        for n in range(count)
    ]
    return vectors, texts


async def run(count: int) -> None:
    env = stack.env()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["MONGODB_URI"], tz_aware=True)
    db_name = f"pepite_bench_topics_{uuid.uuid4().hex[:8]}"
    db = client[db_name]
    try:
        await ensure_indexes(db, [*INDEXES, *ROLLUP_INDEXES, *TOPIC_INDEXES])
        vectors, texts = synthetic(count)
        kinds = sorted(INSIGHT_KINDS)
        ids = [f"discord:{COMMUNITY}:{n:08d}" for n in range(count)]
        docs = [
            {
                "_id": ids[n],
                "community_id": COMMUNITY,
                "channel": {"id": f"c{n % 5}", "name": f"channel-{n % 5}"},
                "author": {"id": f"discord:{COMMUNITY}:u{n % 997}"},
                "created_at": T0 + timedelta(minutes=n),
                "text": texts[n],
                "analysis": Analysis(kind=kinds[n % len(kinds)]).model_dump(),
            }
            for n in range(count)
        ]
        for start in range(0, count, 10_000):
            await db["messages"].insert_many(docs[start : start + 10_000])
        assigner = TopicAssigner(TopicRepository(db), similarity=TopicSettings().topic_similarity)
        for start in range(0, count, 5_000):
            await assigner.assign(
                COMMUNITY,
                [
                    EmbeddedInsight(ids[n], f"c{n % 5}", kinds[n % len(kinds)], T0, vectors[n])
                    for n in range(start, min(start + 5_000, count))
                ],
            )
        clusterer = TopicClusterer(db, TopicSettings())
        for label in ("first", "again"):
            started = time.perf_counter()
            result = await clusterer.recluster(COMMUNITY)
            emit("recluster_seconds", time.perf_counter() - started, "s", run=label, n=count)
            for step, seconds in result.timings.items():
                emit(f"recluster_{step}_seconds", seconds, "s", run=label, n=count)
            emit("topics", result.topics, "topics", run=label, n=count)
            emit("other_share", result.other / max(result.messages, 1), "ratio", run=label)
            emit("reassigned", result.reassigned, "messages", run=label, n=count)
    finally:
        await client.drop_database(db_name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="Insight messages.")
    args = parser.parse_args()
    asyncio.run(run(args.messages))


if __name__ == "__main__":
    main()
