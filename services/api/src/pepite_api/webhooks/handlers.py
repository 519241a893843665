"""What the webhook worker does with each event of the notifications topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pepite_api.webhooks.repository import DeliveryRepository, NewDelivery, SubscriptionRepository
from pepite_api.webhooks.service import NOTIFICATION_CLASSES, delivery_id, ping_target
from pepite_contracts import Event, Notification, encode_event


class NotificationHandler:
    """Stores one delivery per event and subscription that wants it, then wakes delivery.

    Attempts happen in the dispatcher, not here: a slow receiver must not hold the
    consumer (and every other subscription's events) back. The offsets are committed
    once the deliveries are stored, which is all at-least-once needs.

    Args:
        subscriptions: Finds who wants an event.
        deliveries: Stores the deliveries.
        wake: Called when new deliveries were stored, so they are attempted promptly.
    """

    def __init__(
        self,
        subscriptions: SubscriptionRepository,
        deliveries: DeliveryRepository,
        wake: Callable[[], None],
    ) -> None:
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._wake = wake

    async def __call__(self, events: Sequence[Event]) -> None:
        wanted: dict[tuple[str, str], list[str]] = {}
        new: list[NewDelivery] = []
        for event in events:
            if not isinstance(event, NOTIFICATION_CLASSES):
                continue
            for webhook_id in await self._recipients(event, wanted):
                new.append(
                    NewDelivery(
                        delivery_id=delivery_id(event.event_id, webhook_id),
                        community_id=event.community_id,
                        webhook_id=webhook_id,
                        event_id=event.event_id,
                        event_type=event.type,
                        body=encode_event(event).decode(),
                    )
                )
        if await self._deliveries.insert_new(new, datetime.now(UTC)):
            self._wake()

    async def _recipients(
        self, event: Notification, wanted: dict[tuple[str, str], list[str]]
    ) -> list[str]:
        target = ping_target(event)
        if target is not None:
            active = await self._subscriptions.is_active(event.community_id, target)
            return [target] if active else []
        key = (event.community_id, event.type)
        if key not in wanted:
            # A batch holds many events of few communities: one lookup per pair.
            wanted[key] = await self._subscriptions.wanting(*key)
        return wanted[key]
