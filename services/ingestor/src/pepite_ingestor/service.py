"""Publishing imported events: routing to topics and keys, batching acknowledgements."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pepite_contracts import (
    Event,
    EventEnvelope,
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    Topic,
    partition_key,
)

#: Key for membership changes that happened in no particular channel.
COMMUNITY_WIDE_CHANNEL = "_community"


class Publisher(Protocol):
    """The part of the Kafka publisher an import needs."""

    async def publish(self, topic: str, event: EventEnvelope, *, key: bytes | None = None) -> None:
        """Queue one event."""

    async def flush(self) -> None:
        """Wait until every queued event is acknowledged."""


@dataclass
class ImportCounts:
    """What an import published, by event type."""

    by_type: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    @property
    def messages(self) -> int:
        return self.by_type.get("message.ingested", 0)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def route(event: Event) -> tuple[str, bytes]:
    """The topic and partition key of an event: one channel's events stay in order."""
    if isinstance(event, MessageIngested | MessageEdited | MessageDeleted):
        # A message and its later edits and deletion share a key, so they arrive in order.
        message = event.payload
        return Topic.MESSAGES_RAW, partition_key(message.community_id, message.channel.id)
    if isinstance(event, MemberJoined | MemberLeft):
        change = event.payload
        channel_id = change.channel.id if change.channel else COMMUNITY_WIDE_CHANNEL
        return Topic.MEMBERS_EVENTS, partition_key(change.community_id, channel_id)
    raise TypeError(f"no topic for event type {event.type!r}")


async def publish_events(
    events: Iterable[Event],
    publisher: Publisher,
    *,
    flush_every: int,
    counts: ImportCounts,
    topic_name: Callable[[str], str] = str,
    on_progress: Callable[[ImportCounts], None] | None = None,
) -> ImportCounts:
    """Publish every event, waiting for acknowledgements every ``flush_every`` records.

    ``counts`` is filled as events are published, so a caller still knows how far an
    import went when the source turns out to be corrupt halfway.
    """
    since_flush = 0
    for event in events:
        topic, key = route(event)
        await publisher.publish(topic_name(topic), event, key=key)
        counts.by_type[event.type] = counts.by_type.get(event.type, 0) + 1
        since_flush += 1
        if since_flush >= flush_every:
            await publisher.flush()
            since_flush = 0
            if on_progress is not None:
                on_progress(counts)
    await publisher.flush()
    if on_progress is not None:
        on_progress(counts)
    return counts
