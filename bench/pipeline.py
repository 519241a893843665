"""Pipeline benchmark: the sample community through import -> Kafka -> classifier -> MongoDB,
then the Lore Keeper's digest of each of its weeks (``pepite digest``, timed per week).

The clock stops when every message is stored, analyzed (local analyzer unless the
environment says otherwise) and counted in the rollups. Insight messages are then still
to be embedded and placed in topics, which the classifier does in bulk once the stream
is quiet: a second clock runs until none is waiting (``topics_placed_seconds``).

Prints one JSON line per figure: ``{"metric": ..., "value": ..., "unit": ...}``.
Runs in its own topic prefix and database, against the running local stack (or the
Kafka/MongoDB named by KAFKA_BOOTSTRAP and MONGODB_URI), and cleans up after itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ijson
from pymongo import MongoClient

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

import stack  # noqa: E402

from services import ServiceProcess, metric_value  # noqa: E402

PEPITE = str(Path(sys.executable).parent / "pepite")


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    line = {"metric": metric, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def count_messages(folder: Path) -> int:
    """Messages (not member joins) in the exports, streamed to keep this process small."""
    total = 0
    for path in sorted(folder.glob("*.json")):
        with path.open("rb") as stream:
            for message_type in ijson.items(stream, "messages.item.type"):
                total += message_type != "GuildMemberJoin"
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(pattern: str) -> int | None:
    """The pid of a running process whose command line contains ``pattern``."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in cmdline + " " and "pipeline.py" not in cmdline:
                return int(proc.name)
    return None


