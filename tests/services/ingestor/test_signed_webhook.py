"""The generic signed webhook against a real broker and a real MongoDB."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI
from pydantic import SecretStr

from pepite_contracts import (
    MemberJoined,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    Topic,
    all_topics,
    decode_event,
)
from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.live.sink import EventSink, KafkaEventSink
from pepite_ingestor.live.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_webhook_router,
    sign_webhook,
    webhook_signature,
)
from pepite_ingestor.repository import DELIVERIES, DeliveryRepository
from pepite_ingestor.settings import Settings
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics

COMMUNITY = "acme"
SECRET = "s3cret-of-acme"
OTHER_SECRET = "s3cret-of-beta"
MAX_BODY = 16 * 1024
DOCS = Path(__file__).resolve().parents[3] / "docs" / "formats" / "jsonl.md"


def message(native_id: str = "p1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "message",
        "platform": "circle",
        "id": native_id,
        "channel": {"id": "space-7", "name": "Help"},
        "author": {"id": "u1", "name": "ada"},
        "text": f"hello {native_id} 👋",
        "created_at": "2024-05-01T12:00:00Z",
    }
    record.update(overrides)
    return record


def settings_for(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secrets": {COMMUNITY: SecretStr(SECRET), "beta": SecretStr(OTHER_SECRET)},
        "live_max_body_bytes": MAX_BODY,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Harness:
    client: httpx.AsyncClient
    kafka: KafkaSettings
    db: Database

    async def post(
        self,
        body: Any,
        *,
        community: str = COMMUNITY,
        secret: str = SECRET,
        delivery: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = sign_webhook(secret, raw, timestamp=timestamp, delivery=delivery)
        signed.update(headers or {})
        return await self.client.post(
            f"/webhooks/{community}",
            content=raw,
            headers={"Content-Type": "application/json", **signed},
        )

    async def read(self, topic: str, expected: int) -> list[tuple[bytes | None, Any]]:
        """Records of ``topic``: wait for ``expected``, then a little more for strays."""
        consumer = AIOKafkaConsumer(
            self.kafka.topic_name(topic),
            bootstrap_servers=self.kafka.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[tuple[bytes | None, Any]] = []
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while len(found) < expected and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    found.extend((r.key, decode_event(r.value or b"")) for r in records)
            batch = await consumer.getmany(timeout_ms=700)
            for records in batch.values():
                found.extend((r.key, decode_event(r.value or b"")) for r in records)
        finally:
            await consumer.stop()
        return found

    async def assert_nothing_published_before(self, sentinel: str) -> None:
        """Publish a sentinel message in the same channel; it must be all there is."""
        response = await self.post(message(sentinel))
        assert response.status_code == 202, response.text
        found = await self.read(Topic.MESSAGES_RAW, 1)
        assert [event.payload.native_id for _key, event in found] == [sentinel]


def build_app(settings: Settings, sink: EventSink, guard: DeliveryRepository) -> FastAPI:
    router = build_webhook_router(settings, sink, guard)
    assert router is not None
    app = FastAPI()
    app.include_router(router)
    return app


@pytest.fixture
async def harness(kafka_settings: KafkaSettings, mongo_db: Database) -> AsyncIterator[Harness]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    async with EventPublisher(kafka_settings, client_id="webhook-test") as publisher:
        sink = KafkaEventSink(publisher, topic_name=kafka_settings.topic_name)
        app = build_app(settings_for(), sink, DeliveryRepository(mongo_db))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as client:
            yield Harness(client, kafka_settings, mongo_db)


def assert_problem(response: httpx.Response, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:pepite:problem:")
    assert body["title"]
    assert detail in body["detail"], body["detail"]
    return body


# --------------------------------------------------------------------------- accepted


async def test_one_record_is_published(harness: Harness) -> None:
    response = await harness.post(message("p1"), delivery="evt-1")

    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    ((key, event),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert key == b"acme:space-7"
    assert isinstance(event, MessageIngested)
    assert event.payload.id == "circle:acme:p1"
    assert event.payload.text == "hello p1 👋"
    assert event.payload.author.id == "circle:acme:u1"


async def test_a_batch_goes_to_the_right_topics_with_the_right_keys(harness: Harness) -> None:
    records = [
        message("p1"),
        {
            "kind": "member_joined",
            "platform": "circle",
            "member": {"id": "u2", "name": "bob"},
            "at": "2024-05-01T11:00:00Z",
        },
        {
            "kind": "edit",
            "platform": "circle",
            "id": "p1",
            "channel": {"id": "space-7"},
            "edited_at": "2024-05-01T12:05:00Z",
            "text": "hello again",
        },
        {
            "kind": "deletion",
            "platform": "circle",
            "id": "p1",
            "channel": {"id": "space-7"},
            "deleted_at": "2024-05-01T12:10:00Z",
        },
    ]

    response = await harness.post({"records": records})

    assert response.status_code == 202
    assert response.json() == {"accepted": 4}
    messages = await harness.read(Topic.MESSAGES_RAW, 3)
    assert [type(event) for _key, event in messages] == [
        MessageIngested,
        MessageEdited,
        MessageDeleted,
    ]
    assert {key for key, _event in messages} == {b"acme:space-7"}
    ((key, joined),) = await harness.read(Topic.MEMBERS_EVENTS, 1)
    assert key == b"acme:_community"
    assert isinstance(joined, MemberJoined)
    assert joined.payload.member.id == "circle:acme:u2"


async def test_uppercase_hex_and_header_whitespace_are_fine(harness: Harness) -> None:
    body = json.dumps(message("p1")).encode()
    stamp = int(time.time())
    signature = webhook_signature(SECRET, stamp, body).upper()

    response = await harness.client.post(
        "/webhooks/acme",
        content=body,
        headers={TIMESTAMP_HEADER: f" {stamp} ", SIGNATURE_HEADER: f"SHA256={signature} "},
    )

    assert response.status_code == 202, response.text


async def test_empty_batch_is_accepted(harness: Harness) -> None:
    response = await harness.post({"records": []})

    assert response.status_code == 202
    assert response.json() == {"accepted": 0}


# ----------------------------------------------------------------------- replays


async def test_a_replayed_delivery_is_published_once(harness: Harness) -> None:
    first = await harness.post(message("p1"), delivery="evt-42")
    again = await harness.post(message("p1"), delivery="evt-42")
    # A retry is signed afresh but keeps its delivery id.
    later = await harness.post(message("p1"), delivery="evt-42", timestamp=int(time.time()) - 5)

    assert first.status_code == 202
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert (later.status_code, later.json()) == (200, {"status": "duplicate"})
    found = await harness.read(Topic.MESSAGES_RAW, 1)
    assert len(found) == 1
    assert await harness.db[DELIVERIES].count_documents({"_id": "webhook:acme:evt-42"}) == 1


async def test_without_delivery_id_the_signature_is_the_key(harness: Harness) -> None:
    body = json.dumps(message("p1")).encode()
    headers = {"Content-Type": "application/json", **sign_webhook(SECRET, body)}

    first = await harness.client.post("/webhooks/acme", content=body, headers=headers)
    again = await harness.client.post("/webhooks/acme", content=body, headers=headers)

    assert first.status_code == 202
    assert again.json() == {"status": "duplicate"}
    assert len(await harness.read(Topic.MESSAGES_RAW, 1)) == 1


async def test_delivery_ids_are_per_community(harness: Harness) -> None:
    acme = await harness.post(message("p1"), delivery="evt-1")
    beta = await harness.post(
        message("p1"), delivery="evt-1", community="beta", secret=OTHER_SECRET
    )

    assert (acme.status_code, beta.status_code) == (202, 202)
    found = await harness.read(Topic.MESSAGES_RAW, 2)
    assert sorted(event.payload.id for _key, event in found) == [
        "circle:acme:p1",
        "circle:beta:p1",
    ]


# ------------------------------------------------------------------ authentication


async def test_bad_signature_is_refused_and_nothing_published(harness: Harness) -> None:
    response = await harness.post(message("x1"), secret="not-the-secret")

    assert_problem(response, 401, "signature does not match")
    assert "WWW-Authenticate" in response.headers
    await harness.assert_nothing_published_before("sentinel")


async def test_body_changed_after_signing_is_refused(harness: Harness) -> None:
    body = json.dumps(message("x1")).encode()
    headers = sign_webhook(SECRET, body)

    response = await harness.client.post(
        "/webhooks/acme", content=body.replace(b"hello", b"HELLO"), headers=headers
    )

    assert_problem(response, 401, "signature does not match")


async def test_another_communitys_secret_is_refused(harness: Harness) -> None:
    response = await harness.post(message("x1"), secret=OTHER_SECRET)

    assert_problem(response, 401, "signature does not match")


@pytest.mark.parametrize("age_s", [301, -301, 86_400])
async def test_stale_or_future_timestamp_is_refused(harness: Harness, age_s: int) -> None:
    response = await harness.post(message("x1"), timestamp=int(time.time()) - age_s)

    assert_problem(response, 401, "timestamp outside the 300 s window")


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({TIMESTAMP_HEADER: ""}, "must be unix seconds"),
        ({TIMESTAMP_HEADER: "yesterday"}, "must be unix seconds"),
        ({SIGNATURE_HEADER: "md5=abc"}, "must be 'sha256=<hex digest>'"),
        ({SIGNATURE_HEADER: "sha256=zz"}, "signature does not match"),
    ],
)
async def test_malformed_headers_are_refused(
    harness: Harness, headers: dict[str, str], detail: str
) -> None:
    response = await harness.post(message("x1"), headers=headers)

    assert_problem(response, 401, detail)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
async def test_missing_headers_are_refused(harness: Harness, missing: str) -> None:
    body = json.dumps(message("x1")).encode()
    headers = sign_webhook(SECRET, body)
    del headers[missing]

    response = await harness.client.post("/webhooks/acme", content=body, headers=headers)

    assert_problem(response, 401, f"missing {missing} header")


async def test_unknown_community_is_refused(harness: Harness) -> None:
    response = await harness.post(message("x1"), community="nope")

    assert_problem(response, 401, "no webhook secret is configured for community 'nope'")


async def test_a_too_long_delivery_id_is_refused(harness: Harness) -> None:
    response = await harness.post(message("x1"), delivery="d" * 201)

    assert_problem(response, 400, f"{DELIVERY_HEADER} is longer than 200 characters")


# ---------------------------------------------------------------------- body size


async def test_a_body_declared_too_large_is_refused_unread(harness: Harness) -> None:
    records = [message(f"p{n}", text="x" * 200) for n in range(100)]

    response = await harness.post({"records": records})

    assert_problem(response, 413, f"the body is over {MAX_BODY} bytes")
    await harness.assert_nothing_published_before("sentinel")


async def test_a_streamed_body_is_cut_off_at_the_limit(harness: Harness) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b" " * 1024

    response = await harness.client.post(
        "/webhooks/acme",
        content=endless(),
        headers=sign_webhook(SECRET, b"whatever"),
    )

    assert_problem(response, 413, "the body is over")
    # No Content-Length: the bytes were counted, and reading stopped past the limit.
    assert sent <= MAX_BODY // 1024 + 2


# ------------------------------------------------------------------------ records


async def test_invalid_json_is_refused(harness: Harness) -> None:
    response = await harness.post(b'{"kind": "message",')

    assert_problem(response, 422, "the body is not valid JSON")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([message("x1")], "the body must be a JSON object"),
        ({"records": {"kind": "message"}}, "'records' must be an array of records"),
        ({"records": [{}] * 1001}, "1001 records in one request; send at most 1000"),
        ({"id": "x1"}, "record 0: missing required field 'kind'"),
        ({"kind": "poll"}, "record 0: unknown kind 'poll'"),
    ],
)
async def test_malformed_bodies_are_refused(harness: Harness, body: Any, detail: str) -> None:
    response = await harness.post(body)

    assert_problem(response, 422, detail)


async def test_an_invalid_record_refuses_the_whole_batch(harness: Harness) -> None:
    broken = message("x3")
    del broken["author"]["id"]
    records = [
        message("x1"),
        message("x2"),
        broken,
        message("x4", created_at="2024-05-01T12:00:00"),
    ]

    response = await harness.post({"records": records}, delivery="evt-7")

    body = assert_problem(
        response, 422, "record 2: missing required field 'author.id' (and 1 more)"
    )
    assert body["errors"] == [
        {"record": 2, "problem": "missing required field 'author.id'"},
        {
            "record": 3,
            "problem": "invalid value for 'created_at': Input should have timezone info",
        },
    ]
    # The refused delivery was not recorded: once fixed, the same delivery goes through.
    await harness.assert_nothing_published_before("sentinel")
    fixed = await harness.post({"records": [message("x1")]}, delivery="evt-7")
    assert fixed.status_code == 202


# ---------------------------------------------------------------- broker failures


class BrokerDown:
    """Stands in for a broker that cannot be reached."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, events: Sequence[ImportedEvent]) -> None:
        self.calls += 1
        raise KafkaConnectionError("broker unreachable")


