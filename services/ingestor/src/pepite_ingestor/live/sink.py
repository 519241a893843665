"""Where live adapters send events, and how they recognise a delivery seen before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.service import Publisher, route


class EventSink(Protocol):
    """Publishes events and returns once the broker has acknowledged them."""

    async def send(self, events: Sequence[ImportedEvent]) -> None:
        """Publish ``events``; raise if the broker did not take them."""


class ReplayGuard(Protocol):
    """Remembers delivery keys for a while, so each delivery is acted on once."""

    async def first_seen(self, key: str) -> bool:
        """Record ``key``; True the first time it is seen within the retention window."""

    async def forget(self, key: str) -> None:
        """Drop ``key`` again, so a delivery that could not be published can be retried."""


class KafkaEventSink:
    """The sink of the running service: the shared publisher, routed like imports."""

    def __init__(self, publisher: Publisher, topic_name: Callable[[str], str] = str) -> None:
        self._publisher = publisher
        self._topic_name = topic_name
        # Requests arrive concurrently; the publisher's open batches are not theirs to share.
        self._lock = asyncio.Lock()

    async def send(self, events: Sequence[ImportedEvent]) -> None:
        async with self._lock:
            for event in events:
                topic, key = route(event)
                await self._publisher.publish(self._topic_name(topic), event, key=key)
            # A webhook is answered 2xx only once its events are safely on the broker.
            await self._publisher.flush()
