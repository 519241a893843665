"""End-to-end fixtures: services run as real processes against the real stack."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from pepite_contracts import Topic
from tests.conftest import REPO_ROOT, Stack

sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))
from services import ServiceProcess, metric_value

PEPITE = str(Path(sys.executable).parent / "pepite")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Env:
    """One isolated Pépite environment: its own topic prefix and database."""

    vars: dict[str, str]
    tmp: Path
    db_name: str

    def service(self, name: str) -> ServiceProcess:
        return ServiceProcess(name, free_port(), self.vars, self.tmp / f"{name}.log")

    def pepite(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [PEPITE, *args],
            check=False,
            env={**os.environ, **self.vars},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"pepite {' '.join(args)} failed: {result.stderr}")
        return result


def new_env(stack: Stack, unique_name: str, db_name: str, tmp: Path) -> Env:
    return Env(
        vars={
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "MONGODB_URI": stack.mongodb_uri,
            "PEPITE_KAFKA_TOPIC_PREFIX": f"{unique_name}.",
            "PEPITE_MONGODB_DB": db_name,
            "PEPITE_LOG_FORMAT": "json",
        },
        tmp=tmp,
        db_name=db_name,
    )


@pytest.fixture
def env(stack: Stack, unique_name: str, db_name: str, tmp_path: Path, sync_db: object) -> Env:
    return new_env(stack, unique_name, db_name, tmp_path)


@pytest.fixture
def classifier(env: Env) -> Iterator[ServiceProcess]:
    service = env.service("classifier").start()
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


def wait_for(condition: Callable[[], bool], *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def processed(service: ServiceProcess, topic: str) -> float:
    return metric_value(
        service.metrics(), "pepite_consumer_records_processed_total", {"topic": topic}
    )


def wait_classified(
    env: Env, classifier: ServiceProcess, db: Any, messages: int, *, within_s: float
) -> None:
    """Wait until the classifier has processed ``messages`` raw records and placed every
    insight in a topic (which it does once the stream is quiet; rollups move with it)."""
    raw_topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + Topic.MESSAGES_RAW
    wait_for(
        lambda: processed(classifier, raw_topic) >= messages,
        within_s=within_s,
        what="the classifier to process the import",
    )
    wait_for(
        lambda: db["messages"].find_one({"topic_pending": True}, {"_id": 1}) is None,
        within_s=within_s,
        what="the classifier to place every insight in a topic",
    )


@dataclass(frozen=True)
class ExportTruth:
    """What the sample community's files contain, computed from the files themselves."""

    message_ids: frozenset[str]
    joins: int
    channels: int
    authors: frozenset[str]
    first: str
    last: str


def read_truth(folder: Path, community: str) -> ExportTruth:
    ids: set[str] = set()
    authors: set[str] = set()
    joins = 0
    channels = 0
    times: list[str] = []
    for path in sorted(folder.glob("*.json")):
        export = json.loads(path.read_text())
        channels += 1
        for message in export["messages"]:
            authors.add(message["author"]["id"])
            if message["type"] == "GuildMemberJoin":
                joins += 1
                continue
            ids.add(f"discord:{community}:{message['id']}")
            times.append(message["timestamp"])
    return ExportTruth(frozenset(ids), joins, channels, frozenset(authors), min(times), max(times))


@pytest.fixture(scope="session")
def small_community(sample_community: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample community without its largest channel: ≈12,000 messages in 4 channels.

    Every message is analyzed on the way, which takes minutes for the whole sample on a
    small machine; `make demo` and `make bench` run the whole of it.
    """
    exports = sorted(sample_community.glob("*.json"), key=lambda path: path.stat().st_size)
    folder = tmp_path_factory.mktemp("small-community")
    for path in exports[:-1]:
        shutil.copy(path, folder / path.name)
    return folder


@dataclass(frozen=True)
class ClassifiedSample:
    """The whole sample community imported and analyzed once, for the tests that read it."""

    env: Env
    db: Any
    truth: ExportTruth


@pytest.fixture(scope="session")
def classified_sample(
    stack: Stack, sample_community: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClassifiedSample]:
    """The sample community through the importer and the classifier, shared by the tests
    that only read the result: analyzing its 69,664 messages takes about four minutes on
    two cores, paid once. Tests that use it must not change what it stored (they may add
    their own documents, e.g. consents, or the rollups their commands rebuild)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    env = new_env(stack, name, f"pepite_test_{name}", tmp_path_factory.mktemp("sample"))
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongodb_uri, tz_aware=True)
    db = client[env.db_name]
    try:
        truth = read_truth(sample_community, "sample")
        classifier = env.service("classifier").start()
        try:
            classifier.wait_healthy()
            env.pepite("import", str(sample_community), "--community", "sample", "--no-progress")
            wait_classified(env, classifier, db, len(truth.message_ids), within_s=600)
        finally:
            classifier.stop()
        yield ClassifiedSample(env, db, truth)
    finally:
        client.drop_database(env.db_name)
        client.close()
