"""The Slack Events API endpoint against a real broker and a real MongoDB."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pydantic import SecretStr
from tests.services.ingestor.slack_helpers import (
    TEAM_ID,
    rich_text_blocks,
    slack_channel_item,
    slack_message,
    slack_user,
    write_folder_export,
)

from pepite_contracts import (
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    MessageType,
    Topic,
    all_topics,
    decode_event,
)
from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.slack import iter_slack_export
from pepite_ingestor.live.sink import EventSink, KafkaEventSink
from pepite_ingestor.live.slack_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_slack_events_router,
    sign_slack_request,
    slack_signature,
)
from pepite_ingestor.repository import DELIVERIES, DeliveryRepository
from pepite_ingestor.settings import Settings
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics

COMMUNITY = "acme"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MAX_BODY = 16 * 1024
GENERAL = "C01GENERAL"
ALICE = slack_user("U01ALICE01", "alice", "Alice Martin")
NOW = int(time.time())


def live_message(text: str, at: str, **overrides: Any) -> dict[str, Any]:
    """A ``message`` event as the Events API sends it: the export's shape, plus channel."""
    event = slack_message(ALICE, text, at, channel=GENERAL, event_ts=at, channel_type="channel")
    # Message events carry no user_profile; the author is only an id.
    del event["user_profile"]
    event.update(overrides)
    return event


def envelope(event: dict[str, Any], event_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": "XXYYZZ",
        "team_id": TEAM_ID,
        "api_app_id": "A0PEPITE01",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": NOW,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": "U0PEPITEBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMFBFUElURTAxIn0",
    }
    body.update(overrides)
    return body


def ts(offset: int, micros: int = 100) -> str:
    return f"{NOW - 3600 + offset}.{micros:06d}"


def settings_for(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_signing_secret": SecretStr(SECRET),
        "slack_community_id": COMMUNITY,
        "live_max_body_bytes": MAX_BODY,
    }
    values.update(overrides)
    return Settings(**values)