async def test_broker_failure_answers_503_and_forgets_the_delivery(
    kafka_settings: KafkaSettings, mongo_db: Database
) -> None:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    guard = DeliveryRepository(mongo_db)
    down = BrokerDown()
    app = build_app(settings_for(), down, guard)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as client:
        harness = Harness(client, kafka_settings, mongo_db)
        response = await harness.post(message("p1"), delivery="evt-9")

    assert_problem(response, 503, "retry the same request later")
    assert response.headers["Retry-After"] == "5"
    assert down.calls == 1
    assert await mongo_db[DELIVERIES].count_documents({}) == 0

    # The sender retries once the broker is back: the delivery goes through.
    async with EventPublisher(kafka_settings, client_id="webhook-test") as publisher:
        sink = KafkaEventSink(publisher, topic_name=kafka_settings.topic_name)
        app = build_app(settings_for(), sink, guard)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as client:
            harness = Harness(client, kafka_settings, mongo_db)
            retried = await harness.post(message("p1"), delivery="evt-9")
            assert retried.status_code == 202
            assert len(await harness.read(Topic.MESSAGES_RAW, 1)) == 1


# ---------------------------------------------------------------- set-up and docs


class UnusedGuard:
    """For routers that must not get as far as recording a delivery."""

    async def first_seen(self, key: str) -> bool:
        raise AssertionError(f"unexpected delivery {key}")

    async def forget(self, key: str) -> None:
        raise AssertionError(f"unexpected delivery {key}")


