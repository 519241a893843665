"""Kafka topic names and the partitioning rule every producer follows."""

from __future__ import annotations

from enum import StrEnum

DLQ_SUFFIX = ".dlq"


class Topic(StrEnum):
    """Every topic Pépite services produce to or consume from."""

    MESSAGES_RAW = "messages.raw"
    MESSAGES_ANALYZED = "messages.analyzed"
    MEMBERS_EVENTS = "members.events"
    #: Events for the outside world (digests, alerts, moderation flags...): webhooks.
    NOTIFICATIONS = "notifications"
    #: Digests of a period asked for through the API, built by the digest service.
    DIGEST_REQUESTS = "digests.requests"

    @property
    def dlq(self) -> str:
        """The dead-letter twin that receives this topic's poison records."""
        return dead_letter_topic(self.value)


def dead_letter_topic(topic: str) -> str:
    """Return the dead-letter topic for ``topic`` (``messages.raw`` -> ``messages.raw.dlq``)."""
    return topic + DLQ_SUFFIX


def all_topics() -> list[str]:
    """Every topic with its dead-letter twin, in a stable order (for topic creation)."""
    names: list[str] = []
    for topic in Topic:
        names.extend((topic.value, topic.dlq))
    return names


def partition_key(community_id: str, channel_id: str) -> bytes:
    """Key records by channel so that a channel's messages keep their order."""
    return f"{community_id}:{channel_id}".encode()


def community_key(community_id: str) -> bytes:
    """Key records by community when their order only matters within a community."""
    return community_id.encode()
