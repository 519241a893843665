"""Pépite's contracts: the typed events and topic names services exchange. No I/O here."""

from pepite_contracts.events import (
    EVENT_ADAPTER,
    Event,
    EventEnvelope,
    MemberJoined,
    MemberLeft,
    MessageIngested,
    decode_event,
    deterministic_event_id,
    encode_event,
)
from pepite_contracts.ids import (
    COMMUNITY_ID_PATTERN,
    CommunityId,
    stable_id,
    validate_community_id,
)
from pepite_contracts.messages import (
    Attachment,
    ChannelRef,
    Member,
    MembershipChange,
    Mention,
    MessageType,
    NormalizedMessage,
    Platform,
    Reaction,
    ThreadRef,
    UtcDatetime,
)
from pepite_contracts.topics import Topic, all_topics, dead_letter_topic, partition_key

__all__ = [
    "COMMUNITY_ID_PATTERN",
    "EVENT_ADAPTER",
    "Attachment",
    "ChannelRef",
    "CommunityId",
    "Event",
    "EventEnvelope",
    "Member",
    "MemberJoined",
    "MemberLeft",
    "MembershipChange",
    "Mention",
    "MessageIngested",
    "MessageType",
    "NormalizedMessage",
    "Platform",
    "Reaction",
    "ThreadRef",
    "Topic",
    "UtcDatetime",
    "all_topics",
    "dead_letter_topic",
    "decode_event",
    "deterministic_event_id",
    "encode_event",
    "partition_key",
    "stable_id",
    "validate_community_id",
]