def weekly_digests(env: dict[str, str], messages: Any) -> bool:
    """Time ``pepite digest`` for every Monday-to-Sunday week of the imported community."""
    first = messages.find_one({}, {"created_at": 1}, sort=[("created_at", 1)])["created_at"]
    last = messages.find_one({}, {"created_at": 1}, sort=[("created_at", -1)])["created_at"]
    monday = first.date() - timedelta(days=first.weekday())
    walls: list[float] = []
    builds: list[float] = []
    while monday <= last.date():
        started = time.perf_counter()
        result = subprocess.run(
            [
                PEPITE,
                "digest",
                "--community",
                "bench",
                "--from",
                str(monday),
                "--to",
                str(monday + timedelta(days=6)),
                "--format",
                "json",
            ],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            return False
        digest = json.loads(result.stdout)
        built = re.search(r"in ([0-9.]+)s", result.stderr)
        builds.append(float(built.group(1)) if built else float("nan"))
        emit(
            "digest_week_seconds",
            walls[-1],
            "s",
            week=str(monday),
            build_s=builds[-1],
            statements=sum(len(s["statements"]) for s in digest["sections"]),
            cited=len(digest["sources"]),
        )
        monday += timedelta(days=7)
    emit("digest_week_seconds_max", max(walls), "s", weeks=len(walls), build_max_s=max(builds))
    return True


def main() -> int:  # noqa: PLR0915 - one straight measurement script
    parser = argparse.ArgumentParser(description=__doc__)
    default_data = Path(os.environ.get("PEPITE_SHARED_DIR", REPO_ROOT.parent / "shared"))
    parser.add_argument("--data", type=Path, default=default_data / "datasets" / "sample-community")
    args = parser.parse_args()

    connection = stack.env()
    run_id = f"bench{uuid.uuid4().hex[:8]}"
    db_name = f"pepite_{run_id}"
    env = {
        **connection,
        "PEPITE_KAFKA_TOPIC_PREFIX": f"{run_id}.",
        "PEPITE_MONGODB_DB": db_name,
        "PEPITE_LOG_LEVEL": "WARNING",
    }
    # Count before starting anything: a forked child inherits the parent's peak memory.
    expected = count_messages(args.data)
    # Local infrastructure processes, found by the port they serve (absent when external).
    kafka_port = connection["KAFKA_BOOTSTRAP"].split(",")[0].rpartition(":")[2]
    mongo_port = urlsplit(connection["MONGODB_URI"]).port or 27017
    infra = {
        name: pid
        for name, pattern in (
            ("broker", f"tansu broker --listener-url tcp://127.0.0.1:{kafka_port} "),
            ("mongod", f"--port {mongo_port} "),
        )
        if (pid := pid_of(pattern)) is not None
    }
    infra_cpu_before = {name: cpu_seconds(pid) for name, pid in infra.items()}
    client: MongoClient[dict[str, object]] = MongoClient(connection["MONGODB_URI"])
    messages = client[db_name]["messages"]
    log_dir = REPO_ROOT / ".pepite" / "bench"
    classifier = ServiceProcess("classifier", 18102, env, log_dir / f"{run_id}-classifier.log")
    try:
        classifier.start()
        classifier.wait_healthy()
        classifier_cpu_before = cpu_seconds(classifier.pid)
        started = time.perf_counter()
        importer = subprocess.Popen(
            [PEPITE, "import", str(args.data), "--community", "bench", "--no-progress"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(importer.pid, 0)
        import_seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            sys.stderr.write(importer.stderr.read().decode() if importer.stderr else "")
            return 1
        stored_at = None
        while True:
            # The classifier's own counter is cheap to poll; the database is checked after.
            analyzed = metric_value(classifier.metrics(), "pepite_messages_analyzed_total")
            if stored_at is None and messages.estimated_document_count() >= expected:
                stored_at = time.perf_counter() - started
            if analyzed >= expected:
                break
            if time.perf_counter() - started > 900:
                print(f"timed out: {analyzed:.0f} of {expected} analyzed", file=sys.stderr)
                return 1
            time.sleep(0.25)
        end_to_end = time.perf_counter() - started
        # Figures of the analysis run itself, before topic placement catches up.
        embedded = metric_value(classifier.metrics(), "pepite_messages_embedded_total")
        classifier_cpu = cpu_seconds(classifier.pid) - classifier_cpu_before
        while messages.find_one({"topic_pending": True}, {"_id": 1}) is not None:
            if time.perf_counter() - started > 1800:
                print("timed out waiting for topic placement", file=sys.stderr)
                return 1
            time.sleep(0.5)
        placed = time.perf_counter() - started
        stored = messages.count_documents({})
        analyzed_docs = messages.count_documents({"analysis_digest": {"$exists": True}})
        counted = sum(
            doc["messages"] for doc in client[db_name]["activity_rollups"].find({}, {"messages": 1})
        )
        processed = metric_value(classifier.metrics(), "pepite_consumer_records_processed_total")
        emit(
            "messages", expected, "messages", stored=stored, analyzed=analyzed_docs, counted=counted
        )
        emit("stored_seconds", stored_at or end_to_end, "s")
        emit("embedded_share", embedded / max(expected, 1), "ratio")
        emit("import_throughput", expected / import_seconds, "messages/s")
        emit("end_to_end_throughput", expected / end_to_end, "messages/s")
        emit("end_to_end_seconds", end_to_end, "s")
        emit(
            "topics_placed_seconds",
            placed,
            "s",
            in_topics=messages.count_documents({"topic_id": {"$ne": None}}),
        )
        emit("records_processed_by_classifier", processed, "records")
        emit("peak_rss_importer", usage.ru_maxrss / 1024, "MB")
        emit("peak_rss_classifier", peak_rss_mb(classifier.pid), "MB")
        emit("cpu_importer", usage.ru_utime + usage.ru_stime, "s")
        emit("cpu_classifier", classifier_cpu, "s")
        emit(
            "cpu_classifier_topic_placement",
            cpu_seconds(classifier.pid) - classifier_cpu_before - classifier_cpu,
            "s",
        )
        for name, pid in infra.items():
            emit(f"cpu_{name}", cpu_seconds(pid) - infra_cpu_before[name], "s")
            emit(f"peak_rss_{name}", peak_rss_mb(pid), "MB")
        digests_ok = weekly_digests(env, messages)
        return 0 if stored == expected == analyzed_docs == counted and digests_ok else 1
    finally:
        classifier.stop()
        client.drop_database(db_name)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
