"""Keeping topics current: rerun clustering where enough new insights wait for a topic."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from pepite_classifier.topics.naming import TopicNamer
from pepite_classifier.topics.recluster import TopicClusterer
from pepite_classifier.topics.repository import ReclusterBusyError, TopicRepository, TopicRun
from pepite_classifier.topics.settings import TopicSettings
from pepite_kit import Database

logger = logging.getLogger(__name__)


def needs_recluster(
    run: TopicRun, pending: int, clustered: int, now: datetime, settings: TopicSettings
) -> bool:
    """Whether a community's topics should be rebuilt now.

    Args:
        run: The community's last clustering run.
        pending: Insight messages without a topic (none was close enough).
        clustered: Insight messages with one (including "other").
        now: The current time.
        settings: Thresholds.
    """
    if run.finished_at is None:
        return pending >= settings.topic_first_run_messages
    waited = (now - run.finished_at).total_seconds()
    threshold = max(
        settings.topic_recluster_min_pending,
        settings.topic_recluster_pending_share * clustered,
    )
    return pending >= threshold and waited >= settings.topic_recluster_min_interval_s


async def recluster_due(
    db: Database, settings: TopicSettings, *, namer: TopicNamer | None = None
) -> list[str]:
    """Recluster, one after the other, every community that needs it.

    Returns:
        The communities reclustered.
    """
    repository = TopicRepository(db)
    clusterer = TopicClusterer(db, settings, namer=namer)
    done: list[str] = []
    for community_id in await repository.communities():
        pending, clustered = await repository.count_embeddings(community_id)
        run = await repository.run(community_id)
        if not needs_recluster(run, pending, clustered, datetime.now(UTC), settings):
            continue
        try:
            await clusterer.recluster(community_id)
        except ReclusterBusyError:
            # `pepite topics rebuild` is on it.
            continue
        done.append(community_id)
    return done


async def recluster_when_needed(
    db: Database, settings: TopicSettings, *, namer: TopicNamer | None = None
) -> None:
    """Background job: look for communities to recluster, forever.

    Meant for the service's background jobs; it returns only when cancelled. A failed
    round is logged and retried at the next check, so one bad community never stops
    the service.
    """
    while True:
        try:
            await recluster_due(db, settings, namer=namer)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("topic reclustering failed; retrying at the next check")
        await asyncio.sleep(settings.topic_recluster_check_interval_s)
