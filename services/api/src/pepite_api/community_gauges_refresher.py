"""The worker's periodic refresh of the community and dead-letter gauges.

Prometheus scrapes whatever the gauges hold; this refreshes them every
``community_gauges_seconds`` from MongoDB (through the repository) and from the
broker's offsets (through the kit). A failed refresh is logged and counted and leaves
the previous values, whose age ``pepite_community_gauges_refreshed_timestamp_seconds``
tells; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pepite_api.community_gauges import (
    CommunityActivity,
    CommunityGauges,
    Windows,
    exportable,
    most_active,
)
from pepite_api.community_gauges_repository import CommunityGaugesRepository
from pepite_api.settings import Settings
from pepite_contracts import Topic
from pepite_kit import Database
from pepite_kit.metrics import (
    COMMUNITY_GAUGES_REFRESHED,
    COMMUNITY_INSIGHTS_7D,
    COMMUNITY_LAST_INGESTED,
    COMMUNITY_MESSAGES_24H,
    COMMUNITY_OPEN_ALERTS,
    COMMUNITY_SENTIMENT_7D,
    DEAD_LETTER_RECORDS,
    GAUGES_REFRESH_ERRORS,
    GAUGES_REFRESH_SECONDS,
)
from pepite_kit.offsets import TopicSizes

logger = logging.getLogger(__name__)

A = TypeVar("A")
T = TypeVar("T")

COMMUNITIES_PART = "communities"
DEAD_LETTERS_PART = "dead_letters"

#: Per-community reads in flight at once: enough to hide round trips, few enough not
#: to crowd the database's other clients.
_CONCURRENCY = 8


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did.

    Attributes:
        communities: Communities exported, most active first (``None``: that part failed).
        dead_letters: Records per dead-letter topic, by label (``None``: that part failed).
        communities_s: Seconds the community part took.
        dead_letters_s: Seconds the dead-letter part took.
    """

    communities: list[CommunityGauges] | None
    dead_letters: dict[str, int] | None
    communities_s: float
    dead_letters_s: float


