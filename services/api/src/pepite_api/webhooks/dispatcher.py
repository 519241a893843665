"""Attempting deliveries: claim what is due, POST it, record the outcome, schedule retries.

Deliveries live in MongoDB, not in memory: what is due is found by polling the
``(status, next_attempt_at)`` index, so retries survive a restart and any number of
workers can share the work. A worker claims a delivery with one atomic update that
also pushes ``next_attempt_at`` to the end of a lease; a worker that dies mid-attempt
leaves it due again when the lease ends (a receiver may then see it twice, which the
``Pepite-Delivery`` header lets it detect), and two workers never attempt it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

from pymongo.errors import PyMongoError

from pepite_api.settings import Settings
from pepite_api.webhooks.crypto import SecretBox, SecretUnreadableError
from pepite_api.webhooks.models import DeliveryAttempt, DeliveryStatus
from pepite_api.webhooks.repository import (
    ClaimedDelivery,
    DeliveryRepository,
    SubscriptionRepository,
    Target,
)
from pepite_api.webhooks.sender import WebhookSender
from pepite_api.webhooks.service import AttemptResult, RetryPolicy, event_type_label
from pepite_kit import Database
from pepite_kit.metrics import (
    WEBHOOK_ATTEMPT_SECONDS,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DELIVERIES_FAILED,
    WEBHOOK_DELIVERIES_SUCCEEDED,
    WEBHOOK_RETRIES,
    WEBHOOK_SUBSCRIPTIONS_DISABLED,
)

logger = logging.getLogger(__name__)

#: The shortest sleep between two polls, so a busy database is not polled in a loop.
_MIN_SLEEP_S = 0.01


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryDispatcher:
    """Runs deliveries due, at most ``webhook_concurrency`` at once, until cancelled.

    Args:
        db: The database holding subscriptions and deliveries.
        settings: Retry, timeout, concurrency and allowlist settings.
        box: Opens the subscriptions' secrets.
    """

    def __init__(self, db: Database, settings: Settings, box: SecretBox) -> None:
        self._subscriptions = SubscriptionRepository(db)
        self._deliveries = DeliveryRepository(db)
        self._settings = settings
        self._box = box
        self._policy = RetryPolicy.from_settings(settings)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # Long enough for the address check and the POST, each bounded by the timeout.
        self._lease_s = 2 * settings.webhook_timeout_seconds + 30.0
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look for deliveries due now instead of at the next poll (new ones were stored)."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Claim and attempt deliveries due, then sleep until the next is due or a wake."""
        slots = asyncio.Semaphore(self._settings.webhook_concurrency)
        async with WebhookSender(self._settings) as sender:
            try:
                while True:
                    self._wake.clear()
                    try:
                        await self._start_due(sender, slots)
                        pause = await self._pause_s()
                    except PyMongoError as exc:
                        # MongoDB away for a moment must not stop deliveries for good.
                        logger.warning("webhook poll failed, retrying", extra={"error": repr(exc)})
                        pause = self._settings.webhook_poll_seconds
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=pause)
            finally:
                await self._drain()

    async def _drain(self) -> None:
        """On stop, let attempts under way finish (each is bounded by the timeout).

        One cut short would leave its delivery leased, and attempted again only when
        the lease ends, possibly after the receiver got it.
        """
        in_flight = set(self._in_flight)
        if not in_flight:
            return
        _, unfinished = await asyncio.wait(
            in_flight, timeout=self._settings.webhook_timeout_seconds
        )
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)

    async def _start_due(self, sender: WebhookSender, slots: asyncio.Semaphore) -> None:
        while True:
            await slots.acquire()
            try:
                claim = await self._deliveries.claim(
                    _now(), lease_s=self._lease_s, owner=self._owner
                )
            except BaseException:
                slots.release()
                raise
            if claim is None:
                slots.release()
                return
            task = asyncio.create_task(self._attempt(sender, claim), name=claim.delivery_id)
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _pause_s(self) -> float:
        due = await self._deliveries.next_due()
        poll = self._settings.webhook_poll_seconds
        if due is None:
            return poll
        return min(max((due - _now()).total_seconds(), _MIN_SLEEP_S), poll)

    async def _attempt(self, sender: WebhookSender, claim: ClaimedDelivery) -> None:
        try:
            await self._attempt_claimed(sender, claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the delivery is attempted again: nothing is lost.
            logger.exception("webhook attempt failed", extra={"delivery": claim.delivery_id})

    async def _attempt_claimed(self, sender: WebhookSender, claim: ClaimedDelivery) -> None:
        target = await self._subscriptions.target(claim.webhook_id)
        if target is None:
            await self._deliveries.drop(claim)
            return
        if not target.active:
            await self._deliveries.give_up(claim, "the subscription is disabled", _now())
            WEBHOOK_DELIVERIES_FAILED.labels(event_type_label(claim.event_type)).inc()
            return
        started_at = _now()
        try:
            secrets_in_use = self._secrets(target, started_at)
        except SecretUnreadableError as exc:
            result = AttemptResult(status_code=None, error=str(exc), duration_s=0.0)
        else:
            result = await sender.send(
                target.url,
                claim.body.encode(),
                event_type=claim.event_type,
                delivery_id=claim.delivery_id,
                secrets_in_use=secrets_in_use,
            )
        await self._record(claim, result, started_at)

    def _secrets(self, target: Target, now: datetime) -> list[str]:
        secrets_in_use = [self._box.open(target.secret_sealed)]
        if (
            target.previous_secret_sealed is not None
            and target.previous_secret_until is not None
            and target.previous_secret_until > now
        ):
            secrets_in_use.append(self._box.open(target.previous_secret_sealed))
        return secrets_in_use

    async def _record(
        self, claim: ClaimedDelivery, result: AttemptResult, started_at: datetime
    ) -> None:
        label = event_type_label(claim.event_type)
        WEBHOOK_ATTEMPTS.labels(label, "success" if result.ok else "failure").inc()
        WEBHOOK_ATTEMPT_SECONDS.labels(label).observe(result.duration_s)
        if claim.attempt_count > 0:
            WEBHOOK_RETRIES.labels(label).inc()
        now = _now()
        retry_until = claim.retry_until or started_at + self._policy.window
        next_attempt_at: datetime | None = None
        if result.ok:
            status = DeliveryStatus.DELIVERED
        else:
            next_attempt_at = self._policy.next_attempt_at(
                now, claim.attempt_count + 1, retry_until
            )
            status = DeliveryStatus.FAILED if next_attempt_at is None else DeliveryStatus.PENDING
        attempt = DeliveryAttempt(
            number=claim.attempt_count + 1,
            started_at=started_at,
            duration_ms=round(result.duration_s * 1000, 1),
            status_code=result.status_code,
            error=result.error,
            manual=claim.manual,
        )
        recorded = await self._deliveries.record_attempt(
            claim,
            attempt,
            status=status,
            next_attempt_at=next_attempt_at,
            retry_until=retry_until,
            now=now,
        )
        if not recorded:
            logger.warning(
                "webhook lease lost before recording", extra={"delivery": claim.delivery_id}
            )
            return
        if status is DeliveryStatus.DELIVERED:
            WEBHOOK_DELIVERIES_SUCCEEDED.labels(label).inc()
            await self._subscriptions.record_success(claim.webhook_id, now)
            return
        if status is DeliveryStatus.FAILED:
            WEBHOOK_DELIVERIES_FAILED.labels(label).inc()
        disabled = await self._subscriptions.record_failure(
            claim.webhook_id,
            now,
            error=result.error or "failed",
            disable_after=self._policy.disable_after_failures,
        )
        if disabled:
            WEBHOOK_SUBSCRIPTIONS_DISABLED.inc()
            logger.warning(
                "webhook subscription disabled after failures in a row",
                extra={"webhook": claim.webhook_id, "error": result.error},
            )
