"""The API and the webhook worker as processes, started the way `make up` starts them.

A subscription made through the API process is pinged; the worker process delivers
the test notification to a local receiver, signed with the secret the API showed: the
two processes share the PEPITE_SECRETS_KEY that deploy/local/services.py made once in
the data folder.
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient
from tests.conftest import REPO_ROOT, Stack
from tests.services.api.test_webhooks import Receiver, receiver, verify

from pepite_api.keys import KeyRepository, Scope
from pepite_kit import KafkaSettings

sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))
from services import (
    DEFAULT_PORTS,
    MODULES,
    ServiceProcess,
    local_secrets_key,
    metric_value,
)

__all__ = ["receiver"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def admin_key(stack: Stack, db_name: str, sync_db: object) -> AsyncIterator[str]:
    del sync_db  # drops the database afterwards
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        created = await KeyRepository(client[db_name]).create(
            name="process-test", community_id="acme", scopes=[Scope.ADMIN]
        )
        yield created.key
    finally:
        await client.close()


def test_the_worker_is_a_service_of_the_local_stack() -> None:
    assert DEFAULT_PORTS["api-worker"] == 8105
    assert MODULES["api-worker"] == "pepite_api.worker"


def test_the_local_secrets_key_is_made_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEPITE_DATA_DIR", str(tmp_path))
    first = local_secrets_key()
    assert len(first) >= 32
    assert local_secrets_key() == first
    path = tmp_path / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.key"]


@pytest.fixture
def process_env(stack: Stack, db_name: str, kafka_settings: KafkaSettings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "MONGODB_URI": stack.mongodb_uri,
        "PEPITE_KAFKA_TOPIC_PREFIX": kafka_settings.kafka_topic_prefix,
        "PEPITE_MONGODB_DB": db_name,
        "PEPITE_WEBHOOK_ALLOWED_TARGETS": json.dumps(["127.0.0.1"]),
        "PEPITE_WEBHOOK_CONSUMER_GROUP": f"{kafka_settings.kafka_topic_prefix}api-webhooks",
        "PEPITE_LOG_FORMAT": "json",
    }


@pytest.mark.slow
async def test_api_and_worker_processes_deliver_a_ping(
    process_env: dict[str, str],
    admin_key: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PEPITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PEPITE_SECRETS_KEY", raising=False)
    env = process_env
    api = ServiceProcess("api", _free_port(), env, tmp_path / "api.log").start()
    worker = ServiceProcess("api-worker", _free_port(), env, tmp_path / "worker.log").start()
    try:
        await asyncio.gather(
            asyncio.to_thread(api.wait_healthy), asyncio.to_thread(worker.wait_healthy)
        )
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10
        ) as client:
            response = await client.post(
                "/v1/communities/acme/webhooks",
                json={"url": receiver.url(), "event_types": ["digest.published"]},
            )
            assert response.status_code == 201, response.text
            created = response.json()
            ping = await client.post(f"/v1/communities/acme/webhooks/{created['webhook_id']}/ping")
            assert ping.status_code == 202, ping.text

            (request,) = await receiver.wait_for(1, within_s=30)
            assert json.loads(request.body)["event_id"] == ping.json()["event_id"]
            assert verify(
                created["secret"],
                request.headers["pepite-signature"],
                request.body,
                now=time.time(),
            )

        exposition = await asyncio.to_thread(worker.metrics)
        attempts = metric_value(
            exposition,
            "pepite_webhook_attempts_total",
            {"event_type": "alert.raised", "outcome": "success"},
        )
        assert attempts == 1
        assert stat.S_IMODE((tmp_path / "data" / "secrets.key").stat().st_mode) == 0o600
    finally:
        await asyncio.gather(asyncio.to_thread(api.stop), asyncio.to_thread(worker.stop))
    assert worker.process is not None
    assert worker.process.returncode == 0
