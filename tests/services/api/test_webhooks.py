"""Webhooks on a real MongoDB and broker, delivered to a real HTTP receiver.

Subscriptions are made through the API; events go through the notifications topic to
the webhook worker's consumer loop and dispatcher, run in this process; the receiver
is a small HTTP server on a free local port. The signature is checked with a verifier
written from docs/webhooks.md alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from tests.conftest import REPO_ROOT, SyncDb
from tests.services.api.conftest import SECRETS_KEY, Api

from pepite_api.app import create_app
from pepite_api.keys import Scope
from pepite_api.settings import Settings
from pepite_api.webhooks.crypto import SecretBox
from pepite_api.webhooks.handlers import NotificationHandler
from pepite_api.webhooks.repository import (
    DELIVERIES,
    DELIVERY_LOG_RETENTION_S,
    DeliveryRepository,
    SubscriptionRepository,
)
from pepite_api.worker import WebhookWorker
from pepite_contracts import (
    AlertNotice,
    AlertRaised,
    DigestNotice,
    DigestPublished,
    EventEnvelope,
    Topic,
    all_topics,
    encode_event,
    partition_key,
)
from pepite_kit import ConsumerLoop, Runtime, ensure_topics

pytestmark = pytest.mark.asyncio

T = TypeVar("T")

COMMUNITY = "acme"
BASE = f"/v1/communities/{COMMUNITY}/webhooks"
DOCS = REPO_ROOT / "docs" / "webhooks.md"

#: Retries within tenths of a second, so a whole schedule plays out in a test.
FAST: dict[str, Any] = {
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_retry_hours": 30 / 3600,
    "webhook_disable_after_failures": 3,
    "webhook_timeout_seconds": 3.0,
    "webhook_poll_seconds": 0.1,
}


# --------------------------------------------------------------------------- the receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP/1.1 server answering each POST with the next status of ``statuses``."""

    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            _, path, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses.pop(0) if self.statuses else self.default_status
            self.requests.append(Received(path, headers, body))
            head = f"HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            writer.write(head.encode())
            await writer.drain()
        finally:
            writer.close()

    async def wait_for(self, count: int, within_s: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + within_s
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            await asyncio.sleep(0.02)
        return self.requests


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --------------------------------------------------------------------------- app and worker


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    # A group of its own: a group shared with an earlier test could wait for that
    # test's member to time out before it rebalances.
    group = f"{api_settings.kafka_topic_prefix}api-webhooks"
    return api_settings.model_copy(update={**FAST, "webhook_consumer_group": group})


@pytest.fixture
async def admin(api: Api, sync_db: SyncDb) -> AsyncIterator[httpx.AsyncClient]:
    # sync_db: the test's database is dropped afterwards.
    async with await api.client_for(COMMUNITY, Scope.ADMIN) as client:
        yield client


class Workers:
    """Webhook workers running in this process on the app's database and publisher."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._loops: list[tuple[ConsumerLoop[Any], asyncio.Task[None]]] = []
        self._jobs: list[asyncio.Task[None]] = []
        self._topics_ready = False

    async def start(self, *, consume: bool = True, **overrides: Any) -> None:
        """Start a worker: its dispatcher, and its consumer loop unless ``consume`` is off."""
        settings = self._api.settings.model_copy(update=overrides)
        worker = WebhookWorker(settings)
        runtime = Runtime(
            settings=settings, db=self._api.state.db, publisher=self._api.state.publisher
        )
        if consume:
            if not self._topics_ready:
                await ensure_topics(settings, settings.topic_names(all_topics()))
                self._topics_ready = True
            for loop in worker.build_loops(runtime):
                self._loops.append((loop, asyncio.create_task(loop.run())))
        for job in worker.build_background(runtime):
            self._jobs.append(asyncio.create_task(_run(job)))

    async def stop(self) -> None:
        for loop, _ in self._loops:
            loop.stop()
        for job in self._jobs:
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        results = await asyncio.gather(*(task for _, task in self._loops), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        self._loops.clear()
        self._jobs.clear()


async def _run(job: Callable[[], Awaitable[None]]) -> None:
    await job()


@pytest.fixture
async def workers(api: Api) -> AsyncIterator[Workers]:
    running = Workers(api)
    try:
        yield running
    finally:
        await running.stop()


@asynccontextmanager
async def admin_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of the community on another app: same database, other settings."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as bare,
    ):
        other = Api(app=app, client=bare, settings=settings)
        async with await other.client_for(COMMUNITY, Scope.ADMIN) as client:
            yield client


# --------------------------------------------------------------------------- helpers


def digest_event(digest_id: str = "acme:2026-W09", community: str = COMMUNITY) -> DigestPublished:
    return DigestPublished(
        community_id=community,
        payload=DigestNotice(
            digest_id=digest_id,
            title="Week 9 in acme",
            period_start=datetime(2026, 2, 23, tzinfo=UTC),
            period_end=datetime(2026, 3, 2, tzinfo=UTC),
            summary="Three questions stayed unanswered.",
        ),
    )


def alert_event() -> AlertRaised:
    return AlertRaised(
        community_id=COMMUNITY,
        payload=AlertNotice(alert_id="a1", kind="message_spike", severity="warning", title="Spike"),
    )


async def publish(api: Api, *events: EventEnvelope) -> None:
    for event in events:
        await api.state.publisher.publish(
            api.settings.topic_name(Topic.NOTIFICATIONS),
            event,
            key=partition_key(event.community_id, "test"),
        )
    await api.state.publisher.flush()


async def notify(api: Api, *events: EventEnvelope) -> None:
    """Hand events to the worker's handler directly, as its consumer loop would.

    For tests about delivery rather than the topic: joining a consumer group on the
    local broker takes seconds.
    """
    handler = NotificationHandler(
        SubscriptionRepository(api.state.db), DeliveryRepository(api.state.db), wake=lambda: None
    )
    await handler(list(events))  # type: ignore[arg-type]


async def subscribe(
    client: httpx.AsyncClient, url: str, types: tuple[str, ...] = ("digest.published",)
) -> dict[str, Any]:
    response = await client.post(BASE, json={"url": url, "event_types": list(types)})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within_s: float = 15.0
) -> T:
    deadline = time.monotonic() + within_s
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {within_s} s; last value: {value!r}")
        await asyncio.sleep(0.05)


async def only_delivery(client: httpx.AsyncClient, webhook_id: str, status: str) -> dict[str, Any]:
    """The one delivery of a subscription, once it has ``status``, with its attempts."""
    page = await eventually(
        lambda: get_json(client, f"{BASE}/{webhook_id}/deliveries"),
        lambda page: len(page["items"]) == 1 and page["items"][0]["status"] == status,
    )
    delivery_id = page["items"][0]["delivery_id"]
    detail: dict[str, Any] = await get_json(client, f"{BASE}/{webhook_id}/deliveries/{delivery_id}")
    return detail


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: int = 300) -> bool:
    """Written from docs/webhooks.md ("Verifying the signature"), not from Pépite's code."""
    timestamp: str | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not timestamp.isdigit() or not candidates:
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(
        secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def docs_verifier() -> Callable[..., bool]:
    """``verify_signature`` from the receiver example of docs/webhooks.md, as published."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    example = next(block for block in blocks if "def verify_signature(" in block)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(example, str(DOCS), "exec"), namespace)
    verifier: Callable[..., bool] = namespace["verify_signature"]
    return verifier


# --------------------------------------------------------------------------- subscriptions


async def test_the_secret_is_shown_once_and_stored_encrypted(
    admin: httpx.AsyncClient, sync_db: SyncDb, receiver: Receiver
) -> None:
    created = await subscribe(admin, receiver.url(), ("digest.published", "alert.raised"))
    secret = created["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)
    assert created["active"] is True
    assert created["event_types"] == ["digest.published", "alert.raised"]
    webhook_id = created["webhook_id"]

    for response in (await admin.get(BASE), await admin.get(f"{BASE}/{webhook_id}")):
        assert response.status_code == 200
        assert secret not in response.text
        assert "secret" not in json.dumps(response.json()).replace("secret_rotated_at", "")

    stored = sync_db["webhook_subscriptions"].find_one({"_id": webhook_id})
    assert stored is not None
    assert secret not in json.dumps(stored, default=str)
    assert secret[len("whsec_") :] not in json.dumps(stored, default=str)
    # Sealed with the key derived from PEPITE_SECRETS_KEY, and only readable with it.
    assert SecretBox(SECRETS_KEY).open(stored["secret_sealed"]) == secret

    rotated = (await admin.post(f"{BASE}/{webhook_id}/rotate-secret")).json()
    assert rotated["secret"] != secret
    assert rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_valid_until"] is not None
    shown = (await admin.get(f"{BASE}/{webhook_id}")).text
    assert rotated["secret"] not in shown
    assert secret not in shown
    stored = sync_db["webhook_subscriptions"].find_one({"_id": webhook_id})
    assert stored is not None
    assert rotated["secret"] not in json.dumps(stored, default=str)


async def test_creating_a_subscription_needs_the_secrets_key(
    api_settings: Settings, sync_db: SyncDb
) -> None:
    async with admin_of(api_settings.model_copy(update={"secrets_key": None})) as client:
        response = await client.post(
            BASE, json={"url": "http://127.0.0.1:9/hook", "event_types": ["alert.raised"]}
        )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "PEPITE_SECRETS_KEY" in response.json()["detail"]


async def test_list_pages_update_and_delete(admin: httpx.AsyncClient, receiver: Receiver) -> None:
    ids = [(await subscribe(admin, receiver.url(f"/{n}")))["webhook_id"] for n in range(3)]

    first = await get_json(admin, BASE, limit=2)
    second = await get_json(admin, BASE, limit=2, cursor=first["next_cursor"])
    assert (len(first["items"]), len(second["items"]), second["next_cursor"]) == (2, 1, None)
    listed = [
        (datetime.fromisoformat(w["created_at"]), w["webhook_id"])
        for w in first["items"] + second["items"]
    ]
    assert sorted(webhook_id for _, webhook_id in listed) == sorted(ids)
    assert listed == sorted(listed, reverse=True)
    assert (await admin.get(BASE, params={"cursor": "nonsense"})).status_code == 400

    changed = await admin.patch(
        f"{BASE}/{ids[0]}",
        json={
            "url": receiver.url("/moved"),
            "event_types": ["alert.raised", "alert.raised", "insights.report"],
            "description": "$ops channel",
            "active": False,
        },
    )
    assert changed.status_code == 200, changed.text
    webhook = changed.json()
    assert webhook["url"] == receiver.url("/moved")
    assert webhook["event_types"] == ["alert.raised", "insights.report"]
    assert webhook["description"] == "$ops channel"
    assert webhook["active"] is False
    assert webhook["disabled_reason"] == "disabled through the API"
    assert webhook["disabled_at"] is not None

    unknown_type = await admin.patch(f"{BASE}/{ids[0]}", json={"event_types": ["message.ingested"]})
    assert unknown_type.status_code == 422
    private = await admin.patch(f"{BASE}/{ids[0]}", json={"url": "http://10.0.0.1/hook"})
    assert private.status_code == 422
    assert "10.0.0.1" in private.json()["detail"]

    assert (await admin.delete(f"{BASE}/{ids[0]}")).status_code == 204
    assert (await admin.get(f"{BASE}/{ids[0]}")).status_code == 404
    assert (await admin.delete(f"{BASE}/{ids[0]}")).status_code == 404
    assert (await admin.get(f"{BASE}/wh_0000000000000000")).status_code == 404
    assert (await admin.get(f"{BASE}/not-an-id")).status_code == 422


async def test_keys_of_another_community_cannot_see_or_change_subscriptions(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    delivery = f"{BASE}/{webhook_id}/deliveries/dlv_{'0' * 32}"
    attempts = [
        ("GET", BASE, None),
        ("POST", BASE, {"url": receiver.url(), "event_types": ["alert.raised"]}),
        ("GET", f"{BASE}/{webhook_id}", None),
        ("PATCH", f"{BASE}/{webhook_id}", {"active": False}),
        ("DELETE", f"{BASE}/{webhook_id}", None),
        ("POST", f"{BASE}/{webhook_id}/rotate-secret", None),
        ("POST", f"{BASE}/{webhook_id}/ping", None),
        ("GET", f"{BASE}/{webhook_id}/deliveries", None),
        ("GET", delivery, None),
        ("POST", f"{delivery}/redeliver", None),
    ]
    async with await api.client_for("other", Scope.ADMIN) as stranger:
        for method, path, body in attempts:
            response = await stranger.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert "community 'acme'" in response.json()["detail"]

    async with await api.client_for(COMMUNITY, Scope.READ) as reader:
        assert (await reader.get(f"{BASE}/{webhook_id}")).status_code == 200
        for method, path, body in attempts[1:2] + attempts[3:7]:
            response = await reader.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert "'admin' scope" in response.json()["detail"]

    webhook = (await admin.get(f"{BASE}/{webhook_id}")).json()
    assert webhook["active"] is True
    assert webhook["secret_rotated_at"] is None


# --------------------------------------------------------------------------- SSRF

REFUSED = [
    ("http://127.0.0.1:9/hook", "127.0.0.1 is not a public address (loopback)"),
    ("http://10.1.2.3/hook", "10.1.2.3 is not a public address (private)"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"),
    ("http://[::1]:8080/hook", "::1 is not a public address (loopback)"),
    ("http://localhost:8080/hook", "host 'localhost' resolves to 127.0.0.1"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv4 127.0.0.1 inside"),
    ("http://2130706433/hook", "resolves to 127.0.0.1"),
    ("http://0.0.0.0:8080/hook", "(unspecified)"),
]


async def test_internal_targets_are_refused_unless_allowlisted(
    api_settings: Settings, sync_db: SyncDb
) -> None:
    urls = [url for url, _ in REFUSED]
    async with admin_of(api_settings.model_copy(update={"webhook_allowed_targets": []})) as client:
        for url, expected in REFUSED:
            response = await client.post(BASE, json={"url": url, "event_types": ["alert.raised"]})
            assert response.status_code == 422, (url, response.text)
            detail = response.json()["detail"]
            assert expected in detail, detail
            assert "PEPITE_WEBHOOK_ALLOWED_TARGETS" in detail
        for url, expected in [
            ("ftp://example.com/hook", "http:// or https://"),
            ("https://user:pw@example.com/hook", "credentials"),
            ("https://example.com/" + "a" * 2000, "2000"),
        ]:
            response = await client.post(BASE, json={"url": url, "event_types": ["alert.raised"]})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["errors"][0]["location"] == "body.url"
            assert expected in response.json()["detail"]
        assert (await client.get(BASE)).json()["items"] == []

    allowlist = ["127.0.0.1", "::1", "10.0.0.0/8", "169.254.169.254", "localhost", "0.0.0.0"]
    async with admin_of(
        api_settings.model_copy(update={"webhook_allowed_targets": allowlist})
    ) as client:
        for url in urls:
            response = await client.post(BASE, json={"url": url, "event_types": ["alert.raised"]})
            assert response.status_code == 201, (url, response.text)


async def test_an_address_forbidden_at_delivery_time_fails_the_attempt(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    # Allowed when subscribing (the app allows 127.0.0.1); the worker allows nothing.
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    await workers.start(consume=False, webhook_allowed_targets=[], webhook_retry_hours=0.01 / 3600)
    await notify(api, digest_event())

    delivery = await only_delivery(admin, webhook_id, "failed")
    assert delivery["attempts"][0]["status_code"] is None
    assert "127.0.0.1 is not a public address (loopback)" in delivery["attempts"][0]["error"]
    assert receiver.requests == []


# --------------------------------------------------------------------------- delivery


async def test_a_delivery_is_signed_as_documented(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    created = await subscribe(admin, receiver.url())
    secret, webhook_id = created["secret"], created["webhook_id"]
    await workers.start()
    event = digest_event()
    await publish(api, event)

    (request,) = await receiver.wait_for(1)
    now = time.time()
    assert request.path == "/hook"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Pepite-Webhooks/1"
    assert request.headers["pepite-event"] == "digest.published"
    assert re.fullmatch(r"dlv_[0-9a-f]{32}", request.headers["pepite-delivery"])
    assert json.loads(request.body) == json.loads(encode_event(event))
    header = request.headers["pepite-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert abs(int(header.split(",")[0][2:]) - now) < 60

    assert verify(secret, header, request.body, now=now)
    assert not verify(secret.replace("whsec_", "whsec_x"), header, request.body, now=now)
    assert not verify(secret, header, request.body.replace(b"Week", b"Weak"), now=now)
    assert not verify(secret, header, request.body, now=now + 3600)
    assert docs_verifier()(secret, header, request.body)
    assert not docs_verifier()(secret, header, request.body + b" ")

    delivery = await only_delivery(admin, webhook_id, "delivered")
    assert delivery["delivery_id"] == request.headers["pepite-delivery"]
    assert delivery["event_id"] == event.event_id
    assert delivery["event"]["payload"]["digest_id"] == "acme:2026-W09"
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (1, 200, None)
    ]

    # After a rotation both secrets sign, the new one first, until the grace ends.
    rotated = (await admin.post(f"{BASE}/{webhook_id}/rotate-secret")).json()["secret"]
    await publish(api, digest_event("acme:2026-W10"))
    _, second = await receiver.wait_for(2)
    header = second.headers["pepite-signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)
    assert verify(rotated, header, second.body, now=time.time())
    assert verify(secret, header, second.body, now=time.time())
    assert docs_verifier()(rotated, header, second.body)


async def test_a_failed_attempt_is_retried_until_delivered(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    receiver.statuses = [500, 302]
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    await workers.start(consume=False)
    await notify(api, digest_event())

    requests = await receiver.wait_for(3)
    assert len({r.headers["pepite-delivery"] for r in requests}) == 1
    delivery = await only_delivery(admin, webhook_id, "delivered")
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (1, 500, "HTTP 500"),
        (2, 302, "HTTP 302: redirects are not followed"),
        (3, 200, None),
    ]
    assert delivery["attempt_count"] == 3
    assert all(a["duration_ms"] >= 0 and not a["manual"] for a in delivery["attempts"])
    first_at, second_at, _ = (datetime.fromisoformat(a["started_at"]) for a in delivery["attempts"])
    # The retry waited (a jittered) base delay.
    assert (second_at - first_at).total_seconds() >= 0.9 * FAST["webhook_retry_base_seconds"]
    webhook = (await admin.get(f"{BASE}/{webhook_id}")).json()
    assert webhook["consecutive_failures"] == 0
    assert (await get_json(admin, f"{BASE}/{webhook_id}/deliveries", status="failed"))[
        "items"
    ] == []


async def test_the_receiver_sees_its_own_host_name(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    # localhost resolves to the allowed 127.0.0.1: the worker connects to that checked
    # address, and the request still names the host of the URL.
    webhook_id = (await subscribe(admin, f"http://localhost:{receiver.port}/named"))["webhook_id"]
    await workers.start(consume=False)
    await notify(api, digest_event())

    (request,) = await receiver.wait_for(1)
    assert request.path == "/named"
    assert request.headers["host"] == f"localhost:{receiver.port}"
    await only_delivery(admin, webhook_id, "delivered")


async def test_a_subscription_is_disabled_after_failures_in_a_row(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    receiver.default_status = 503
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    await workers.start(consume=False)
    await notify(api, digest_event())

    webhook = await eventually(
        lambda: get_json(admin, f"{BASE}/{webhook_id}"), lambda w: not w["active"]
    )
    assert webhook["consecutive_failures"] == 3
    assert webhook["disabled_at"] is not None
    assert "3 failed delivery attempts in a row" in webhook["disabled_reason"]
    assert "HTTP 503" in webhook["disabled_reason"]

    # Its pending delivery fails at its next turn, without another POST.
    delivery = await only_delivery(admin, webhook_id, "failed")
    assert delivery["last_error"] == "the subscription is disabled"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503]
    assert len(receiver.requests) == 3
    assert (await admin.post(f"{BASE}/{webhook_id}/ping")).status_code == 409

    enabled = (await admin.patch(f"{BASE}/{webhook_id}", json={"active": True})).json()
    assert enabled["active"] is True
    assert enabled["consecutive_failures"] == 0
    assert enabled["disabled_at"] is None
    assert enabled["disabled_reason"] is None


async def test_a_failed_delivery_is_redelivered_on_request(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    receiver.statuses = [500]
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    # A retry window shorter than the first delay: one attempt, then failed.
    await workers.start(
        consume=False,
        webhook_retry_base_seconds=5.0,
        webhook_retry_max_seconds=5.0,
        webhook_retry_hours=0.5 / 3600,
    )
    await notify(api, digest_event())
    failed = await only_delivery(admin, webhook_id, "failed")
    assert [a["status_code"] for a in failed["attempts"]] == [500]
    listed = await get_json(admin, f"{BASE}/{webhook_id}/deliveries", status="failed")
    assert [d["delivery_id"] for d in listed["items"]] == [failed["delivery_id"]]
    # The log keeps a finished delivery for a while; one scheduled again is not finished.
    deliveries = api.state.db[DELIVERIES]
    ttl = (await deliveries.index_information())["finished_ttl"]
    assert ttl["expireAfterSeconds"] == DELIVERY_LOG_RETENTION_S
    assert ttl["key"] == [("finished_at", 1)]

    async def finished_at() -> object:
        doc = await deliveries.find_one({"_id": failed["delivery_id"]})
        assert doc is not None
        return doc.get("finished_at")

    assert isinstance(await finished_at(), datetime)

    # Scheduled while no worker runs: the next worker finds it in MongoDB.
    await workers.stop()
    path = f"{BASE}/{webhook_id}/deliveries/{failed['delivery_id']}/redeliver"
    response = await admin.post(path)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    again = await admin.post(path)
    assert again.status_code == 409
    assert "already has an attempt scheduled" in again.json()["detail"]
    assert len(receiver.requests) == 1
    assert await finished_at() is None

    await workers.start(consume=False)
    delivered = await only_delivery(admin, webhook_id, "delivered")
    assert [(a["status_code"], a["manual"]) for a in delivered["attempts"]] == [
        (500, False),
        (200, True),
    ]
    assert isinstance(await finished_at(), datetime)
    assert len(receiver.requests) == 2
    missing = f"{BASE}/{webhook_id}/deliveries/dlv_{'0' * 32}/redeliver"
    assert (await admin.post(missing)).status_code == 404


async def test_a_replayed_event_is_delivered_once(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    await workers.start()
    replayed, later = digest_event("acme:2026-W09"), digest_event("acme:2026-W10")
    # Same key, same partition: the later event is handled after both copies.
    await publish(api, replayed, replayed, later)

    await eventually(
        lambda: get_json(admin, f"{BASE}/{webhook_id}/deliveries", status="delivered"),
        lambda page: len(page["items"]) == 2,
    )
    # The handler stores nothing new for an event it has seen.
    await notify(api, replayed)
    await asyncio.sleep(0.3)
    page = await get_json(admin, f"{BASE}/{webhook_id}/deliveries")
    assert sorted(d["event_id"] for d in page["items"]) == sorted(
        [replayed.event_id, later.event_id]
    )
    assert Counter(json.loads(r.body)["event_id"] for r in receiver.requests) == {
        replayed.event_id: 1,
        later.event_id: 1,
    }


async def test_only_subscriptions_wanting_the_type_and_community_receive_it(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    digests = (await subscribe(admin, receiver.url("/digests")))["webhook_id"]
    alerts = (await subscribe(admin, receiver.url("/alerts"), ("alert.raised",)))["webhook_id"]
    paused = (await subscribe(admin, receiver.url("/paused"), ("alert.raised",)))["webhook_id"]
    await admin.patch(f"{BASE}/{paused}", json={"active": False})
    await workers.start(consume=False)
    await notify(api, digest_event(community="other"), alert_event(), digest_event())

    await receiver.wait_for(2)
    await asyncio.sleep(0.3)
    assert sorted(r.path for r in receiver.requests) == ["/alerts", "/digests"]
    for webhook_id in (digests, alerts):
        await only_delivery(admin, webhook_id, "delivered")
    assert (await get_json(admin, f"{BASE}/{paused}/deliveries"))["items"] == []


async def test_ping_reaches_only_the_subscription_pinged(
    admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    pinged = (await subscribe(admin, receiver.url("/pinged")))["webhook_id"]
    await subscribe(admin, receiver.url("/other"), ("alert.raised",))
    await workers.start()

    response = await admin.post(f"{BASE}/{pinged}/ping")
    assert response.status_code == 202, response.text
    (request,) = await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1
    assert request.path == "/pinged"
    assert request.headers["pepite-event"] == "alert.raised"
    body = json.loads(request.body)
    assert body["event_id"] == response.json()["event_id"]
    assert body["payload"]["kind"] == "webhook_test"


async def test_two_workers_never_attempt_the_same_delivery(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    await subscribe(admin, receiver.url())
    await notify(api, *(digest_event(f"acme:{n}") for n in range(30)))
    await asyncio.gather(
        workers.start(consume=False, webhook_concurrency=4),
        workers.start(consume=False, webhook_concurrency=4),
    )

    await receiver.wait_for(30)
    await asyncio.sleep(0.3)
    counts = Counter(r.headers["pepite-delivery"] for r in receiver.requests)
    assert len(counts) == 30
    assert set(counts.values()) == {1}
