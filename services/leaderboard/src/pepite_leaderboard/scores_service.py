"""Keeping the scores current: from analyzed messages to contributions and rollups.

One batch of messages is scored together: the stored messages and the messages they
reply to are read in one request each, contributions and thanks written in one bulk,
then every member day the batch touched (the authors' days, and the days of the
messages thanked) is recomputed under the daily caps, and every member month from its
days. The same path rebuilds a community from its stored messages.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pepite_contracts import AnalyzedMessage, MemberErasure
from pepite_leaderboard.scores_repository import (
    MemberDay,
    ScoresRepository,
    day_items,
    facts_of,
    is_gone,
    risk_of,
    target_of,
)
from pepite_leaderboard.scores_rules import (
    SOURCE_THANKS,
    ChannelDay,
    Facts,
    Scored,
    Target,
    addressee,
    apply_daily_caps,
    bonus_points,
    score,
    wants_target,
)
from pepite_reports.leaderboards import Theme

#: Points per theme a member can earn in one UTC day; the rest of a burst counts nothing.
DEFAULT_DAILY_CAPS: dict[str, float] = {
    Theme.HELPFULNESS.value: 40.0,
    Theme.KINDNESS.value: 10.0,
    Theme.SHARING.value: 15.0,
    Theme.PROGRESS.value: 6.0,
    Theme.ACTIVITY.value: 50.0,
}

#: Stored messages read per step of a rebuild.
REBUILD_PAGE = 2000


@dataclass(frozen=True)
class ScoringPolicy:
    """The knobs of scoring, from the service's settings."""

    daily_caps: Mapping[str, float]
    moderation_threshold: float = 0.8
    #: A thanks or answer naming a member (without replying) is about that member's
    #: latest message in the channel within this long before it.
    address_window: timedelta = timedelta(hours=1)


@dataclass
class BatchOutcome:
    scored: int = 0
    member_days: int = 0


