"""The generic signed webhook: any platform (Circle, a bot, a forum plugin) pushes records.

``POST /webhooks/{community_id}`` takes the records of the generic JSON Lines format
(:mod:`pepite_ingestor.importers.jsonl`, documented in docs/formats/jsonl.md): one
record as the body, or ``{"records": [...]}`` with up to :data:`MAX_RECORDS` of them.

Every request is signed with the community's secret (``settings.webhook_secrets``)::

    X-Pepite-Timestamp: 1714564800
    X-Pepite-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>
    X-Pepite-Delivery: <optional id of this delivery; retries repeat it>

The timestamp must be within ``settings.live_replay_window_s`` of now, and a delivery
(its ``X-Pepite-Delivery`` id, else its signature) is published once: a retry of a
delivery already published is answered ``200 {"status": "duplicate"}``.

Answers: ``202 {"accepted": n}`` once the events are on the broker; problem+json
otherwise: 401 (unknown community, bad or stale signature), 413 (body too large),
422 (not JSON, or a record is invalid: nothing is published), 503 (the broker did
not take the events: retry later, the delivery was not recorded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pepite_contracts import validate_community_id
from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.jsonl import (
    RECORD_ADAPTER,
    JsonlConverter,
    JsonlRecord,
    describe_record_error,
)
from pepite_ingestor.live.http import BodyTooLargeError, problem, read_body, timestamp_problem
from pepite_ingestor.live.sink import EventSink, ReplayGuard
from pepite_ingestor.settings import Settings

__all__ = [
    "DELIVERY_HEADER",
    "MAX_RECORDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "build_webhook_router",
    "sign_webhook",
    "webhook_signature",
]

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Pepite-Timestamp"
SIGNATURE_HEADER = "X-Pepite-Signature"
DELIVERY_HEADER = "X-Pepite-Delivery"
#: Most records one request may carry.
MAX_RECORDS = 1000
#: Longest accepted delivery id; it becomes part of a stored key.
MAX_DELIVERY_ID = 200
#: How many invalid records a 422 answer lists.
_MAX_LISTED_ERRORS = 20
_SIGNATURE_PREFIX = "sha256="


def webhook_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``.

    Args:
        secret: The community's webhook secret.
        timestamp: Unix seconds, as sent in ``X-Pepite-Timestamp``.
        body: The exact request body bytes.

    Returns:
        The hex digest that follows ``sha256=`` in ``X-Pepite-Signature``.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(
    secret: str | bytes,
    body: bytes,
    *,
    timestamp: int | None = None,
    delivery: str | None = None,
) -> dict[str, str]:
    """The headers that make ``body`` a valid webhook request.

    Example::

        body = json.dumps({"kind": "message", ...}).encode()
        httpx.post(url, content=body, headers={
            "Content-Type": "application/json", **sign_webhook(secret, body)})

    Args:
        secret: The community's webhook secret.
        body: The exact bytes that will be sent.
        timestamp: Unix seconds to sign with; now if omitted.
        delivery: A delivery id to send (keep it when retrying the same delivery).

    Returns:
        ``X-Pepite-Timestamp``, ``X-Pepite-Signature`` and, if given, ``X-Pepite-Delivery``.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: _SIGNATURE_PREFIX + webhook_signature(secret, stamp, body),
    }
    if delivery is not None:
        headers[DELIVERY_HEADER] = delivery
    return headers


