"""FAQ answerer quality: does the knowledge base of the past answer the questions that came next?

    uv run --frozen python bench/faq_eval.py [--community sample] [--source-db pepite]
                                              [--review 30]

Reads the messages already analyzed in the demo database (``pepite``, community
``sample``: 69,664 messages, made by ``make demo``); nothing there is written. The
knowledge base is built in a throwaway database that is dropped at the end.

Method:

1. The community's days (UTC) in order: the first 80% are the past, the last 20% the
   test. Question → accepted answer pairs are mined from the past with the digest
   service's miner (:func:`pepite_digest.knowledge.mine_pairs`), embedded and stored
   with the knowledge lib, exactly as the service does.
2. Test questions: every question of the last 20% that got an answer in the data (the
   same miner, run over the test days; the day before is read for context only).
3. Each is asked through :class:`pepite_knowledge.KnowledgeBase` (embedding, index,
   ranking and calibrated confidence as the API runs them), timed end to end.
4. A retrieved entry is a *correct source pair* when its answer says what the real
   answer said, judged without labels (see ``JUDGE``): the two answers' embeddings have
   a cosine of at least ``--answer-cosine`` (0.7), or both name the same concrete thing:
   a URL, a file path, a command-line option, a package installed, or a command after
   ``sudo``. Top-1 and top-3 hit rates count test questions with a correct entry among
   the first one or three.
5. Calibration and threshold use the past only: its days are split again in time order
   (first 75% as the knowledge base, last 25% as questions); the logistic curve from
   score to confidence is fitted there (Platt scaling) and the threshold is the lowest
   confidence whose answers are correct at least ``--target-precision`` of the time on
   that split. The test 20% is never used to choose anything.

The judge, the split and the fit are :mod:`pepite_digest.knowledge_calibration`'s,
which ``pepite knowledge calibrate`` runs on a community's whole history to store its
curve; ``answered_rate_community_curve`` is what /ask answers with that curve.

Prints one JSON line per figure (``{"metric": ..., "value": ..., "unit": ...}``), then
with ``--review N`` a sample of N test cases with the judge's verdict, to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pymongo import AsyncMongoClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

import stack  # noqa: E402

from pepite_digest.knowledge import MinedPair  # noqa: E402
from pepite_digest.knowledge_calibration import (  # noqa: E402
    JUDGE,
    Judge,
    choose_threshold,
    fit_platt,
    past_pairs,
    questions_after,
    split_days,
)
from pepite_digest.repository import DigestRepository, PeriodMessage  # noqa: E402
from pepite_embeddings import Embedder  # noqa: E402
from pepite_kit.mongo import ensure_indexes  # noqa: E402
from pepite_knowledge import (  # noqa: E402
    CALIBRATION,
    DEFAULT_CONFIDENCE_THRESHOLD,
    KNOWLEDGE_INDEXES,
    Calibration,
    KnowledgeBase,
    KnowledgeRepository,
    Match,
    curve_for,
    embed_entries,
    reply_from,
)


def emit(metric: str, value: float, unit: str, **labels: Any) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit, **labels}))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Case:
    """One test question, what the data answered, and what the knowledge base said."""

    pair: MinedPair
    matches: list[Match]
    correct: list[bool]
    latency_s: float


async def build_kb(
    repository: KnowledgeRepository,
    embedder: Embedder,
    community_id: str,
    pairs: Sequence[MinedPair],
) -> None:
    now = datetime.now(UTC)
    entries = [p.entry(community_id, now) for p in pairs]
    vectors = await asyncio.to_thread(embed_entries, embedder, entries)
    for start in range(0, len(entries), 1000):
        await repository.upsert(
            list(zip(entries[start : start + 1000], vectors[start : start + 1000], strict=True))
        )


async def ask_all(
    knowledge: KnowledgeBase, community_id: str, pairs: Sequence[MinedPair], judge: Judge
) -> list[Case]:
    cases = []
    for n, pair in enumerate(pairs, 1):
        # What KnowledgeBase.ask does, keeping the matches to judge them.
        started = time.perf_counter()
        matches = await knowledge.search(community_id, pair.question_text)
        reply_from(matches, threshold=1.0)
        latency = time.perf_counter() - started
        judge.prepare([pair.answer_text, *(m.entry.answer for m in matches)])
        correct = [judge.same(m.entry.answer, pair.answer_text) for m in matches]
        cases.append(Case(pair, matches, correct, latency))
        if n % 250 == 0:
            say(f"  asked {n}/{len(pairs)}")
    return cases


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


class Bench:
    """The source messages, the embedder and judge, and throwaway knowledge bases."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], args: argparse.Namespace) -> None:
        self.client = client
        self.args = args
        self.embedder = Embedder()
        self.judge = Judge(self.embedder, args.answer_cosine)
        self.db_names: list[str] = []

    async def knowledge_base(self, pairs: Sequence[MinedPair]) -> KnowledgeBase:
        db_name = f"pepite_bench_faq_{uuid.uuid4().hex[:8]}"
        self.db_names.append(db_name)
        db = self.client[db_name]
        await ensure_indexes(db, KNOWLEDGE_INDEXES)
        repository = KnowledgeRepository(db)
        await build_kb(repository, self.embedder, self.args.community, pairs)
        return KnowledgeBase(repository, self.embedder)

    async def evaluate(
        self, history: Sequence[PeriodMessage], cut: datetime
    ) -> tuple[int, list[Case]]:
        """Knowledge mined before ``cut``, asked the answered questions from ``cut`` on."""
        pairs = past_pairs(history, cut)
        knowledge = await self.knowledge_base(pairs)
        return len(pairs), await ask_all(
            knowledge, self.args.community, questions_after(history, cut), self.judge
        )

    async def tune(self, past: Sequence[PeriodMessage]) -> tuple[Calibration, float]:
        """Calibration curve and threshold, from the past alone (split again in time)."""
        inner_cut = split_days(past, 0.75)
        say(f"tuning: knowledge before {inner_cut:%Y-%m-%d}, questions after it")
        _, cases = await self.evaluate(past, inner_cut)
        scores = np.array([c.matches[0].score if c.matches else 0.0 for c in cases])
        labels = np.array([1 if c.correct and c.correct[0] else 0 for c in cases])
        calibration = Calibration(*fit_platt(scores, labels))
        confidences = np.array([calibration.confidence(s) for s in scores])
        threshold = choose_threshold(confidences, labels, self.args.target_precision)
        emit("tuning_questions", len(cases), "questions")
        emit("tuning_top1_hit_rate", float(labels.mean()) if len(labels) else 0.0, "ratio")
        emit("calibration_slope", calibration.slope, "")
        emit("calibration_intercept", calibration.intercept, "")
        emit("threshold", threshold, "confidence", target_precision=self.args.target_precision)
        return calibration, threshold

    async def close(self) -> None:
        for name in self.db_names:
            await self.client.drop_database(name)
        await self.client.close()


