"""Daily rollups of analyzed messages, as pure functions: what a message counts for.

Reports over "the last N days" read small daily counters instead of scanning messages.
Each analyzed message counts once, in two places:

- a *kind* counter keyed by (community, UTC day, channel, kind, topic or none);
- an *activity* counter keyed by (community, UTC day, channel), holding the number of
  analyzed messages and their sentiments, so a report can give percentages.

A message's contribution is its :class:`RollupState`. When a message changes (first
analysis, re-analysis after an edit, a new topic, a deletion), the counters move by the
difference between its previous state and its new one: ``-1`` where it was counted,
``+1`` where it now counts. A replay reads back the state it wrote and so changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pepite_contracts import INSIGHT_KINDS, Analysis, MessageKind, Sentiment
from pepite_reports.rollups import utc_day

#: Separator of the parts of a rollup document id; no community id, day, kind or topic
#: id contains it, and the free-form channel id comes last, so ids never collide.
_ID_SEPARATOR = "|"
#: Stands for "no topic" in document ids.
_NO_TOPIC = "-"


@dataclass(frozen=True, slots=True)
class RollupState:
    """What one analyzed, not deleted, message counts for in the rollups."""

    community_id: str
    channel_id: str
    day: date
    kind: MessageKind
    sentiment: Sentiment
    #: Only insight kinds have a topic; ``None`` until the message is clustered.
    topic_id: str | None = None

    def __post_init__(self) -> None:
        # A topic on a kind that is not clustered would be counted in a category that
        # reports never show: normalise it away once, here.
        if self.topic_id is not None and self.kind not in INSIGHT_KINDS:
            object.__setattr__(self, "topic_id", None)

    @classmethod
    def of(
        cls,
        *,
        community_id: str,
        channel_id: str,
        created_at: datetime,
        analysis: Analysis,
        topic_id: str | None = None,
    ) -> RollupState:
        """The state of a message from its place, time and analysis."""
        return cls(
            community_id=community_id,
            channel_id=channel_id,
            day=utc_day(created_at),
            kind=analysis.kind,
            sentiment=analysis.sentiment,
            topic_id=topic_id,
        )

    @property
    def kind_key(self) -> KindKey:
        return KindKey(self.community_id, self.day, self.channel_id, self.kind, self.topic_id)

    @property
    def activity_key(self) -> ActivityKey:
        return ActivityKey(self.community_id, self.day, self.channel_id)


def state_from_document(document: Mapping[str, Any] | None) -> RollupState | None:
    """The rollup state of a stored message document, as counted now.

    A message counts once it has an ``analysis`` and until it is deleted; ``None``
    means it counts nowhere (never analyzed, deleted, or no document at all).

    Args:
        document: A ``messages`` document with at least ``community_id``, ``channel.id``,
            ``created_at``, ``analysis`` (``Analysis.model_dump()``), ``topic_id`` and
            ``deleted_at`` when deleted.
    """
    if document is None or document.get("deleted_at") is not None:
        return None
    analysis = document.get("analysis")
    if not analysis:
        return None
    return RollupState(
        community_id=document["community_id"],
        channel_id=document["channel"]["id"],
        day=utc_day(document["created_at"]),
        kind=MessageKind(analysis["kind"]),
        sentiment=Sentiment(analysis.get("sentiment", Sentiment.NEUTRAL)),
        topic_id=document.get("topic_id"),
    )


@dataclass(frozen=True, slots=True)
class KindKey:
    """One kind counter: messages of a kind (and topic) in a channel on a day."""

    community_id: str
    day: date
    channel_id: str
    kind: MessageKind
    topic_id: str | None

    @property
    def document_id(self) -> str:
        return _ID_SEPARATOR.join(
            (
                self.community_id,
                self.day.isoformat(),
                self.kind.value,
                self.topic_id or _NO_TOPIC,
                self.channel_id,
            )
        )


@dataclass(frozen=True, slots=True)
class ActivityKey:
    """One activity counter: analyzed messages and sentiments in a channel on a day."""

    community_id: str
    day: date
    channel_id: str

    @property
    def document_id(self) -> str:
        return _ID_SEPARATOR.join((self.community_id, self.day.isoformat(), self.channel_id))


@dataclass
class ActivityDelta:
    """How one activity counter moves."""

    messages: int = 0
    sentiments: dict[Sentiment, int] = field(default_factory=dict)

    def add(self, sentiment: Sentiment, step: int) -> None:
        self.messages += step
        self.sentiments[sentiment] = self.sentiments.get(sentiment, 0) + step

    def is_zero(self) -> bool:
        return self.messages == 0 and not any(self.sentiments.values())


@dataclass
class RollupChanges:
    """Net changes of the counters for a batch of message transitions.

    Changes that cancel out within the batch (an edit analyzed back to the same kind,
    a replay) are dropped, so an unchanged batch writes nothing.
    """

    kinds: dict[KindKey, int] = field(default_factory=dict)
    activity: dict[ActivityKey, ActivityDelta] = field(default_factory=dict)

    def add(self, previous: RollupState | None, current: RollupState | None) -> None:
        """Account for one message going from ``previous`` to ``current``.

        Args:
            previous: What the message counted for before (as read from the database
                before this write), ``None`` if it counted nowhere.
            current: What it counts for now, ``None`` if it no longer counts (deleted).
        """
        if previous == current:
            return
        if previous is not None:
            self._step(previous, -1)
        if current is not None:
            self._step(current, +1)

    def _step(self, state: RollupState, step: int) -> None:
        kind_key = state.kind_key
        count = self.kinds.get(kind_key, 0) + step
        if count:
            self.kinds[kind_key] = count
        else:
            del self.kinds[kind_key]
        activity_key = state.activity_key
        delta = self.activity.setdefault(activity_key, ActivityDelta())
        delta.add(state.sentiment, step)
        if delta.is_zero():
            del self.activity[activity_key]

    def __bool__(self) -> bool:
        return bool(self.kinds or self.activity)


def rollup_changes(
    transitions: Iterable[tuple[RollupState | None, RollupState | None]],
) -> RollupChanges:
    """Net counter changes for ``(previous, current)`` states of messages.

    Pass, for each message written, the state read from the database *before* the
    write and the state written; a message appearing twice in a batch must be passed
    as successive transitions (``a -> b`` then ``b -> c``).
    """
    changes = RollupChanges()
    for previous, current in transitions:
        changes.add(previous, current)
    return changes