class GaugeRefresher:
    """Refreshes the gauges the API's worker exports.

    Args:
        db: The database to read (read only).
        settings: The API's settings: interval, community cap, topic prefix.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self._repository = CommunityGaugesRepository(db)
        self._settings = settings
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        #: Broker topic name -> label: the deployment's prefix is left out of labels.
        self._dead_letter_topics = {settings.topic_name(t.dlq): t.dlq for t in Topic}

    async def run_forever(self) -> None:
        """Refresh, wait the interval, again, until cancelled."""
        sizes: TopicSizes | None = None
        try:
            while True:
                if sizes is None:
                    sizes = await self._connect()
                await self.refresh_once(sizes)
                await asyncio.sleep(self._settings.community_gauges_seconds)
        finally:
            if sizes is not None:
                await sizes.stop()

    async def _connect(self) -> TopicSizes | None:
        sizes = TopicSizes(self._settings)
        try:
            await sizes.start()
        except Exception:
            GAUGES_REFRESH_ERRORS.labels(DEAD_LETTERS_PART).inc()
            logger.exception("gauges: broker unavailable, dead-letter gauges not refreshed")
            return None
        return sizes

    async def refresh_once(
        self, sizes: TopicSizes | None, *, now: datetime | None = None
    ) -> RefreshReport:
        """Refresh every gauge once; failures are logged and counted, never raised.

        Args:
            sizes: Reads the broker's offsets; ``None`` leaves the dead-letter gauge as is.
            now: The instant the windows end at (the clock by default).
        """
        started = time.perf_counter()
        communities: list[CommunityGauges] | None = None
        try:
            communities = await self.refresh_communities(now or datetime.now(UTC))
        except Exception:
            GAUGES_REFRESH_ERRORS.labels(COMMUNITIES_PART).inc()
            logger.exception("gauges: community refresh failed, previous values kept")
        communities_s = time.perf_counter() - started
        GAUGES_REFRESH_SECONDS.labels(COMMUNITIES_PART).observe(communities_s)

        started = time.perf_counter()
        dead_letters: dict[str, int] | None = None
        if sizes is not None:
            try:
                dead_letters = await self.refresh_dead_letters(sizes)
            except Exception:
                GAUGES_REFRESH_ERRORS.labels(DEAD_LETTERS_PART).inc()
                logger.exception("gauges: dead-letter refresh failed, previous values kept")
        dead_letters_s = time.perf_counter() - started
        if sizes is not None:
            GAUGES_REFRESH_SECONDS.labels(DEAD_LETTERS_PART).observe(dead_letters_s)
        return RefreshReport(communities, dead_letters, communities_s, dead_letters_s)

    async def refresh_communities(self, now: datetime) -> list[CommunityGauges]:
        """Read every exported community's figures, then replace the community gauges."""
        windows = Windows.at(now)
        ids = [c for c in await self._repository.community_ids() if exportable(c)]
        activities = await self._each(ids, lambda c: self._activity(c, windows))
        chosen = most_active(activities, self._settings.community_gauges_max_communities)
        gauges = await self._each(chosen, lambda a: self._figures(a, windows))
        _export_communities(gauges)
        COMMUNITY_GAUGES_REFRESHED.set(time.time())
        return gauges

    async def refresh_dead_letters(self, sizes: TopicSizes) -> dict[str, int]:
        """Read the dead-letter topics' sizes, then set their gauge."""
        records = await sizes.records(list(self._dead_letter_topics))
        by_label = {self._dead_letter_topics[name]: count for name, count in records.items()}
        for label, count in by_label.items():
            DEAD_LETTER_RECORDS.labels(label).set(count)
        return by_label

    async def _activity(self, community_id: str, windows: Windows) -> CommunityActivity:
        return CommunityActivity(
            community_id=community_id,
            messages_24h=await self._repository.messages_since(
                community_id, windows.messages_since
            ),
            last_ingested_at=await self._repository.last_ingested_at(community_id),
        )

    async def _figures(self, activity: CommunityActivity, windows: Windows) -> CommunityGauges:
        community_id = activity.community_id
        return CommunityGauges(
            activity=activity,
            insights=await self._repository.insight_counts(community_id, windows.first_day),
            sentiments=await self._repository.sentiment_counts(community_id, windows.first_day),
            open_alerts=await self._repository.open_alerts(community_id),
        )

    async def _each(self, items: Sequence[A], read: Callable[[A], Awaitable[T]]) -> list[T]:
        """``read`` of every item, in order, a few at a time."""

        async def limited(item: A) -> T:
            async with self._slots:
                return await read(item)

        return list(await asyncio.gather(*(limited(item) for item in items)))


def _export_communities(gauges: Sequence[CommunityGauges]) -> None:
    """Replace every community series by those of ``gauges``.

    No await between clearing and setting: /metrics is served on the same event loop,
    so a scrape sees the old set or the new one, never a half. Clearing is what drops
    the series of a community no longer exported.
    """
    for metric in (
        COMMUNITY_MESSAGES_24H,
        COMMUNITY_LAST_INGESTED,
        COMMUNITY_INSIGHTS_7D,
        COMMUNITY_SENTIMENT_7D,
        COMMUNITY_OPEN_ALERTS,
    ):
        metric.clear()
    for item in gauges:
        community = item.activity.community_id
        COMMUNITY_MESSAGES_24H.labels(community).set(item.activity.messages_24h)
        if item.activity.last_ingested_at is not None:
            COMMUNITY_LAST_INGESTED.labels(community).set(
                item.activity.last_ingested_at.timestamp()
            )
        for kind, count in item.insight_series():
            COMMUNITY_INSIGHTS_7D.labels(community, kind).set(count)
        for sentiment, count in item.sentiment_series():
            COMMUNITY_SENTIMENT_7D.labels(community, sentiment).set(count)
        for kind, count in item.alert_series():
            COMMUNITY_OPEN_ALERTS.labels(community, kind).set(count)