def report(cases: Sequence[Case], calibration: Calibration, threshold: float) -> list[Case]:
    """Print the test figures; the cases the knowledge base would have answered."""
    given = [
        c for c in cases if c.matches and calibration.confidence(c.matches[0].score) >= threshold
    ]
    latencies = [c.latency_s for c in cases]
    emit("test_questions", len(cases), "questions", split="last 20% of days")
    emit("top1_hit_rate", _share(cases, 1), "ratio")
    emit("top3_hit_rate", _share(cases, 3), "ratio")
    emit("answered_rate", len(given) / len(cases) if cases else 0.0, "ratio")
    emit("precision_above_threshold", _share(given, 1), "ratio", answered=len(given))
    shipped = [
        c
        for c in cases
        if c.matches and CALIBRATION.confidence(c.matches[0].score) >= DEFAULT_CONFIDENCE_THRESHOLD
    ]
    emit("answered_rate_shipped_curve", len(shipped) / len(cases) if cases else 0.0, "ratio")
    emit("precision_shipped_curve", _share(shipped, 1), "ratio", answered=len(shipped))
    # What the API does once `pepite knowledge calibrate` stored the curve fitted on the
    # past: the community's curve for mined entries, at the default threshold.
    community = [
        c
        for c in cases
        if c.matches
        and curve_for(c.matches[0].entry, CALIBRATION, calibration)[0].confidence(
            c.matches[0].score
        )
        >= DEFAULT_CONFIDENCE_THRESHOLD
    ]
    emit("answered_rate_community_curve", len(community) / len(cases) if cases else 0.0, "ratio")
    emit("precision_community_curve", _share(community, 1), "ratio", answered=len(community))
    emit("ask_latency_p50", 1000 * percentile(latencies, 50), "ms")
    emit("ask_latency_p99", 1000 * percentile(latencies, 99), "ms")
    return given


async def run(args: argparse.Namespace) -> None:
    env = stack.env()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["MONGODB_URI"], tz_aware=True)
    say(f"reading community {args.community!r} from database {args.source_db!r} (read only)")
    messages = await DigestRepository(client[args.source_db]).messages(
        args.community, datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
    )
    analyzed = sum(1 for m in messages if m.kind is not None)
    if not analyzed:
        raise SystemExit(f"no analyzed messages of {args.community!r}: run `make demo` first")
    emit("messages", len(messages), "messages", analyzed=analyzed, source_db=args.source_db)
    bench = Bench(client, args)
    try:
        cut = split_days(messages, 0.8)
        calibration, threshold = await bench.tune([m for m in messages if m.created_at < cut])
        say(f"test: knowledge before {cut:%Y-%m-%d}, questions from then on")
        entries, cases = await bench.evaluate(messages, cut)
        print(json.dumps({"judge": JUDGE.format(cosine=args.answer_cosine)}))
        emit("knowledge_entries", entries, "entries", split="first 80% of days")
        report(cases, calibration, threshold)
        if args.review:
            review(cases, args.review, calibration, threshold)
    finally:
        await bench.close()


def _share(cases: Sequence[Case], k: int) -> float:
    return sum(1 for c in cases if any(c.correct[:k])) / len(cases) if cases else 0.0


def review(cases: Sequence[Case], count: int, calibration: Calibration, threshold: float) -> None:
    """A random sample of cases to read: question, real answer, the top entry, the verdict."""
    for case in random.Random(7).sample(list(cases), min(count, len(cases))):
        top = case.matches[0] if case.matches else None
        confidence = calibration.confidence(top.score) if top else 0.0
        print(
            json.dumps(
                {
                    "question": case.pair.question_text,
                    "real_answer": case.pair.answer_text,
                    "kb_question": top.entry.question if top else None,
                    "kb_answer": top.entry.answer if top else None,
                    "confidence": round(confidence, 3),
                    "answered": confidence >= threshold,
                    "judge_top1": bool(case.correct and case.correct[0]),
                },
                ensure_ascii=False,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--community", default="sample")
    parser.add_argument("--source-db", default="pepite", help="Database `make demo` filled.")
    parser.add_argument("--answer-cosine", type=float, default=0.7)
    parser.add_argument("--target-precision", type=float, default=0.5)
    parser.add_argument("--review", type=int, default=0, help="Print this many cases to read.")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
