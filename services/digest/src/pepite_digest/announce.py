"""Telling the outside world a digest is out: ``digest.published`` on the notifications topic."""

from __future__ import annotations

from pepite_contracts import (
    DigestNotice,
    DigestPublished,
    community_key,
    deterministic_event_id,
    encode_event,
)
from pepite_kit import EventPublisher
from pepite_reports.digests.models import Digest


async def announce_digest(
    publisher: EventPublisher, topic: str, digest: Digest, *, cause: str | None = None
) -> None:
    """Publish ``digest.published`` for ``digest`` and wait until the broker has it.

    The event id is fixed by the digest (and by ``cause``, when one digest may be
    announced for several reasons, such as each request for it), so a repeat after a
    crash is recognized downstream.
    """
    id_parts = [digest.digest_id] if cause is None else [digest.digest_id, cause]
    event = DigestPublished(
        event_id=deterministic_event_id("digest.published", *id_parts),
        community_id=digest.community_id,
        payload=DigestNotice(
            digest_id=digest.digest_id,
            title=digest.title,
            period_start=digest.period_start,
            period_end=digest.period_end,
            summary=digest.summary,
            member_id=digest.member_id,
        ),
    )
    await publisher.send(topic, encode_event(event), key=community_key(digest.community_id))
    await publisher.flush()