class ScoreUpdater:
    """Scores batches of analyzed messages into contributions and rollups."""

    def __init__(self, repository: ScoresRepository, policy: ScoringPolicy) -> None:
        self._repo = repository
        self._policy = policy

    async def apply_analyzed(self, payloads: Sequence[AnalyzedMessage]) -> BatchOutcome:
        """Score ``message.analyzed`` payloads (the last one of a message wins)."""
        latest = {p.message_id: p for p in payloads}
        stored = await self._repo.messages(latest)
        facts = [self._facts(p, stored.get(p.message_id)) for p in latest.values()]
        return await self.apply(facts)

    @staticmethod
    def _facts(payload: AnalyzedMessage, doc: Mapping[str, Any] | None) -> Facts:
        """The event says what the message is; the stored copy adds its words, mentions
        and reactions, and whether it was deleted or its author erased since."""
        doc = doc or {}
        stored_author = (doc.get("author") or {}).get("id")
        return Facts(
            message_id=payload.message_id,
            community_id=payload.community_id,
            channel_id=payload.channel.id,
            author_id=payload.author.id,
            is_bot=payload.author.is_bot,
            created_at=payload.created_at,
            kind=payload.analysis.kind,
            risk=risk_of(payload.analysis.moderation.model_dump()),
            text=doc.get("text") or "",
            reply_to_id=payload.reply_to_id,
            mentioned=tuple(
                m["member_id"] for m in doc.get("mentions") or [] if m.get("member_id")
            ),
            reactions=sum(int(r.get("count") or 0) for r in doc.get("reactions") or []),
            # An erased author's messages are signed with a pseudonym once stored.
            gone=is_gone(doc) or (stored_author is not None and stored_author != payload.author.id),
        )

    async def apply(self, facts: Sequence[Facts]) -> BatchOutcome:
        """Score messages and bring every rollup they touch up to date."""
        if not facts:
            return BatchOutcome()
        targets, previous = await asyncio.gather(
            self._targets(facts), self._repo.previous(f.message_id for f in facts)
        )
        scored: list[tuple[Facts, Scored]] = [
            (
                f,
                score(
                    f,
                    targets.get(f.message_id),
                    moderation_threshold=self._policy.moderation_threshold,
                ),
            )
            for f in facts
        ]
        touched: set[MemberDay] = {
            (doc["community_id"], doc["member_id"], doc["day"]) for doc in previous.values()
        }
        contributions = [s.contribution for _, s in scored if s.contribution is not None]
        removed = [
            f.message_id for f, s in scored if s.contribution is None and f.message_id in previous
        ]
        thanks = [s.thanks for _, s in scored if s.thanks is not None]
        withdrawn: list[tuple[str, str]] = []
        for f, s in scored:
            old_credit = (previous.get(f.message_id) or {}).get("credit")
            new_credit = s.contribution.credit if s.contribution else None
            if old_credit and old_credit != new_credit:
                withdrawn.append((old_credit, f.message_id))
        touched.update((c.community_id, c.member_id, c.day) for c in contributions)
        touched.update(await self._repo.write(contributions, removed, thanks, withdrawn))
        await self.recompute(sorted(touched))
        return BatchOutcome(scored=len(contributions), member_days=len(touched))

    async def recompute(self, keys: Sequence[MemberDay]) -> None:
        """Recount member days under the caps, then their months."""
        if not keys:
            return
        # Both reads are about the same member days and neither needs the other.
        found, stored = await asyncio.gather(self._repo.days(keys), self._repo.daily_ids(keys))
        recounted: dict[str, dict[str, float]] = {}
        bonuses: dict[str, tuple[dict[str, float], dict[str, int], str]] = {}
        days: dict[MemberDay, Sequence[ChannelDay]] = {}
        for key, docs in found.items():
            for doc in docs:
                if doc.get("source") != SOURCE_THANKS:
                    continue
                points, metrics, reason = bonus_points(
                    t["member_id"] for t in doc.get("thanks") or []
                )
                if points != doc.get("points") or metrics != doc.get("metrics"):
                    bonuses[doc["_id"]] = (points, metrics, reason)
                doc["points"], doc["metrics"] = points, metrics
            changed, channel_days = apply_daily_caps(day_items(docs), self._policy.daily_caps)
            recounted.update(changed)
            days[key] = channel_days
        await self._repo.save_days(recounted, bonuses, days, stored)
        months = {(c, m, day[:7]) for c, m, day in keys}
        await asyncio.gather(
            self._repo.recompute_months(months),
            self._repo.mark_dirty({(c, month) for c, _, month in months}),
        )

    async def _targets(self, facts: Sequence[Facts]) -> dict[str, Target]:
        """What each message replies to, or for an answer, thanks or encouragement naming
        a member, that member's latest message in the channel within the window before."""
        parents = await self._repo.messages(f.reply_to_id for f in facts if f.reply_to_id)
        targets: dict[str, Target] = {}
        named: dict[str, list[tuple[Facts, str]]] = defaultdict(list)
        for f in facts:
            if f.reply_to_id:
                parent = parents.get(f.reply_to_id)
                if parent is not None and parent.get("created_at") is not None:
                    targets[f.message_id] = target_of(parent)
                continue
            if f.is_bot or f.gone or not wants_target(f):
                continue
            member_id = addressee(f)
            if member_id is not None:
                named[f.community_id].append((f, member_id))
        window = self._policy.address_window
        for community_id, asks in named.items():
            start = min(f.created_at for f, _ in asks) - window
            end = max(f.created_at for f, _ in asks)
            written: dict[tuple[str, str], list[Target]] = defaultdict(list)
            for target in await self._repo.written_by(
                community_id, {m for _, m in asks}, start, end
            ):
                written[(target.author_id, target.channel_id)].append(target)
            for f, member_id in asks:
                candidates = written.get((member_id, f.channel_id), [])
                # The latest one before the message, within the window.
                index = bisect_left([t.created_at for t in candidates], f.created_at)
                if index and f.created_at - candidates[index - 1].created_at <= window:
                    targets[f.message_id] = candidates[index - 1]
        return targets

    async def erase(self, erasure: MemberErasure) -> None:
        """Remove an erased member's scores; idempotent."""
        touched = await self._repo.erase(erasure.community_id, erasure.member_id, erasure.pseudonym)
        await self.recompute(touched)
        # Their months and seasons were removed outright: every ranking's members recounted.
        await self._repo.recount_all(erasure.community_id)
        # Their months and days are gone: the rankings they were in must be announced again.
        await self._repo.mark_dirty_all_months(erasure.community_id)

    async def rebuild(
        self, community_id: str, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Score the community again from its stored analyzed messages, from scratch.

        Returns:
            How many messages were read.
        """
        await self._repo.clear_community(community_id)
        after = None
        read = 0
        while True:
            docs = await self._repo.community_messages(
                community_id, after=after, limit=REBUILD_PAGE
            )
            if not docs:
                return read
            facts = [f for f in (facts_of(doc) for doc in docs) if f is not None]
            await self.apply(facts)
            read += len(docs)
            after = (docs[-1]["created_at"], docs[-1]["_id"])
            if progress is not None:
                progress(read)