def _unauthorized(detail: str) -> JSONResponse:
    return problem(
        401,
        "invalid-signature",
        "Request not authenticated",
        detail,
        # RFC 9110: a 401 says how to authenticate.
        headers={"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="pepite-webhooks"'},
    )


def _invalid(detail: str, **extensions: Any) -> JSONResponse:
    return problem(422, "invalid-records", "Invalid webhook records", detail, **extensions)


class _WebhookHandler:
    """Checks, converts and publishes one webhook request at a time."""

    def __init__(self, settings: Settings, sink: EventSink, guard: ReplayGuard) -> None:
        self._secrets: dict[str, bytes] = {}
        self._converters: dict[str, JsonlConverter] = {}
        for community, secret in settings.webhook_secrets.items():
            # A bad id would make every event invalid: refuse it at start-up instead.
            validate_community_id(community)
            value = secret.get_secret_value()
            if not value:
                raise ValueError(f"the webhook secret of community {community!r} is empty")
            self._secrets[community] = value.encode()
            self._converters[community] = JsonlConverter(community)
        self._window_s = settings.live_replay_window_s
        self._max_body = settings.live_max_body_bytes
        self._sink = sink
        self._guard = guard

    async def handle(self, community_id: str, request: Request) -> Response:
        secret = self._secrets.get(community_id)
        if secret is None:
            return _unauthorized(f"no webhook secret is configured for community {community_id!r}")
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        try:
            body = await read_body(request, self._max_body)
        except BodyTooLargeError:
            return problem(
                413,
                "body-too-large",
                "Request body too large",
                f"the body is over {self._max_body} bytes; send fewer records per request",
            )
        timestamp = request.headers[TIMESTAMP_HEADER].strip()
        signature = request.headers[SIGNATURE_HEADER].strip()
        expected = _SIGNATURE_PREFIX + webhook_signature(secret, timestamp, body)
        # Constant time: a timing difference would let a caller guess the digest bytewise.
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            return _unauthorized(
                "signature does not match: sign f'{timestamp}.{body}' with HMAC-SHA256 "
                "and the community's secret, over the exact bytes sent"
            )

        parsed = self._parse(body, self._converters[community_id])
        if isinstance(parsed, Response):
            return parsed
        delivery = request.headers.get(DELIVERY_HEADER, "").strip() or signature.lower()
        return await self._publish(f"webhook:{community_id}:{delivery}", parsed)

    def _check_headers(self, request: Request) -> Response | None:
        """Refuse, before reading the body, what the headers alone show is wrong."""
        refused = self._check_timestamp(request.headers.get(TIMESTAMP_HEADER))
        if refused is not None:
            return refused
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return _unauthorized(f"missing {SIGNATURE_HEADER} header")
        if not signature.strip().lower().startswith(_SIGNATURE_PREFIX):
            return _unauthorized(f"{SIGNATURE_HEADER} must be 'sha256=<hex digest>'")
        delivery = request.headers.get(DELIVERY_HEADER)
        if delivery is not None and len(delivery.strip()) > MAX_DELIVERY_ID:
            return problem(
                400,
                "invalid-delivery-id",
                "Invalid delivery id",
                f"{DELIVERY_HEADER} is longer than {MAX_DELIVERY_ID} characters",
            )
        return None

    def _check_timestamp(self, timestamp: str | None) -> Response | None:
        wrong = timestamp_problem(
            timestamp,
            header=TIMESTAMP_HEADER,
            window_s=self._window_s,
            stale=f"timestamp outside the {self._window_s} s window: sign with the current "
            "time (check the sender's clock)",
        )
        return None if wrong is None else _unauthorized(wrong)

    @staticmethod
    def _parse(body: bytes, converter: JsonlConverter) -> list[ImportedEvent] | Response:
        """Every record validated and converted, or the 422 naming what is wrong."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _invalid(f"the body is not valid JSON ({exc})")
        if not isinstance(data, dict):
            return _invalid('the body must be a JSON object: one record or {"records": [...]}')
        if "records" in data and "kind" not in data:
            items = data["records"]
            if not isinstance(items, list):
                return _invalid("'records' must be an array of records")
            if len(items) > MAX_RECORDS:
                return _invalid(f"{len(items)} records in one request; send at most {MAX_RECORDS}")
        else:
            items = [data]
        # Validate everything before publishing anything: a request is all or nothing.
        records: list[JsonlRecord] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                records.append(RECORD_ADAPTER.validate_python(item))
            except ValidationError as exc:
                errors.append({"record": index, "problem": describe_record_error(exc)})
        if not errors:
            events: list[ImportedEvent] = []
            for index, record in enumerate(records):
                try:
                    events.append(converter.convert(record))
                except ValidationError as exc:
                    errors.append({"record": index, "problem": describe_record_error(exc)})
            if not errors:
                return events
        first = errors[0]
        return _invalid(
            f"record {first['record']}: {first['problem']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            errors=errors[:_MAX_LISTED_ERRORS],
        )

    async def _publish(self, key: str, events: list[ImportedEvent]) -> Response:
        if not events:
            return JSONResponse({"accepted": 0}, status_code=202)
        try:
            first_time = await self._guard.first_seen(key)
        except Exception:
            logger.exception("webhook replay guard unavailable")
            return _unavailable()
        if not first_time:
            return JSONResponse({"status": "duplicate"}, status_code=200)
        try:
            await self._sink.send(events)
        except Exception:
            logger.exception("webhook events not published", extra={"events": len(events)})
            try:
                # Not published, so not seen: the sender's retry must go through.
                await self._guard.forget(key)
            except Exception:
                logger.exception("webhook delivery key not released", extra={"key": key})
            return _unavailable()
        return JSONResponse({"accepted": len(events)}, status_code=202)


def _unavailable() -> JSONResponse:
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "the events could not be stored; nothing was recorded, retry the same request later",
        headers={"Retry-After": "5"},
    )


def build_webhook_router(
    settings: Settings, sink: EventSink, guard: ReplayGuard
) -> APIRouter | None:
    """The router of ``POST /webhooks/{community_id}``, or None when no community has a secret.

    Args:
        settings: The ingestor settings (``webhook_secrets``, body and time limits).
        sink: Where accepted events are published.
        guard: Remembers deliveries, so each is published once.

    Returns:
        The router to include in the service's app, or None if the webhook is off.

    Raises:
        ValueError: a community in ``webhook_secrets`` has an invalid id or an empty secret.
    """
    if not settings.webhook_secrets:
        return None
    handler = _WebhookHandler(settings, sink, guard)
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/{community_id}",
        status_code=202,
        summary="Receive signed records (generic JSON Lines format)",
        responses={
            200: {"description": "Duplicate delivery, already published."},
            202: {"description": "Records accepted and published."},
            401: {"description": "Unknown community, or bad/stale signature."},
            413: {"description": "Body too large."},
            422: {"description": "Body is not JSON or a record is invalid."},
            503: {"description": "Events could not be published; retry."},
        },
    )
    async def receive_webhook(community_id: str, request: Request) -> Response:
        return await handler.handle(community_id, request)

    return router
