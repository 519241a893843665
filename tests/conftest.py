"""Shared fixtures: a real Kafka-API broker and a real MongoDB.

Tests use ``KAFKA_BOOTSTRAP`` and ``MONGODB_URI`` when they are set; otherwise they
start the local stack (deploy/local) once. Every test gets its own topic prefix and
database, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo.database
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient, MongoClient

from pepite_kit import Database, KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    mongodb_uri: str


def _stack_from_local() -> Stack:
    script = REPO_ROOT / "deploy" / "local" / "stack.py"
    subprocess.run([sys.executable, str(script), "up"], check=True, cwd=REPO_ROOT)
    out = subprocess.run(
        [sys.executable, str(script), "env"],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout
    values = dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line
    )
    return Stack(values["KAFKA_BOOTSTRAP"].strip("'\""), values["MONGODB_URI"].strip("'\""))


@pytest.fixture(scope="session")
def stack() -> Stack:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    uri = os.environ.get("MONGODB_URI")
    if bootstrap and uri:
        return Stack(bootstrap, uri)
    return _stack_from_local()


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_prefix(unique_name: str, stack: Stack) -> Iterator[str]:
    prefix = f"{unique_name}."
    yield prefix
    _delete_topics(stack.kafka_bootstrap, prefix)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete the topics a test made: the broker answers every client's first metadata
    request with all the topics it holds, so a suite that kept them would slow each
    later client start (a second per client past a few thousand topics)."""

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [name for name in await admin.list_topics() if name.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()

    def run() -> None:
        try:
            asyncio.run(delete())
        except Exception as exc:  # clean-up only: a topic left behind fails no test
            print(f"could not delete the topics of {prefix}: {exc!r}", file=sys.stderr)

    # In a thread of its own: the test's event loop must be left as it is.
    worker = threading.Thread(target=run, name="delete-topics")
    worker.start()
    worker.join(timeout=20)


@pytest.fixture
def kafka_settings(stack: Stack, topic_prefix: str) -> KafkaSettings:
    return KafkaSettings(
        kafka_bootstrap=stack.kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=3,
        kafka_retry_backoff_s=0.05,
        kafka_retry_backoff_max_s=0.5,
        kafka_poll_timeout_ms=200,
        # The broker holds a group join for half the session timeout: 1.5 s, not 3 s, per
        # consumer loop a test starts. Heartbeats still go every second.
        kafka_session_timeout_ms=3000,
    )


@pytest.fixture
def db_name(unique_name: str) -> str:
    return f"pepite_test_{unique_name}"


SyncDb = pymongo.database.Database[dict[str, Any]]


@pytest.fixture
def sync_db(stack: Stack, db_name: str) -> Iterator[SyncDb]:
    """A synchronous handle on the test's database, dropped afterwards."""
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        yield client[db_name]
    finally:
        client.drop_database(db_name)
        client.close()


@pytest.fixture
async def mongo_db(stack: Stack, db_name: str) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        yield client[db_name]
    finally:
        await client.drop_database(db_name)
        await client.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return Path(os.environ.get("PEPITE_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def sample_community(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "sample-community"
    if not path.is_dir():
        pytest.fail(f"sample community not found at {path} (set PEPITE_SHARED_DIR)")
    return path
