"""Import benchmark: large generated exports through ``pepite import`` into Kafka.

For each format, writes (once, cached under ``.pepite/bench``) an export of
``--messages`` messages, imports it into a fresh topic prefix of the running broker,
and prints JSON lines: events/s as the command measures it (parse + normalize +
publish, acknowledged by the broker), events/s over the whole process lifetime, and
peak resident memory of the import's processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.generate import write_dce_export  # noqa: E402

PEPITE = str(Path(sys.executable).parent / "pepite")
CACHE = REPO_ROOT / ".pepite" / "bench"


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"metric": metric, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


def cached_export(name: str, write: Callable[[Path], object]) -> Path:
    """The export folder ``name``, written on first use."""
    folder = CACHE / name
    marker = folder / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        print(f"writing {folder} ...", file=sys.stderr, flush=True)
        write(folder)
        marker.write_text("")
        print(f"written in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    return folder


def write_slack(folder: Path, messages: int, channels: int) -> None:
    from tests.services.ingestor.slack_helpers import write_slack_export

    write_slack_export(folder, messages, channels=channels, seed=0)


class PeakMemory:
    """Samples the resident memory of a process and its children."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.main_mb = 0.0
        self.worker_mb = 0.0
        self.total_mb = 0.0

    def sample(self) -> None:
        try:
            main = self.process.memory_info().rss / 2**20
            workers = [c.memory_info().rss / 2**20 for c in self.process.children(recursive=True)]
        except psutil.Error:
            return
        self.main_mb = max(self.main_mb, main)
        self.worker_mb = max(self.worker_mb, *workers, 0.0)
        self.total_mb = max(self.total_mb, main + sum(workers))


def run_import(fmt: str, export: Path, messages: int, workers: int | None) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    command = [PEPITE, "import", str(export), "--community", "bench", "--no-progress"]
    command += ["--format", fmt]
    if workers:
        command += ["--workers", str(workers)]
    env = {**os.environ, "PEPITE_KAFKA_TOPIC_PREFIX": prefix}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    while process.poll() is None:
        memory.sample()
        time.sleep(0.05)
    wall = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"import of {export} failed with exit code {process.returncode}")
    summary = re.search(r"import done: \d+ file\(s\), (\d+) events in ([\d.]+)s", output)
    if summary is None:
        raise SystemExit(f"no summary in the import output:\n{output}")
    events, seconds = int(summary[1]), float(summary[2])
    tags = {"format": fmt, "messages": messages, "workers": workers or os.cpu_count()}
    emit("import_rate", events / seconds, "events/s", **tags)
    emit("import_rate_whole_process", events / wall, "events/s", **tags)
    emit("import_peak_rss_main", memory.main_mb, "MB", **tags)
    emit("import_peak_rss_worker", memory.worker_mb, "MB", **tags)
    emit("import_peak_rss_total", memory.total_mb, "MB", **tags)
    asyncio.run(_drop_topics(prefix))


async def _drop_topics(prefix: str) -> None:
    """The broker keeps records in memory: free what the run published."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    await admin.start()
    try:
        topics = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    except Exception as exc:  # a broker without deletion keeps them; the figures stand
        print(f"could not delete bench topics: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--formats", default="discord,slack")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--sample", type=Path, default=REPO_ROOT.parent / "shared/datasets/sample-community"
    )
    args = parser.parse_args()
    for fmt in args.formats.split(","):
        name = f"{fmt}-{args.messages}-{args.channels}"
        if fmt == "discord":
            export = cached_export(
                name,
                lambda folder: write_dce_export(
                    folder, args.messages, channels=args.channels, sample=args.sample
                ),
            )
        elif fmt == "slack":
            export = cached_export(
                name, lambda folder: write_slack(folder, args.messages, args.channels)
            )
        else:
            raise SystemExit(f"no generator for format {fmt!r}")
        run_import(fmt, export, args.messages, args.workers)


if __name__ == "__main__":
    main()
