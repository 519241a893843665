"""LLM token benchmark: tokens and dollars per message, batched labeling vs one call each.

Runs the OpenAI analyzer over ~2,000 sample-community messages (the first N of each
channel, replies carrying their parent's text as context) twice, against the fake
OpenAI-compatible server of the tests: once with ``llm_batch_size`` messages per call
(the configured size, 40 by default) and once with one message per call, the naive
baseline. Each mode gets an empty database, so its cache starts cold.

Prints one JSON line per figure: ``{"metric": ..., "value": ..., "unit": ..., "mode": ...}``.
Token counts come from the fake server, which counts with a WordPiece tokenizer, not
OpenAI's o200k: an upper estimate, JSON especially (see tests/fakes/openai_server.py).
Dollars use the configured price of the configured model (``PEPITE_LLM_PRICES``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

import stack  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest  # noqa: E402
from pepite_classifier.analysis.llm_repository import (  # noqa: E402
    LLM_INDEXES,
    LlmRepository,
    MonthlyUsage,
    month_of,
)
from pepite_classifier.analysis.openai_analyzer import OpenAIAnalyzer  # noqa: E402
from pepite_classifier.settings import Settings  # noqa: E402
from pepite_contracts import Analysis, AnalyzerName, MessageKind  # noqa: E402
from pepite_kit.mongo import ensure_indexes  # noqa: E402

COMMUNITY = "bench:llm"
#: Consumer-sized chunks, as the classifier would hand them over.
CHUNK = 200


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"metric": metric, "value": round(value, 6), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


class NoLocal:
    """Stands in for the local analyzer; the benchmark expects every message to be sent."""

    name = AnalyzerName.LOCAL

    def __init__(self) -> None:
        self.count = 0

    async def analyze(self, requests: Any) -> list[AnalysisOutcome]:
        self.count += len(requests)
        return [AnalysisOutcome(Analysis(kind=MessageKind.SOCIAL)) for _ in requests]

    async def aclose(self) -> None:
        return None


def load_requests(folder: Path, per_file: int) -> list[AnalysisRequest]:
    """The first ``per_file`` human messages of each channel, replies with their parent."""
    requests: list[AnalysisRequest] = []
    for path in sorted(folder.glob("*.json")):
        export = json.loads(path.read_text(encoding="utf-8"))
        texts = {m["id"]: m.get("content") or "" for m in export["messages"]}
        taken = 0
        for message in export["messages"]:
            if taken == per_file:
                break
            if message["type"] not in {"Default", "Reply"} or message["author"].get("isBot"):
                continue
            if not (message.get("content") or "").strip():
                continue
            parent = (message.get("reference") or {}).get("messageId")
            requests.append(
                AnalysisRequest(
                    message_id=f"{COMMUNITY}:{message['id']}",
                    community_id=COMMUNITY,
                    text=message["content"],
                    context=(texts[parent],) if parent in texts else (),
                )
            )
            taken += 1
    return requests


async def run_mode(
    mode: str,
    batch_size: int,
    requests: list[AnalysisRequest],
    fake: FakeOpenAIServer,
    mongodb_uri: str,
) -> MonthlyUsage:
    """Analyze every request with ``batch_size`` messages per call in a fresh database."""
    fake.reset()
    db_name = f"pepite_bench_llm_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        analyzer=AnalyzerName.OPENAI,
        openai_base_url=fake.base_url,
        openai_api_key="bench",
        mongodb_uri=mongodb_uri,
        mongodb_db=db_name,
        llm_batch_size=batch_size,
        llm_monthly_budget_usd=1_000.0,
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    local = NoLocal()
    try:
        db = client[db_name]
        await ensure_indexes(db, LLM_INDEXES)
        repository = LlmRepository(db)
        analyzer = OpenAIAnalyzer(settings, repository, local)
        started = time.monotonic()
        for start in range(0, len(requests), CHUNK):
            await analyzer.analyze(requests[start : start + CHUNK])
            done = min(start + CHUNK, len(requests))
            print(f"{mode}: {done}/{len(requests)} messages", file=sys.stderr, flush=True)
        elapsed = time.monotonic() - started
        await analyzer.aclose()
        usage = await repository.usage(COMMUNITY, month_of(datetime.now(UTC)))
    finally:
        await client.drop_database(db_name)
        await client.close()
    billed = sum(r.usage.get("total_tokens", 0) for r in fake.completions())
    if billed != usage.prompt_tokens + usage.completion_tokens or local.count:
        raise SystemExit(f"{mode}: accounting does not match the server's usage")
    price = settings.llm_prices[settings.openai_model]
    sent = usage.messages_sent
    common = {"mode": mode, "batch_size": batch_size, "model": settings.openai_model}
    emit("llm_messages", len(requests), "messages", **common)
    emit("llm_messages_sent", sent, "messages", **common)
    emit("llm_calls", usage.calls, "calls", **common)
    emit("llm_prompt_tokens_per_message", usage.prompt_tokens / sent, "tokens", **common)
    emit("llm_completion_tokens_per_message", usage.completion_tokens / sent, "tokens", **common)
    emit(
        "llm_total_tokens_per_message",
        (usage.prompt_tokens + usage.completion_tokens) / sent,
        "tokens",
        tokenizer=fake.tokens.name,
        **common,
    )
    emit(
        "llm_usd_per_1k_messages",
        1000 * usage.cost_usd / sent,
        "USD",
        input_per_mtok=price.input_per_mtok,
        output_per_mtok=price.output_per_mtok,
        **common,
    )
    emit("llm_seconds_against_fake_server", elapsed, "s", **common)
    return usage


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("PEPITE_SHARED_DIR", REPO_ROOT.parent / "shared"))
    parser.add_argument("--data", type=Path, default=default_data / "datasets" / "sample-community")
    parser.add_argument("--per-file", type=int, default=400, help="messages per channel file")
    parser.add_argument("--skip-naive", action="store_true", help="only the batched mode")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"sample community not found at {args.data} (set PEPITE_SHARED_DIR)")

    requests = load_requests(args.data, args.per_file)
    mongodb_uri = stack.env()["MONGODB_URI"]
    batch_size = Settings().llm_batch_size
    with FakeOpenAIServer() as fake:
        batched = await run_mode("batched", batch_size, requests, fake, mongodb_uri)
        if args.skip_naive:
            return
        naive = await run_mode("naive", 1, requests, fake, mongodb_uri)
    per_batched = (batched.prompt_tokens + batched.completion_tokens) / batched.messages_sent
    per_naive = (naive.prompt_tokens + naive.completion_tokens) / naive.messages_sent
    emit("llm_tokens_batched_over_naive", per_batched / per_naive, "ratio")
    emit("llm_cost_batched_over_naive", batched.cost_usd / naive.cost_usd, "ratio")


if __name__ == "__main__":
    asyncio.run(main())