class FlakySink:
    """The real sink, failing its first ``failures`` sends (a broker outage)."""

    def __init__(self, inner: EventSink, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures

    async def send(self, events: Sequence[ImportedEvent]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        await self.inner.send(events)


@dataclass
class Harness:
    client: httpx.AsyncClient
    kafka: KafkaSettings
    db: Database
    sink: FlakySink

    async def post(
        self,
        body: Any,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = sign_slack_request(secret, raw, timestamp=timestamp)
        signed.update(headers or {})
        return await self.client.post(
            "/slack/events", content=raw, headers={"Content-Type": "application/json", **signed}
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
        """Publish a sentinel message; it must be all there is on the topic."""
        event = live_message("sentinel", sentinel)
        response = await self.post(envelope(event, f"Ev-sentinel-{sentinel}"))
        assert response.status_code == 200, response.text
        found = await self.read(Topic.MESSAGES_RAW, 1)
        assert [event.payload.native_id for _key, event in found] == [f"{GENERAL}:{sentinel}"]


def build_app(settings: Settings, sink: EventSink, guard: DeliveryRepository) -> FastAPI:
    router = build_slack_events_router(settings, sink, guard)
    assert router is not None
    app = FastAPI()
    app.include_router(router)
    return app


@pytest.fixture
async def harness(kafka_settings: KafkaSettings, mongo_db: Database) -> AsyncIterator[Harness]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    async with EventPublisher(kafka_settings, client_id="slack-test") as publisher:
        sink = FlakySink(KafkaEventSink(publisher, topic_name=kafka_settings.topic_name))
        app = build_app(settings_for(), sink, DeliveryRepository(mongo_db))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as client:
            yield Harness(client, kafka_settings, mongo_db, sink)


def assert_problem(response: httpx.Response, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:pepite:problem:")
    assert body["title"]
    assert detail in body["detail"], body["detail"]
    return body


# ----------------------------------------------------------------------- handshake


async def test_url_verification_echoes_the_challenge(harness: Harness) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}

    response = await harness.post(body)

    assert response.status_code == 200
    assert response.json() == {"challenge": challenge}


def test_slack_signature_matches_slacks_documented_example() -> None:
    # The example of https://api.slack.com/authentication/verifying-requests-from-slack
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )

    signature = slack_signature(SECRET, 1531420618, body)

    assert signature == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


# ----------------------------------------------------------------------- publishing


async def test_a_message_is_published_like_an_imported_one(harness: Harness, tmp_path: Any) -> None:
    event = live_message("Hello from Slack 👋", ts(0))

    response = await harness.post(envelope(event, "Ev01MSG"))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "published": 1}
    ((key, published),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert key == f"{COMMUNITY}:{GENERAL}".encode()
    assert isinstance(published, MessageIngested)
    message = published.payload
    assert message.id == f"slack:{COMMUNITY}:{GENERAL}:{ts(0)}"
    assert message.text == "Hello from Slack 👋"
    assert message.author.id == f"slack:{COMMUNITY}:U01ALICE01"
    assert message.channel.id == GENERAL
    assert message.raw["channel_type"] == "channel"
    # The same message in an export: same stable id, same event id.
    export = write_folder_export(
        tmp_path / "export",
        users=[ALICE],
        channels=[slack_channel_item(GENERAL, "general")],
        days={"general": {"2024-03-01": [slack_message(ALICE, "Hello from Slack 👋", ts(0))]}},
    )
    (imported,) = list(iter_slack_export(export, COMMUNITY))
    assert isinstance(imported, MessageIngested)
    assert imported.payload.id == message.id
    assert imported.event_id == published.event_id


async def test_a_thread_reply(harness: Harness) -> None:
    reply = live_message("me too", ts(60), thread_ts=ts(0), parent_user_id="U01BOB0002")

    response = await harness.post(envelope(reply, "Ev02REPLY"))

    assert response.status_code == 200, response.text
    ((_key, published),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert published.payload.type is MessageType.REPLY
    assert published.payload.reply_to_id == f"slack:{COMMUNITY}:{GENERAL}:{ts(0)}"
    assert published.payload.thread.id == f"{GENERAL}:{ts(0)}"


async def test_a_replayed_delivery_is_published_once(harness: Harness) -> None:
    body = envelope(live_message("only once", ts(0)), "Ev03ONCE")

    first = await harness.post(body)
    # Slack's retry: same event_id, signed again later.
    retry = await harness.post(
        body,
        timestamp=int(time.time()) + 5,
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "x"},
    )
    replay = await harness.post(body)

    assert first.status_code == 200
    assert first.json()["published"] == 1
    assert retry.status_code == 200
    assert retry.json() == {"status": "duplicate"}
    assert replay.json() == {"status": "duplicate"}
    # Each answer came once its events were flushed to the broker, so a duplicate would
    # already be there: the read's look for strays after the first record finds it,
    # without waiting out the whole deadline for a second one that must not come.
    found = await harness.read(Topic.MESSAGES_RAW, 1)
    assert len(found) == 1
    assert await harness.db[DELIVERIES].count_documents({"_id": "slack:Ev03ONCE"}) == 1


async def test_message_changed_is_an_edit_on_the_messages_partition(harness: Harness) -> None:
    original = live_message("Meeting at 2pm", ts(0))
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": {
            **{k: v for k, v in original.items() if k not in ("channel", "event_ts")},
            "text": "Meeting at 3pm",
            "blocks": rich_text_blocks("Meeting at 3pm"),
            "edited": {"user": "U01ALICE01", "ts": ts(120, 0)},
        },
        "channel": GENERAL,
        "previous_message": {k: v for k, v in original.items() if k != "channel"},
        "event_ts": ts(120, 5),
        "ts": ts(120, 5),
        "channel_type": "channel",
    }

    assert (await harness.post(envelope(original, "Ev04NEW"))).status_code == 200
    response = await harness.post(envelope(changed, "Ev04EDIT"))

    assert response.status_code == 200, response.text
    found = await harness.read(Topic.MESSAGES_RAW, 2)
    assert [type(event) for _key, event in found] == [MessageIngested, MessageEdited]
    (message_key, message), (edit_key, edit) = found
    assert edit_key == message_key == f"{COMMUNITY}:{GENERAL}".encode()
    assert edit.type == "message.edited"
    assert edit.payload.id == message.payload.id
    assert edit.payload.text == "Meeting at 3pm"
    assert edit.payload.edited_at.isoformat() == f"{edit.payload.message.edited_at.isoformat()}"
    assert edit.payload.message is not None
    assert edit.payload.message.text == "Meeting at 3pm"
    assert edit.payload.message.created_at == message.payload.created_at
    # The text before the edit is not carried along.
    assert "previous_message" not in json.dumps(edit.payload.raw)
    assert "2pm" not in edit.model_dump_json()


async def test_message_deleted(harness: Harness) -> None:
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": GENERAL,
        "ts": ts(300, 7),
        "deleted_ts": ts(0),
        "event_ts": ts(300, 7),
        "previous_message": {"type": "message", "user": "U01ALICE01", "text": "oops", "ts": ts(0)},
        "channel_type": "channel",
    }

    response = await harness.post(envelope(deleted, "Ev05DEL"))

    assert response.status_code == 200, response.text
    ((key, event),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert key == f"{COMMUNITY}:{GENERAL}".encode()
    assert isinstance(event, MessageDeleted)
    assert event.payload.id == f"slack:{COMMUNITY}:{GENERAL}:{ts(0)}"
    assert "oops" not in event.model_dump_json()


async def test_channel_membership_events(harness: Harness) -> None:
    joined = {
        "type": "member_joined_channel",
        "user": "U01ALICE01",
        "channel": GENERAL,
        "channel_type": "C",
        "team": TEAM_ID,
        "inviter": "U01BOB0002",
        "event_ts": ts(0),
    }
    left = {
        "type": "member_left_channel",
        "user": "U01ALICE01",
        "channel": GENERAL,
        "team": TEAM_ID,
    }

    assert (await harness.post(envelope(joined, "Ev06JOIN"))).status_code == 200
    assert (await harness.post(envelope(left, "Ev06LEFT"))).status_code == 200

    found = await harness.read(Topic.MEMBERS_EVENTS, 2)
    assert [type(event) for _key, event in found] == [MemberJoined, MemberLeft]
    assert {key for key, _event in found} == {f"{COMMUNITY}:{GENERAL}".encode()}
    join = found[0][1].payload
    assert join.member.id == f"slack:{COMMUNITY}:U01ALICE01"
    assert join.channel.id == GENERAL
    assert join.at.timestamp() == pytest.approx(float(ts(0)))
    assert join.raw == {"channel_type": "C", "team": TEAM_ID, "inviter": "U01BOB0002"}
    # No event_ts: the envelope's event_time says when.
    assert found[1][1].payload.at.timestamp() == NOW


async def test_team_join_names_the_member_for_later_messages(harness: Harness) -> None:
    newcomer = slack_user("U01NEWBIE7", "newbie", "New Comer")
    join = {"type": "team_join", "user": newcomer, "event_ts": ts(0)}
    hello = live_message("hi all", ts(10), user="U01NEWBIE7")

    assert (await harness.post(envelope(join, "Ev07TEAM"))).status_code == 200
    assert (await harness.post(envelope(hello, "Ev07HELLO"))).status_code == 200

    ((key, joined),) = await harness.read(Topic.MEMBERS_EVENTS, 1)
    assert key == f"{COMMUNITY}:_community".encode()
    assert isinstance(joined, MemberJoined)
    assert joined.payload.channel is None
    assert joined.payload.member.name == "newbie"
    assert joined.payload.member.display_name == "newbie"
    # The rest of the user object, less what the member says.
    user = joined.payload.raw["user"]
    assert user["real_name"] == "New Comer"
    assert user["tz"] == "Europe/Paris"
    assert user["profile"]["image_192"].endswith("U01NEWBIE7_192.png")
    assert "display_name" not in user["profile"]
    assert "image_72" not in user["profile"]
    assert "id" not in user
    ((_key, message),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert message.payload.author.name == "newbie"


async def test_a_renamed_channel_is_named_in_later_messages(harness: Harness) -> None:
    rename = {
        "type": "channel_rename",
        "channel": {"id": GENERAL, "name": "town-square", "created": 1360782804},
        "event_ts": ts(0),
    }

    assert (await harness.post(envelope(rename, "Ev08RENAME"))).json()["published"] == 0
    assert (await harness.post(envelope(live_message("x", ts(1)), "Ev08MSG"))).status_code == 200

    ((_key, message),) = await harness.read(Topic.MESSAGES_RAW, 1)
    assert message.payload.channel.name == "town-square"


async def test_unknown_event_types_are_acknowledged_and_ignored(harness: Harness) -> None:
    reaction = {
        "type": "reaction_added",
        "user": "U01ALICE01",
        "reaction": "thumbsup",
        "item": {"type": "message", "channel": GENERAL, "ts": ts(0)},
        "event_ts": ts(5),
    }
    rate_limited = {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "type": "app_rate_limited",
        "team_id": TEAM_ID,
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0PEPITE01",
    }

    first = await harness.post(envelope(reaction, "Ev09REACT"))
    second = await harness.post(rate_limited)

    assert first.status_code == 200
    assert first.json() == {"status": "ignored", "reason": "event type 'reaction_added'"}
    assert second.status_code == 200
    assert second.json()["status"] == "ignored"
    await harness.assert_nothing_published_before(ts(99))


async def test_a_failed_publish_is_retried_by_slack(harness: Harness) -> None:
    body = envelope(live_message("survives an outage", ts(0)), "Ev10FLAKY")
    harness.sink.failures = 1

    failed = await harness.post(body)
    retried = await harness.post(body, headers={"X-Slack-Retry-Num": "1"})

    assert_problem(failed, 503, "retry")
    assert failed.headers["retry-after"] == "5"
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"status": "ok", "published": 1}
    found = await harness.read(Topic.MESSAGES_RAW, 1)
    assert [event.payload.text for _key, event in found] == ["survives an outage"]


# ----------------------------------------------------------------------- refused


async def test_bad_signature_is_refused_and_nothing_published(harness: Harness) -> None:
    body = envelope(live_message("forged", ts(0)), "Ev11FORGED")

    response = await harness.post(body, secret="not-the-secret")

    assert_problem(response, 401, "signature does not match")
    assert response.headers["www-authenticate"].startswith(SIGNATURE_HEADER)
    await harness.assert_nothing_published_before(ts(99))


async def test_a_tampered_body_is_refused(harness: Harness) -> None:
    raw = json.dumps(envelope(live_message("original", ts(0)), "Ev12TAMPER")).encode()
    headers = sign_slack_request(SECRET, raw)

    response = await harness.client.post(
        "/slack/events", content=raw.replace(b"original", b"tampered"), headers=headers
    )

    assert_problem(response, 401, "signature does not match")
    await harness.assert_nothing_published_before(ts(99))


@pytest.mark.parametrize("age", [301, -301, 3600 * 24])
async def test_stale_or_future_timestamps_are_refused(harness: Harness, age: int) -> None:
    body = envelope(live_message("replayed", ts(0)), f"Ev13OLD{age}")

    response = await harness.post(body, timestamp=int(time.time()) - age)

    assert_problem(response, 401, "outside the 300 s window")
    await harness.assert_nothing_published_before(ts(99))


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({TIMESTAMP_HEADER: ""}, f"{TIMESTAMP_HEADER} must be unix seconds"),
        ({TIMESTAMP_HEADER: "yesterday"}, f"{TIMESTAMP_HEADER} must be unix seconds"),
        ({SIGNATURE_HEADER: "v0=deadbeef"}, "signature does not match"),
        ({SIGNATURE_HEADER: "garbage"}, "signature does not match"),
    ],
)
async def test_bad_headers_are_refused(
    harness: Harness, headers: dict[str, str], detail: str
) -> None:
    response = await harness.post(envelope(live_message("x", ts(0)), "Ev14"), headers=headers)

    assert_problem(response, 401, detail)