def test_no_secrets_no_router() -> None:
    settings = settings_for(webhook_secrets={})

    assert build_webhook_router(settings, BrokerDown(), UnusedGuard()) is None


@pytest.mark.parametrize(
    ("secrets", "message_part"),
    [
        ({"bad:id": SecretStr("x")}, "invalid community id"),
        ({"acme": SecretStr("")}, "secret of community 'acme' is empty"),
    ],
)
def test_bad_configuration_fails_at_start(secrets: dict[str, SecretStr], message_part: str) -> None:
    with pytest.raises(ValueError, match=message_part):
        build_webhook_router(settings_for(webhook_secrets=secrets), BrokerDown(), UnusedGuard())


def test_secrets_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEPITE_WEBHOOK_SECRETS", '{"acme": "from-env"}')

    settings = Settings()

    assert settings.webhook_secrets["acme"].get_secret_value() == "from-env"


def test_the_documented_signature_example_is_right() -> None:
    text = DOCS.read_text(encoding="utf-8")
    body = re.search(r"the body\n\n```\n(.*?)\n```", text, flags=re.DOTALL)
    header = re.search(r"X-Pepite-Signature: sha256=([0-9a-f]{64})", text)
    assert body is not None
    assert header is not None

    assert webhook_signature("change-me", 1714564800, body.group(1).encode()) == header.group(1)
    assert f"BODY='{body.group(1)}'" in text  # the curl example signs the same body


def test_sign_webhook_headers() -> None:
    headers = sign_webhook("k", b"{}", timestamp=1700000000, delivery="d1")

    assert headers == {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: "sha256=" + webhook_signature(b"k", "1700000000", b"{}"),
        DELIVERY_HEADER: "d1",
    }
