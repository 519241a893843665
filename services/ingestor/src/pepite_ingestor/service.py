"""Where each event goes: its topic and partition key."""

from __future__ import annotations

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
