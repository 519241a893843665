"""Slack Events API endpoint: ``POST /slack/events``.

Slack signs every request with the app's signing secret::

    X-Slack-Request-Timestamp: 1714564800
    X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, f"v0:{timestamp}:{raw body}")>

A request whose timestamp is more than ``settings.live_replay_window_s`` away from
now, or whose signature does not match, is refused (401) and nothing is published.

What is published, converted by the same code as the export importer
(:class:`pepite_ingestor.importers.slack.SlackConverter`), so that a message
received live and the same message imported later share their stable id:

- ``message`` events: a new message or thread reply becomes ``message.ingested``;
  ``message_changed`` becomes ``message.edited`` (with the whole new message);
  ``message_deleted`` becomes ``message.deleted``; ``channel_join`` /
  ``channel_leave`` notices become ``member.joined`` / ``member.left``;
- ``member_joined_channel`` / ``member_left_channel``: ``member.joined`` / ``member.left``;
- ``team_join``: ``member.joined`` for the whole workspace.

Events only carry ids: a channel is named after its id until a ``channel_created``
or ``channel_rename`` event (or a ``channel_name`` notice) names it, and a member
after their id until ``team_join`` or ``user_change`` describes them, unless the
message embeds the author's profile.

Every delivery is published once: Slack retries a delivery it got no 2xx for
(``X-Slack-Retry-Num``), and its ``event_id`` is recorded with the
:class:`~pepite_ingestor.live.sink.ReplayGuard` before publishing; a repeat is
answered 200 without publishing. If the broker does not take the events, the id
is forgotten again and Slack gets a 503, so its retry goes through.

Answers: 200 once the events are on the broker (or for a duplicate, or for an
event type that is not ingested: Slack disables apps whose endpoint fails too
often); ``url_verification`` gets its challenge back; problem+json otherwise:
400 (not JSON, or an event of a known type in a shape that cannot be read), 401,
413 (body over ``settings.live_max_body_bytes``, refused before reading it all),
503 (the events could not be stored: retry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pepite_contracts import ChannelRef
from pepite_ingestor.importers.common import ImportedEvent, unmodeled
from pepite_ingestor.importers.slack import (
    SlackConverter,
    SlackShapeError,
    diagnose_message,
    parse_slack_ts,
)
from pepite_ingestor.live.http import BodyTooLargeError, problem, read_body, timestamp_problem
from pepite_ingestor.live.sink import EventSink, ReplayGuard
from pepite_ingestor.settings import Settings

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "build_slack_events_router",
    "sign_slack_request",
    "slack_signature",
]

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
RETRY_HEADER = "X-Slack-Retry-Num"
_VERSION = "v0"
#: Tells Slack not to retry a request that will never succeed (Slack's own header).
_NO_RETRY = {"X-Slack-No-Retry": "1"}
#: Longest accepted ``event_id``; it becomes part of a stored key.
_MAX_EVENT_ID = 200
#: Channel names learnt from events, at most (a workspace has far fewer channels).
_MAX_CHANNELS = 100_000

_MEMBER_EVENTS = {"member_joined_channel": True, "member_left_channel": False}
#: Fields of membership events the change itself says (the user object goes to raw["user"]).
_MEMBER_EVENT_FIELDS = frozenset({"type", "user", "channel", "event_ts"})
_RENAME_EVENTS = frozenset({"channel_created", "channel_rename", "group_rename"})
_USER_EVENTS = frozenset({"user_change", "user_profile_changed"})


def slack_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value Slack sends for ``body``.

    Args:
        secret: The Slack app's signing secret.
        timestamp: Unix seconds, as sent in ``X-Slack-Request-Timestamp``.
        body: The exact request body bytes.

    Returns:
        ``v0=`` and the hex HMAC-SHA256 of ``f"v0:{timestamp}:{body}"``.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    base = f"{_VERSION}:{timestamp}:".encode() + body
    return f"{_VERSION}=" + hmac.new(key, base, hashlib.sha256).hexdigest()


def sign_slack_request(
    secret: str | bytes, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack would send with ``body`` (for tests and local tools).

    Args:
        secret: The Slack app's signing secret.
        body: The exact bytes that will be sent.
        timestamp: Unix seconds to sign with; now if omitted.

    Returns:
        ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: slack_signature(secret, stamp, body),
    }


def _unauthorized(detail: str) -> JSONResponse:
    return problem(
        401,
        "invalid-signature",
        "Request not authenticated",
        detail,
        headers={"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="pepite-slack"'},
    )


def _bad_request(detail: str) -> JSONResponse:
    return problem(400, "invalid-slack-event", "Invalid Slack event", detail, headers=_NO_RETRY)


def _unavailable() -> JSONResponse:
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "the events could not be stored; nothing was recorded, Slack's retry will go through",
        headers={"Retry-After": "5"},
    )


def _url_verification(envelope: Mapping[str, Any]) -> JSONResponse:
    """Slack checks a new endpoint URL by asking it to echo a challenge."""
    challenge = envelope.get("challenge")
    if not isinstance(challenge, str):
        return _bad_request("url_verification without a 'challenge' string")
    return JSONResponse({"challenge": challenge})


class _RejectedEventError(Exception):
    """An event of a known type that cannot be read."""


class _SlackEventsHandler:
    """Checks, converts and publishes one Events API request at a time."""

    def __init__(
        self,
        secret: bytes,
        community_id: str,
        settings: Settings,
        sink: EventSink,
        guard: ReplayGuard,
    ) -> None:
        self._secret = secret
        self._converter = SlackConverter(community_id)
        self._window_s = settings.live_replay_window_s
        self._max_body = settings.live_max_body_bytes
        self._sink = sink
        self._guard = guard
        # Names learnt from channel events; Slack's message events carry only ids.
        self._channel_names: dict[str, str] = {}

    async def handle(self, request: Request) -> Response:
        body = await self._authenticated_body(request)
        if isinstance(body, Response):
            return body
        try:
            envelope = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _bad_request(f"the body is not valid JSON ({exc})")
        if not isinstance(envelope, dict):
            return _bad_request("the body must be a JSON object (a Slack Events API envelope)")
        kind = envelope.get("type")
        if kind == "url_verification":
            return _url_verification(envelope)
        if kind != "event_callback":
            # e.g. app_rate_limited: nothing to ingest, and an error would only make Slack retry.
            logger.info("slack request ignored", extra={"slack_type": str(kind)})
            return JSONResponse({"status": "ignored", "reason": f"request type {kind!r}"})
        return await self._event_callback(envelope, request.headers.get(RETRY_HEADER))

    async def _authenticated_body(self, request: Request) -> bytes | Response:
        """The body of a request Slack signed, or the answer refusing it.

        The headers are checked before the body is read, so a stale or unsigned
        request costs nothing to refuse.
        """
        refused = self._check_timestamp(request.headers.get(TIMESTAMP_HEADER))
        if refused is not None:
            return refused
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return _unauthorized(f"missing {SIGNATURE_HEADER} header")
        try:
            body = await read_body(request, self._max_body)
        except BodyTooLargeError:
            return problem(
                413,
                "body-too-large",
                "Request body too large",
                f"the body is over {self._max_body} bytes",
            )
        timestamp = request.headers[TIMESTAMP_HEADER].strip()
        expected = slack_signature(self._secret, timestamp, body)
        # Constant time: a timing difference would let a caller guess the digest bytewise.
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            return _unauthorized(
                "signature does not match: Slack signs f'v0:{timestamp}:{body}' with "
                "HMAC-SHA256 and the app's signing secret (check PEPITE_SLACK_SIGNING_SECRET)"
            )
        return body

    def _check_timestamp(self, timestamp: str | None) -> Response | None:
        wrong = timestamp_problem(
            timestamp,
            header=TIMESTAMP_HEADER,
            window_s=self._window_s,
            stale=f"{TIMESTAMP_HEADER} is outside the {self._window_s} s window: the request "
            "is stale (a replay?) or a clock is wrong",
        )
        return None if wrong is None else _unauthorized(wrong)

    async def _event_callback(self, envelope: dict[str, Any], retry: str | None) -> Response:
        event_id = envelope.get("event_id")
        if not isinstance(event_id, str) or not event_id or len(event_id) > _MAX_EVENT_ID:
            return _bad_request("event_callback without a valid 'event_id'")
        event = envelope.get("event")
        if not isinstance(event, dict):
            return _bad_request("event_callback without an 'event' object")
        try:
            events = self._convert(envelope, event)
        except _RejectedEventError as exc:
            return _bad_request(f"event {event_id}: {exc}")
        if events is None:
            return JSONResponse(
                {"status": "ignored", "reason": f"event type {event.get('type')!r}"}
            )
        if retry is not None:
            logger.info("slack retry", extra={"event_id": event_id, "retry": retry})
        if not events:
            return JSONResponse({"status": "ok", "published": 0})
        return await self._publish(f"slack:{event_id}", events)

    async def _publish(self, key: str, events: list[ImportedEvent]) -> Response:
        try:
            first_time = await self._guard.first_seen(key)
        except Exception:
            logger.exception("slack replay guard unavailable")
            return _unavailable()
        if not first_time:
            return JSONResponse({"status": "duplicate"})
        try:
            await self._sink.send(events)
        except Exception:
            logger.exception("slack events not published", extra={"events": len(events)})
            try:
                # Not published, so not seen: Slack's retry must go through.
                await self._guard.forget(key)
            except Exception:
                logger.exception("slack delivery key not released", extra={"key": key})
            return _unavailable()
        return JSONResponse({"status": "ok", "published": len(events)})

    def _convert(
        self, envelope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> list[ImportedEvent] | None:
        """The events of one Slack event; None for a type that is not ingested.

        Raises:
            _RejectedEventError: an event of a known type whose shape cannot be read.
        """
        kind = event.get("type")
        converter = self._converter
        try:
            if kind == "message":
                self._learn_name(event)
                converted = converter.convert(event, self._channel(event.get("channel")))
                return [converted] if converted is not None else []
            if kind in _MEMBER_EVENTS:
                user = event.get("user")
                if not isinstance(user, str) or not user:
                    raise SlackShapeError("user", "must be a user id")
                change = converter.membership(
                    user,
                    self._when(envelope, event),
                    joined=_MEMBER_EVENTS[kind],
                    channel=self._channel(event.get("channel")),
                    raw=unmodeled(event, _MEMBER_EVENT_FIELDS),
                )
                return [change]
            if kind == "team_join":
                user = event.get("user")
                if not isinstance(user, dict):
                    raise SlackShapeError("user", "must be a user object")
                change = converter.membership(
                    user,
                    self._when(envelope, event),
                    joined=True,
                    raw=unmodeled(event, _MEMBER_EVENT_FIELDS),
                )
                return [change]
            if kind in _USER_EVENTS:
                user = event.get("user")
                if isinstance(user, dict):
                    converter.remember_user(user)
                return []
            if kind in _RENAME_EVENTS:
                channel = event.get("channel")
                if isinstance(channel, dict):
                    self._remember_channel(channel.get("id"), channel.get("name"))
                return []
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # ValueError covers SlackShapeError and pydantic's ValidationError.
            raise _RejectedEventError(
                f"{kind} event: {diagnose_message(dict(event), exc)}"
            ) from exc
        return None

    def _channel(self, channel_id: Any) -> ChannelRef:
        if not isinstance(channel_id, str) or not channel_id:
            raise SlackShapeError("channel", "must be a channel id")
        return ChannelRef(id=channel_id, name=self._channel_names.get(channel_id, channel_id))

    def _learn_name(self, event: Mapping[str, Any]) -> None:
        # "<user> renamed the channel from x to y": the notice carries the new name.
        if event.get("subtype") in ("channel_name", "group_name"):
            self._remember_channel(event.get("channel"), event.get("name"))

    def _remember_channel(self, channel_id: Any, name: Any) -> None:
        if isinstance(channel_id, str) and isinstance(name, str) and channel_id and name:
            if len(self._channel_names) >= _MAX_CHANNELS:
                self._channel_names.clear()
            self._channel_names[channel_id] = name

    @staticmethod
    def _when(envelope: Mapping[str, Any], event: Mapping[str, Any]) -> datetime:
        """When an event happened: its ``event_ts``, else the envelope's ``event_time``."""
        if event.get("event_ts") is not None:
            return parse_slack_ts(event["event_ts"], "event_ts")
        if envelope.get("event_time") is not None:
            return parse_slack_ts(envelope["event_time"], "event_time")
        return datetime.now(UTC)


