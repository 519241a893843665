"""Questions nobody answered: listed once they have waited long enough, alerted once.

Each look, per community, the members' questions to everyone (see
:func:`~pepite_digest.lore.open_question`) asked between the horizon and the delay ago
are checked against what surrounds them, with the digest's own answer detection
(:func:`~pepite_digest.lore.answers`). Those still without an answer make the community's
list in ``unanswered_questions``; one answered since leaves it. Each listed question is
announced once with ``alert.raised`` (kind ``unanswered_question``) on the notifications
topic, its event id fixed by the question so a repeat is recognized downstream too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from pepite_contracts import (
    AlertNotice,
    AlertRaised,
    ChannelRef,
    deterministic_event_id,
    encode_event,
)
from pepite_digest.lore import ANSWER_WINDOW, answers, conversations, open_question
from pepite_digest.repository import PeriodMessage
from pepite_digest.unanswered_repository import UnansweredQuestion, UnansweredRepository
from pepite_kit import Database, EventPublisher

ALERT_KIND = "unanswered_question"

logger = logging.getLogger(__name__)


def unanswered_alert(question: UnansweredQuestion, now: datetime) -> AlertRaised:
    """The alert about a listed question; the same event id however often it is made."""
    waited = now - question.asked_at
    hours = waited.total_seconds() / 3600
    return AlertRaised(
        event_id=deterministic_event_id("alert.raised", ALERT_KIND, question.question_id),
        community_id=question.community_id,
        payload=AlertNotice(
            alert_id=f"{ALERT_KIND}:{question.question_id}",
            kind=ALERT_KIND,
            severity="info",
            title=f"A question in #{question.channel_name} is unanswered after {hours:.0f} h",
            detail=f"{question.author_name}: “{question.excerpt}” ({question.question_id})",
            channel=ChannelRef(id=question.channel_id, name=question.channel_name),
            metrics={"waiting_hours": round(hours, 1)},
        ),
    )


class UnansweredWatcher:
    """Keeps every community's list of unanswered questions and alerts about new ones.

    Args:
        after: How long a question waits before it is listed (a community's
            ``unanswered.after_hours`` overrides it).
        horizon: Questions older than this are no longer watched.
    """

    def __init__(
        self,
        db: Database,
        publisher: EventPublisher,
        *,
        notifications_topic: str,
        after: timedelta,
        horizon: timedelta,
        poll_s: float = 300.0,
    ) -> None:
        if horizon <= after:
            raise ValueError(f"the horizon ({horizon}) must be longer than the delay ({after})")
        self._repository = UnansweredRepository(db)
        self._publisher = publisher
        self._topic = notifications_topic
        self._after = after
        self._horizon = horizon
        self._poll_s = poll_s

    async def run_forever(self) -> None:
        while True:
            try:
                await self.check(datetime.now(UTC))
            except Exception:
                # The next look tries again; one community's failure is logged below.
                logger.exception("could not look for unanswered questions")
            await asyncio.sleep(self._poll_s)

    async def check(self, now: datetime) -> list[str]:
        """Update every community's list as of ``now`` and alert about questions newly
        listed; the ids of the questions alerted."""
        alerted = []
        for community in await self._repository.communities():
            try:
                alerted += await self._check_community(
                    community.community_id, now, community.after or self._after
                )
            except Exception:
                logger.exception(
                    "unanswered questions failed", extra={"community": community.community_id}
                )
        return alerted

    async def waiting(
        self, community_id: str, now: datetime, after: timedelta
    ) -> list[PeriodMessage]:
        """The community's open questions asked between the horizon and ``after`` ago
        that drew no answer, oldest first."""
        asked = await self._repository.questions(community_id, now - self._horizon, now - after)
        questions = [q for q in asked if open_question(q)]
        around = await self._repository.surroundings(community_id, questions, ANSWER_WINDOW)
        watched = {q.message_id for q in questions}
        return [
            item.question
            for item in answers(around, conversations(around))
            if item.question.message_id in watched and item.answer is None
        ]

    async def _check_community(
        self, community_id: str, now: datetime, after: timedelta
    ) -> list[str]:
        waiting = await self.waiting(community_id, now, after)
        await self._repository.keep_listed(community_id, waiting, now)
        alerted = []
        for question in await self._repository.listed(community_id):
            if question.alerted_at is not None:
                continue
            event = unanswered_alert(question, now)
            await self._publisher.send(self._topic, encode_event(event), key=community_id.encode())
            await self._publisher.flush()
            await self._repository.mark_alerted(question.question_id, now)
            alerted.append(question.question_id)
        return alerted
