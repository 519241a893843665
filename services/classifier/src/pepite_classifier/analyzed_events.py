"""The ``message.analyzed`` event, built the same way by the stage and the topic placer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pepite_classifier.repository import StoredMessage
from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    MessageAnalyzed,
    deterministic_event_id,
    partition_key,
)
from pepite_kit import EventPublisher


def now_ms() -> datetime:
    """Now, to the millisecond: MongoDB keeps milliseconds, and a time read back must
    compare equal to the one written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def analyzed_event(
    message: StoredMessage,
    analysis: Analysis,
    *,
    digest: str,
    topic_id: str | None,
    analyzed_at: datetime,
    placed: bool = False,
) -> MessageAnalyzed:
    """The event for one stored analysis.

    Its id depends on the message, the text analyzed and whether the analysis is the
    one given once the message was placed in a topic, so replays publish the same ids
    and consumers can drop duplicates, while the placed analysis supersedes the first.
    """
    parts = ["message.analyzed", message.id, digest, *(["placed"] if placed else [])]
    return MessageAnalyzed(
        event_id=deterministic_event_id(*parts),
        community_id=message.community_id,
        payload=AnalyzedMessage(
            message_id=message.id,
            platform=message.platform,
            community_id=message.community_id,
            channel=message.channel,
            thread=message.thread,
            reply_to_id=message.reply_to_id,
            author=message.author,
            created_at=message.created_at,
            analysis=analysis,
            topic_id=topic_id,
            analyzed_at=analyzed_at,
        ),
    )


async def publish_analyzed(
    publisher: EventPublisher, topic: str, events: Iterable[MessageAnalyzed]
) -> None:
    """Queue the events, keyed like the messages they are about, and wait for the acks."""
    for event in events:
        payload = event.payload
        await publisher.publish(
            topic, event, key=partition_key(payload.community_id, payload.channel.id)
        )
    await publisher.flush()
