"""What the scores do with each consumed topic: score analyses, forget erased members."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from pepite_contracts import Event, MemberErased, MessageAnalyzed
from pepite_leaderboard.scores_service import DEFAULT_DAILY_CAPS, ScoreUpdater, ScoringPolicy
from pepite_leaderboard.settings import Settings
from pepite_reports.leaderboards import Theme

logger = logging.getLogger(__name__)


def scoring_policy(settings: Settings) -> ScoringPolicy:
    """The scoring knobs the settings give.

    Raises:
        ValueError: a daily cap names no theme, or is negative.
    """
    themes = {t.value for t in Theme}
    for theme, cap in settings.leaderboard_daily_caps.items():
        if theme not in themes:
            raise ValueError(
                f"leaderboard_daily_caps: {theme!r} is not a theme ({', '.join(sorted(themes))})"
            )
        if cap < 0:
            raise ValueError(f"leaderboard_daily_caps: the cap of {theme!r} is negative")
    return ScoringPolicy(
        daily_caps={**DEFAULT_DAILY_CAPS, **settings.leaderboard_daily_caps},
        moderation_threshold=settings.leaderboard_moderation_threshold,
        address_window=timedelta(minutes=settings.leaderboard_address_window_minutes),
    )


class ScoresHandler:
    """Scores each batch of ``message.analyzed`` and carries out ``member.erased``.

    Events of a batch are taken in order: analyses up to an erasure are scored before
    it, so an erasure always has the last word on what it removes.
    """

    def __init__(self, updater: ScoreUpdater) -> None:
        self._updater = updater

    async def __call__(self, events: Sequence[Event]) -> None:
        pending: list[MessageAnalyzed] = []
        for event in events:
            if isinstance(event, MessageAnalyzed):
                pending.append(event)
            elif isinstance(event, MemberErased):
                await self._flush(pending)
                pending = []
                await self._updater.erase(event.payload)
                logger.info(
                    "member erased from leaderboards", extra={"member_id": event.payload.member_id}
                )
        await self._flush(pending)

    async def _flush(self, pending: list[MessageAnalyzed]) -> None:
        if pending:
            await self._updater.apply_analyzed([e.payload for e in pending])
