"""The ingestor service's signed webhook, end to end: HTTP -> Kafka -> classifier -> MongoDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pepite_ingestor.live.webhook import sign_webhook
from tests.e2e.conftest import Env, ServiceProcess, processed, wait_for

pytestmark = pytest.mark.slow

SECRET = "a-long-shared-secret"


@pytest.fixture
def ingestor(env: Env) -> Iterator[ServiceProcess]:
    live = replace(env, vars={**env.vars, "PEPITE_WEBHOOK_SECRETS": json.dumps({"acme": SECRET})})
    service = live.service("ingestor").start()
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


def post(service: ServiceProcess, record: dict[str, Any], **sign: Any) -> httpx.Response:
    body = json.dumps(record).encode()
    headers = {"Content-Type": "application/json", **sign_webhook(SECRET, body, **sign)}
    return httpx.post(
        f"http://127.0.0.1:{service.port}/webhooks/acme", content=body, headers=headers, timeout=10
    )


CHANNEL = {"id": "c1", "name": "general"}


def test_a_signed_webhook_message_is_stored_edited_and_deleted(
    env: Env, ingestor: ServiceProcess, classifier: ServiceProcess, sync_db: Any
) -> None:
    message = {
        "kind": "message",
        "platform": "circle",
        "id": "m1",
        "channel": CHANNEL,
        "author": {"id": "u1", "name": "ann"},
        "text": "How do I export my data? My email is ann@example.com",
        "created_at": "2024-05-01T10:00:00+02:00",
    }
    accepted = post(ingestor, message, delivery="d-1")
    assert accepted.status_code == 202, accepted.text
    # The same delivery again (a retry, or a replay) is acknowledged and not published.
    again = post(ingestor, message, delivery="d-1")
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"

    topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + "messages.raw"
    wait_for(lambda: processed(classifier, topic) >= 1, within_s=120, what="the message")
    stored = sync_db["messages"].find_one({"_id": "circle:acme:m1"})
    assert stored["text"].startswith("How do I export my data?")

    edit = {
        "kind": "edit",
        "platform": "circle",
        "id": "m1",
        "channel": CHANNEL,
        "edited_at": "2024-05-01T08:30:00Z",
        "text": "How do I export my data?",
    }
    assert post(ingestor, edit).status_code == 202
    wait_for(lambda: processed(classifier, topic) >= 2, within_s=30, what="the edit")
    assert sync_db["messages"].find_one({"_id": "circle:acme:m1"})["text"] == (
        "How do I export my data?"
    )

    deletion = {
        "kind": "deletion",
        "platform": "circle",
        "id": "m1",
        "channel": CHANNEL,
        "deleted_at": "2024-05-01T09:00:00Z",
    }
    assert post(ingestor, deletion).status_code == 202
    wait_for(lambda: processed(classifier, topic) >= 3, within_s=30, what="the deletion")
    deleted = sync_db["messages"].find_one({"_id": "circle:acme:m1"})
    assert deleted["text"] == ""
    assert "ann@example.com" not in repr(deleted)


def test_a_bad_signature_is_refused_and_nothing_is_published(
    env: Env, ingestor: ServiceProcess, classifier: ServiceProcess, sync_db: Any
) -> None:
    forged = {
        "kind": "message",
        "id": "forged",
        "channel": CHANNEL,
        "author": {"id": "u9", "name": "mallory"},
        "text": "click here",
        "created_at": "2024-05-01T10:00:00Z",
    }
    body = json.dumps(forged).encode()
    headers = {**sign_webhook("not-the-secret", body), "Content-Type": "application/json"}
    refused = httpx.post(
        f"http://127.0.0.1:{ingestor.port}/webhooks/acme", content=body, headers=headers
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(f"http://127.0.0.1:{ingestor.port}/healthz").status_code == 200

    # A genuine message sent after it is the only one that arrives.
    genuine = {**forged, "id": "genuine", "author": {"id": "u1", "name": "ann"}, "text": "hi"}
    assert post(ingestor, genuine).status_code == 202
    topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + "messages.raw"
    wait_for(lambda: processed(classifier, topic) >= 1, within_s=120, what="the genuine message")
    assert [doc["_id"] for doc in sync_db["messages"].find({})] == ["generic:acme:genuine"]
    assert processed(classifier, topic) == 1