async def test_missing_headers_are_refused(harness: Harness) -> None:
    no_timestamp = await harness.client.post("/slack/events", content=b"{}")
    no_signature = await harness.client.post(
        "/slack/events", content=b"{}", headers={TIMESTAMP_HEADER: str(int(time.time()))}
    )

    assert_problem(no_timestamp, 401, f"missing {TIMESTAMP_HEADER} header")
    assert_problem(no_signature, 401, f"missing {SIGNATURE_HEADER} header")


async def test_a_body_over_the_limit_is_refused(harness: Harness) -> None:
    big = envelope(live_message("x" * MAX_BODY, ts(0)), "Ev15BIG")

    response = await harness.post(big)

    assert_problem(response, 413, f"over {MAX_BODY} bytes")
    await harness.assert_nothing_published_before(ts(99))


async def test_a_streamed_body_over_the_limit_is_not_read_to_the_end(harness: Harness) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 1024

    headers = sign_slack_request(SECRET, b"whatever")
    response = await harness.client.post("/slack/events", content=chunks(), headers=headers)

    assert_problem(response, 413, f"over {MAX_BODY} bytes")
    assert sent <= MAX_BODY // 1024 + 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"type": "url_verification"}', "without a 'challenge' string"),
        (b'{"type": "event_callback", "event": {"type": "message"}}', "without a valid 'event_id'"),
        (b'{"type": "event_callback", "event_id": "Ev1"}', "without an 'event' object"),
    ],
)
async def test_garbage_is_a_bad_request(harness: Harness, body: bytes, detail: str) -> None:
    response = await harness.post(body)

    problem = assert_problem(response, 400, detail)
    assert problem["type"] == "urn:pepite:problem:invalid-slack-event"
    # Retrying cannot help: Slack is told not to.
    assert response.headers["x-slack-no-retry"] == "1"


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        ({"type": "message", "channel": GENERAL, "text": "no ts"}, "field 'ts' is missing"),
        ({"type": "message", "ts": "1.0", "text": "no channel"}, "field 'channel' must be"),
        (
            {"type": "message", "subtype": "message_changed", "channel": GENERAL, "ts": "1.0"},
            "field 'message' must be the changed message object",
        ),
        ({"type": "member_joined_channel", "channel": GENERAL}, "field 'user' must be a user id"),
        ({"type": "team_join", "user": "U1"}, "field 'user' must be a user object"),
    ],
)
async def test_an_unreadable_event_is_a_bad_request(
    harness: Harness, event: dict[str, Any], detail: str
) -> None:
    response = await harness.post(envelope(event, "Ev16BAD"))

    assert_problem(response, 400, detail)
    await harness.assert_nothing_published_before(ts(99))


# ----------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "overrides",
    [
        {"slack_signing_secret": None},
        {"slack_community_id": None},
        {"slack_signing_secret": None, "slack_community_id": None},
    ],
)
async def test_the_endpoint_is_off_until_configured(overrides: dict[str, Any]) -> None:
    # Never started: building the router must not need the broker.
    sink = KafkaEventSink(EventPublisher(KafkaSettings()))

    assert build_slack_events_router(settings_for(**overrides), sink, _NoGuard()) is None


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"slack_signing_secret": SecretStr("")}, "PEPITE_SLACK_SIGNING_SECRET is empty"),
        ({"slack_community_id": "has:colon"}, "invalid community id"),
    ],
)
async def test_a_bad_configuration_fails_at_start(overrides: dict[str, Any], error: str) -> None:
    sink = KafkaEventSink(EventPublisher(KafkaSettings()))

    with pytest.raises(ValueError, match=error):
        build_slack_events_router(settings_for(**overrides), sink, _NoGuard())


class _NoGuard:
    """Never consulted: the router is not built."""

    async def first_seen(self, key: str) -> bool:  # pragma: no cover
        raise AssertionError(key)

    async def forget(self, key: str) -> None:  # pragma: no cover
        raise AssertionError(key)
