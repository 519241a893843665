"""The API as a process of two workers: a property-based run of the whole OpenAPI spec,
and the workers' metrics served as one.

Schemathesis generates requests from the spec (valid and invalid) with an operator key;
no answer may be a 5xx, and every answer must match its documented status, content type
and schema.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from tests.conftest import REPO_ROOT, Stack
from tests.services.api.conftest import SECRETS_KEY
from tests.services.api.seed import seed_community

from pepite_api.keys import KeyRepository, Scope
from pepite_kit import KafkaSettings

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(uri: str, db_name: str) -> str:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client[db_name]
        await seed_community(db, "acme")
        await seed_community(db, "other")
        created = await KeyRepository(db).create(
            name="fuzz", community_id=None, scopes=[Scope.ADMIN], rate_limit_per_minute=1_000_000
        )
        return created.key
    finally:
        await client.close()


@pytest.fixture
def api_process(
    stack: Stack, db_name: str, kafka_settings: KafkaSettings, sync_db: object, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    del sync_db  # drops the database afterwards
    key = asyncio.run(_prepare(stack.mongodb_uri, db_name))
    port = _free_port()
    env = {
        **os.environ,
        "MONGODB_URI": stack.mongodb_uri,
        "PEPITE_MONGODB_DB": db_name,
        "KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "PEPITE_KAFKA_TOPIC_PREFIX": kafka_settings.kafka_topic_prefix,
        "PEPITE_API_PORT": str(port),
        "PEPITE_API_WORKERS": "2",
        "PEPITE_SECRETS_KEY": SECRETS_KEY,
        "PEPITE_LOG_FORMAT": "text",
        "PEPITE_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pepite_api"], env=env, cwd=REPO_ROOT, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "api.log").read_text()) from None
                time.sleep(0.2)
        yield url, key
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_no_server_error_and_no_schema_violation(api_process: tuple[str, str]) -> None:
    url, key = api_process
    schemathesis = str(Path(sys.executable).parent / "st")
    result = subprocess.run(
        [
            schemathesis,
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            "15",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261121",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]


def _requests_counted(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("pepite_http_requests_total{") and 'route="/healthz"' in line
    )


def test_every_worker_serves_the_metrics_of_all(api_process: tuple[str, str]) -> None:
    url, _ = api_process
    before = _requests_counted(url)
    # One connection per request: the workers take turns accepting them.
    for _ in range(40):
        with urllib.request.urlopen(f"{url}/healthz", timeout=5):
            pass
    # Whichever worker answers, it counts the requests of both.
    for _ in range(6):
        assert _requests_counted(url) - before == 40
