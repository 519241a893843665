"""What the classifier does with events, as pure functions (no I/O here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pepite_contracts import (
    ChannelRef,
    Event,
    Member,
    MemberJoined,
    MemberLeft,
    MessageIngested,
    NormalizedMessage,
)


def message_version(message: NormalizedMessage) -> datetime:
    """The instant this copy of a message was true: an edit is newer than its original."""
    return message.edited_at or message.created_at


def message_document(message: NormalizedMessage) -> dict[str, Any]:
    """The stored form of a message; ``_id`` is its stable id."""
    document = message.model_dump(mode="python", exclude={"id"})
    document["_id"] = message.id
    document["version_at"] = message_version(message)
    return document


@dataclass
class MemberSighting:
    """What one batch tells about one member."""

    member: Member
    platform: str
    community_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None

    def see(self, at: datetime) -> None:
        self.first_seen_at = min(self.first_seen_at, at)
        self.last_seen_at = max(self.last_seen_at, at)


@dataclass
class ChannelSighting:
    """What one batch tells about one channel."""

    channel: ChannelRef
    platform: str
    community_id: str
    first_message_at: datetime
    last_message_at: datetime


@dataclass
class BatchWrites:
    """Everything one batch of events asks to store, deduplicated."""

    messages: dict[str, NormalizedMessage] = field(default_factory=dict)
    members: dict[str, MemberSighting] = field(default_factory=dict)
    channels: dict[tuple[str, str], ChannelSighting] = field(default_factory=dict)


def plan_writes(events: Sequence[Event]) -> BatchWrites:
    """Fold a batch of events into the writes it needs.

    A message seen twice in one batch (a replay, or an edit after its original) is
    written once, in its newest version.
    """
    writes = BatchWrites()
    for event in events:
        if isinstance(event, MessageIngested):
            _fold_message(writes, event.payload)
        elif isinstance(event, MemberJoined | MemberLeft):
            change = event.payload
            sighting = _sighting(
                writes, change.member, change.platform, change.community_id, change.at
            )
            if isinstance(event, MemberJoined):
                sighting.joined_at = min(filter(None, (sighting.joined_at, change.at)))
            else:
                sighting.left_at = max(filter(None, (sighting.left_at, change.at)))
    return writes


def _fold_message(writes: BatchWrites, message: NormalizedMessage) -> None:
    current = writes.messages.get(message.id)
    if current is None or message_version(message) >= message_version(current):
        writes.messages[message.id] = message
    _sighting(writes, message.author, message.platform, message.community_id, message.created_at)
    key = (message.community_id, message.channel.id)
    channel = writes.channels.get(key)
    if channel is None:
        channel = writes.channels[key] = ChannelSighting(
            channel=message.channel,
            platform=message.platform,
            community_id=message.community_id,
            first_message_at=message.created_at,
            last_message_at=message.created_at,
        )
    channel.first_message_at = min(channel.first_message_at, message.created_at)
    channel.last_message_at = max(channel.last_message_at, message.created_at)


def _sighting(
    writes: BatchWrites, member: Member, platform: str, community_id: str, at: datetime
) -> MemberSighting:
    sighting = writes.members.get(member.id)
    if sighting is None:
        sighting = writes.members[member.id] = MemberSighting(
            member=member,
            platform=platform,
            community_id=community_id,
            first_seen_at=at,
            last_seen_at=at,
        )
    else:
        sighting.see(at)
    return sighting
