"""The API as a process of two workers: a property-based run of the whole OpenAPI spec,
and the workers' metrics served as one.

Schemathesis generates requests from the spec (valid and invalid) with an operator key;
no answer may be a 5xx, and every answer must match its documented status, content type
and schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, MongoClient
from tests.conftest import REPO_ROOT, Stack
from tests.services.api.conftest import SECRETS_KEY
from tests.services.api.seed import seed_community

from pepite_api.keys import KeyRepository, Scope

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


@pytest.fixture(scope="module")
def api_process(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """One API of two workers for the module: starting it (and its FAQ model) takes seconds."""
    unique_name = f"t{uuid.uuid4().hex[:10]}"
    db_name = f"pepite_test_{unique_name}"
    tmp_path = tmp_path_factory.mktemp("api")
    key = asyncio.run(_prepare(stack.mongodb_uri, db_name))
    port = _free_port()
    env = {
        **os.environ,
        "MONGODB_URI": stack.mongodb_uri,
        "PEPITE_MONGODB_DB": db_name,
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "PEPITE_KAFKA_TOPIC_PREFIX": f"{unique_name}.",
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
        client: MongoClient[dict[str, object]] = MongoClient(stack.mongodb_uri)
        client.drop_database(db_name)
        client.close()


def test_no_server_error_and_no_schema_violation(api_process: tuple[str, str]) -> None:
    url, key = api_process
    schemathesis = str(Path(sys.executable).parent / "st")
    command = [
        schemathesis,
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        # The coverage phase already sends every operation its boundary and wrong-type
        # values (about 2,600 cases); the fuzzing phase adds this many random ones each.
        "--max-examples",
        "6",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261121",
        "--no-color",
    ]
    # The operations run in two processes at once, half each: the API has two workers and
    # the generator is as busy as the server. Processes, not schemathesis' --workers
    # threads: Python 3.11 parses the strategies' lambdas with ast in each thread, and
    # that breaks now and then under concurrency ("AST constructor recursion depth
    # mismatch").
    halves = [
        subprocess.Popen(
            [*command, half, "^(GET|DELETE)$"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for half in ("--include-method-regex", "--exclude-method-regex")
    ]
    try:
        outputs = [(run.communicate(timeout=900)[0], run.returncode) for run in halves]
    finally:
        for run in halves:
            run.kill()
    tested = 0
    for output, returncode in outputs:
        assert returncode == 0, output[-8000:]
        assert "No issues found" in output or "passed" in output, output[-3000:]
        found = re.search(r"Tested: (\d+)", output)
        assert found is not None, output[-3000:]
        tested += int(found[1])
    # Every operation of the spec was exercised by one half or the other.
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as response:
        spec = json.load(response)
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    operations = sum(1 for item in spec["paths"].values() for method in item if method in methods)
    assert tested == operations


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
