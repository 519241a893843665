"""What the KPI rollups do with ``message.analyzed`` and ``members.events``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from pepite_contracts import Event, MemberErased, MemberJoined, MessageAnalyzed
from pepite_leaderboard.kpi_repository import KpiRepository, MemberTouch
from pepite_leaderboard.kpi_rollups import DEFAULT_ANSWER_WINDOW, KpiMessage, QuestionTracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch changed: messages counted for the first time, questions written."""

    counted: int
    questions: int


class KpiUpdater:
    """Keeps the KPI rollups of analyzed messages; replaying a message changes nothing.

    Args:
        repository: The rollups' store.
        answer_window: See :mod:`pepite_leaderboard.kpi_rollups` (rule 3).
    """

    def __init__(
        self, repository: KpiRepository, *, answer_window: timedelta = DEFAULT_ANSWER_WINDOW
    ) -> None:
        self._repository = repository
        self._window = answer_window

    async def apply(self, messages: Sequence[KpiMessage]) -> BatchResult:
        """Count a batch of analyzed messages (any order, any communities)."""
        counted = questions = 0
        by_community: dict[str, list[KpiMessage]] = {}
        for message in messages:
            # Bots are no members: their messages count nowhere and never respond.
            if not message.is_bot:
                by_community.setdefault(message.community_id, []).append(message)
        for community_id, batch in by_community.items():
            batch.sort(key=lambda m: m.order)
            touches: dict[str, MemberTouch] = {}
            for message in batch:
                touch = MemberTouch(first_message=message.created_at)
                known = touches.get(message.author_id)
                touches[message.author_id] = touch if known is None else known.merge(touch)
            numbers = await self._repository.member_numbers(community_id, touches)
            counted += await self._repository.count_new(community_id, batch, numbers)
            stored = await self._repository.questions_for(community_id, batch, self._window)
            # A reply to a message already counted that has no question document replies
            # to no question: nothing to keep for it.
            unknown = {m.reply_to_id for m in batch if m.reply_to_id} - {
                q.question_id for q in stored
            }
            tracker = QuestionTracker(
                stored,
                answer_window=self._window,
                not_questions=await self._repository.counted_among(unknown) if unknown else (),
            )
            for message in batch:
                tracker.add(message, numbers[message.author_id])
            await self._repository.save_questions(community_id, tracker.changed, tracker.early)
            questions += len(tracker.changed)
        return BatchResult(counted, questions)


class KpiEventsHandler:
    """Consumes ``messages.analyzed`` and ``members.events`` for the KPI rollups.

    Joins set when members joined (cohorts, new members); an erasure leaves the member's
    counts in place under a number, with its id replaced by the erasure's pseudonym.
    """

    def __init__(self, updater: KpiUpdater, repository: KpiRepository) -> None:
        self._updater = updater
        self._repository = repository

    async def __call__(self, events: Sequence[Event]) -> None:
        analyzed = [
            KpiMessage.from_analyzed(e.payload) for e in events if isinstance(e, MessageAnalyzed)
        ]
        if analyzed:
            await self._updater.apply(analyzed)
        # In order: a join after an erasure must not be undone by it, nor the reverse.
        joins: dict[str, dict[str, MemberTouch]] = {}
        for event in events:
            if isinstance(event, MemberJoined) and not event.payload.member.is_bot:
                change = event.payload
                members = joins.setdefault(change.community_id, {})
                touch = MemberTouch(joined=change.at)
                known = members.get(change.member.id)
                members[change.member.id] = touch if known is None else known.merge(touch)
            elif isinstance(event, MemberErased):
                await self._joined(joins)
                joins = {}
                await self._repository.erase(event.payload)
                logger.info(
                    "member erased from KPI rollups", extra={"member_id": event.payload.member_id}
                )
        await self._joined(joins)

    async def _joined(self, joins: dict[str, dict[str, MemberTouch]]) -> None:
        for community_id, touches in joins.items():
            await self._repository.member_numbers(community_id, touches)
