"""``leaderboard.updated``: the top of a ranking changed.

Scoring only marks the (community, month) rankings a batch may have changed. Every
interval the notifier looks at those, computes the top of each theme for the month and
its season, and announces the ones whose top (members, ranks, points) is not what it
last announced, at most once per ranking and interval: a busy channel gives one notice
a minute, not one per message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

from pepite_contracts import (
    LeaderboardNotice,
    LeaderboardUpdated,
    community_key,
    deterministic_event_id,
    encode_event,
)
from pepite_kit import Database, EventPublisher
from pepite_kit.consumer import TRANSIENT_ERRORS
from pepite_kit.metrics import LEADERBOARD_NOTICES
from pepite_leaderboard.scores_repository import ScoresRepository
from pepite_reports.leaderboards import (
    LeaderboardReader,
    Period,
    Theme,
    month_period,
    season_label,
    season_period,
)

logger = logging.getLogger(__name__)


def leaderboard_id(community_id: str, theme: Theme, period: str) -> str:
    return f"{community_id}:{theme.value}:{period}"


class LeaderboardNotifier:
    """Announces rankings whose top changed, debounced per ranking."""

    def __init__(
        self,
        db: Database,
        publisher: EventPublisher,
        *,
        notifications_topic: str,
        interval_s: float,
        top_size: int,
    ) -> None:
        self._repo = ScoresRepository(db)
        self._reader = LeaderboardReader(db)
        self._publisher = publisher
        self._topic = notifications_topic
        self._interval = interval_s
        self._top_size = top_size

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:
                logger.warning("leaderboard notices postponed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)

    async def run_once(self, now: datetime | None = None) -> int:
        """Look at every ranking marked changed; returns how many notices went out."""
        now = now or datetime.now(UTC)
        sent = 0
        for dirty in await self._repo.dirty():
            community_id, month = dirty["community_id"], dirty["month"]
            first = month_period(month)
            periods = [first, season_period(season_label(first.first))]
            postponed = False
            for period in periods:
                for theme in Theme:
                    outcome = await self._announce(community_id, theme, period.label, period, now)
                    sent += outcome == "sent"
                    postponed = postponed or outcome == "postponed"
            if not postponed:
                await self._repo.clear_dirty(dirty["_id"], dirty["touched_at"])
        return sent

    async def _announce(
        self, community_id: str, theme: Theme, label: str, period: Period, now: datetime
    ) -> str:
        board, _ = await self._reader.leaderboard(community_id, theme, period, limit=self._top_size)
        top = [
            {"rank": e.rank, "member_id": e.member_id, "name": e.name, "points": e.points}
            for e in board.entries
        ]
        top_id = leaderboard_id(community_id, theme, label)
        last = await self._repo.last_top(top_id)
        compared = [(t["rank"], t["member_id"], t["points"]) for t in top]
        if last is not None:
            before = [(t["rank"], t["member_id"], t["points"]) for t in last.get("top") or []]
            if before == compared:
                return "unchanged"
            if now - last["published_at"] < timedelta(seconds=self._interval):
                return "postponed"
        elif not top:
            return "unchanged"
        digest = hashlib.sha256(json.dumps(compared).encode()).hexdigest()[:16]
        event = LeaderboardUpdated(
            event_id=deterministic_event_id("leaderboard.updated", top_id, digest),
            community_id=community_id,
            payload=LeaderboardNotice(
                leaderboard_id=top_id, theme=theme.value, period=label, top=top
            ),
        )
        await self._publisher.send(
            self._topic, encode_event(event), key=community_key(community_id)
        )
        # Acknowledged before it is remembered as announced: a crash in between repeats
        # the notice (same event id) rather than losing it.
        await self._publisher.flush()
        await self._repo.save_top(top_id, community_id, top, now)
        LEADERBOARD_NOTICES.labels(theme.value).inc()
        return "sent"
