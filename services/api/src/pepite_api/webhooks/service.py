"""Webhook rules without I/O: ids, the retry schedule, what an attempt's outcome means."""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args

from pepite_api.settings import Settings
from pepite_contracts import AlertNotice, AlertRaised, Notification, NotificationType

WEBHOOK_ID_PREFIX = "wh_"
DELIVERY_ID_PREFIX = "dlv_"
WEBHOOK_ID_PATTERN = r"^wh_[0-9a-f]{16}$"
DELIVERY_ID_PATTERN = r"^dlv_[0-9a-f]{32}$"

#: The alert kind of a test notification (``POST .../ping``): delivered to the one
#: subscription named in its ``alert_id``, whatever event types it asked for.
TEST_ALERT_KIND = "webhook_test"
_TEST_ALERT_PREFIX = "webhook-test:"

#: Event classes webhooks deliver; any other event on the topic is skipped.
NOTIFICATION_CLASSES: tuple[type[Notification], ...] = get_args(Notification)

#: Attempts kept in a delivery's log; older ones are dropped (a delivery retried for
#: days has a few dozen, a much redelivered one could grow without bound).
MAX_LOGGED_ATTEMPTS = 100
_MAX_ERROR_CHARS = 500


def new_webhook_id() -> str:
    return WEBHOOK_ID_PREFIX + secrets.token_hex(8)


def delivery_id(event_id: str, webhook_id: str) -> str:
    """The id of an event's delivery to a subscription: the same on every replay."""
    digest = hashlib.sha256(f"{event_id}\x1f{webhook_id}".encode()).hexdigest()
    return DELIVERY_ID_PREFIX + digest[:32]


def short_error(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base``, doubling, capped at ``cap``, minus a little jitter.

    Retries stop ``window`` after the first attempt: no attempt is scheduled past it.
    """

    base_s: float
    cap_s: float
    jitter: float
    window: timedelta
    disable_after_failures: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_s=settings.webhook_retry_base_seconds,
            cap_s=settings.webhook_retry_max_seconds,
            jitter=settings.webhook_retry_jitter,
            window=timedelta(hours=settings.webhook_retry_hours),
            disable_after_failures=settings.webhook_disable_after_failures,
        )

    def delay_s(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1 waits ``base``)."""
        # The exponent is bounded: 2**62 seconds is past any cap, and floats overflow later.
        nominal = min(math.ldexp(self.base_s, min(max(failures - 1, 0), 62)), self.cap_s)
        # Jitter only shortens the wait, so the cap stays a true maximum.
        return nominal * (1.0 - self.jitter * rand())

    def next_attempt_at(
        self, now: datetime, failures: int, retry_until: datetime
    ) -> datetime | None:
        """When to try again after a failed attempt, or None to give up."""
        when = now + timedelta(seconds=self.delay_s(failures))
        return when if when <= retry_until else None


@dataclass(frozen=True)
class AttemptResult:
    """What one POST came to."""

    status_code: int | None
    error: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None


def judge_response(status_code: int) -> str | None:
    """Why a receiver's answer is a failure, or None for a 2xx."""
    if 200 <= status_code < 300:
        return None
    if 300 <= status_code < 400:
        # Following would let a public URL bounce the worker to a private address.
        return f"HTTP {status_code}: redirects are not followed"
    return f"HTTP {status_code}"


def ping_event(community_id: str, webhook_id: str) -> AlertRaised:
    """A test notification for one subscription (``POST .../ping``)."""
    return AlertRaised(
        community_id=community_id,
        payload=AlertNotice(
            alert_id=f"{_TEST_ALERT_PREFIX}{webhook_id}:{uuid.uuid4().hex[:12]}",
            kind=TEST_ALERT_KIND,
            severity="info",
            title="Test notification",
            detail="Sent from the API to check that this webhook receives and verifies deliveries.",
        ),
    )


def ping_target(event: Notification) -> str | None:
    """The subscription a test notification is for, or None for a real notification."""
    if not isinstance(event, AlertRaised) or event.payload.kind != TEST_ALERT_KIND:
        return None
    rest = event.payload.alert_id.removeprefix(_TEST_ALERT_PREFIX)
    webhook_id, _, _ = rest.partition(":")
    return webhook_id or None


def event_type_label(event_type: str) -> str:
    """A metrics label: one of the notification types, never free text."""
    return event_type if event_type in NotificationType._value2member_map_ else "other"