def build_slack_events_router(
    settings: Settings, sink: EventSink, guard: ReplayGuard
) -> APIRouter | None:
    """The router of ``POST /slack/events``, or None when Slack is not configured.

    The endpoint is on only when both ``settings.slack_signing_secret`` and
    ``settings.slack_community_id`` are set; otherwise this returns None and the
    service has no Slack endpoint.

    Args:
        settings: The ingestor settings (Slack secret and community, body and time limits).
        sink: Where events are published.
        guard: Remembers deliveries, so each is published once.

    Returns:
        The router to include in the service's app, or None if Slack is off.

    Raises:
        ValueError: the signing secret is empty, or the community id is invalid.
    """
    if settings.slack_signing_secret is None or settings.slack_community_id is None:
        return None
    secret = settings.slack_signing_secret.get_secret_value()
    if not secret:
        raise ValueError("PEPITE_SLACK_SIGNING_SECRET is empty")
    handler = _SlackEventsHandler(
        secret.encode(), settings.slack_community_id, settings, sink, guard
    )
    router = APIRouter(tags=["slack"])

    @router.post(
        "/slack/events",
        summary="Receive Slack Events API deliveries",
        responses={
            200: {
                "description": "Published, duplicate, ignored, or the url_verification challenge."
            },
            400: {"description": "Not JSON, or an event that cannot be read."},
            401: {"description": "Bad or stale signature."},
            413: {"description": "Body too large."},
            503: {"description": "Events could not be published; Slack will retry."},
        },
    )
    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    return router
