"""Throughput of the local analyzer alone on the sample community's texts.

    uv run --frozen python bench/local_analyzer.py [--data DIR] [--batch N]

Reads every message of the DiscordChatExporter files in ``--data`` (the sample community
by default), with its bot flag, attachment count and the text it replies to, and runs
them through ``LocalAnalyzer.analyze_batch`` in batches. Prints JSON lines: messages per
second (analyzer only), the share of messages embedded, and the kinds found.
No cache: every embedding is computed, as in the service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from pepite_classifier.analysis.base import AnalysisRequest
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_embeddings.embedder import Embedder

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_requests(folder: Path) -> list[AnalysisRequest]:
    requests: list[AnalysisRequest] = []
    for path in sorted(folder.glob("*.json")):
        export = json.loads(path.read_text(encoding="utf-8"))
        texts: dict[str, str] = {}
        for message in export["messages"]:
            if message.get("type") == "GuildMemberJoin":
                continue
            texts[message["id"]] = message.get("content", "")
            reference = (message.get("reference") or {}).get("messageId")
            parent = texts.get(reference) if reference else None
            requests.append(
                AnalysisRequest(
                    message_id=message["id"],
                    community_id="sample",
                    text=message.get("content", ""),
                    context=(parent,) if parent else (),
                    author_is_bot=bool(message.get("author", {}).get("isBot")),
                    attachment_count=len(message.get("attachments", [])),
                )
            )
    return requests


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    shared = Path(os.environ.get("PEPITE_SHARED_DIR", REPO_ROOT.parent / "shared"))
    parser.add_argument("--data", type=Path, default=shared / "datasets" / "sample-community")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--limit", type=int, default=0, help="analyze only the first N messages")
    args = parser.parse_args()
    requests = load_requests(args.data)
    if args.limit:
        requests = requests[: args.limit]
    embedder = Embedder()
    embedder.embed(["warm up the model"])
    analyzer = LocalAnalyzer(embedder=embedder)
    analyzer.analyze_batch(requests[:10])
    analyzer.embedded = analyzer.analyzed = 0
    kinds: Counter[str] = Counter()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for start in range(0, len(requests), args.batch):
        for outcome in analyzer.analyze_batch(requests[start : start + args.batch]):
            kinds[outcome.analysis.kind.value] += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    total = len(requests)
    for metric, value, unit in (
        ("analyzer_messages_per_second", total / elapsed, "msg/s"),
        ("analyzer_cpu_seconds_per_1k_messages", cpu / total * 1000, "s"),
        ("embedded_fraction", analyzer.embedded / total, "ratio"),
        ("messages", total, "count"),
    ):
        print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}))
    print(json.dumps({"metric": "kinds", "value": dict(kinds.most_common())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
