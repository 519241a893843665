"""What a message is worth on each theme, and the daily caps: pure functions.

A message gives its author points on the themes its kind serves (an answer to another
member helps, a resource is shared, a win is progress, a thanks is kindness) and one
activity point. A thanks aimed at another member's message also earns that message's
author a bonus on helpfulness, once per member who thanks it, and makes that message an
accepted answer (the thanks says it helped).

Nothing counts from bots, from a reply to one's own message (answering or thanking
oneself), or from a message the analyzer flagged (spam, scam, self-promotion, toxic, or
a moderation score at or above the threshold). Each member's points on a theme are
capped per UTC day, in the order the messages were written, so a burst of messages
adds nothing past the cap whatever order they are processed in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pepite_contracts import MODERATION_KINDS, MessageKind
from pepite_reports.leaderboards import METRIC_THEMES, Metric, Theme, month_label

#: Answer to another member's question or problem / to another member / to no one.
ANSWER_TO_QUESTION = 3.0
ANSWER_TO_MEMBER = 2.0
ANSWER_TO_NO_ONE = 1.0
#: Each reaction on an answer or a resource adds a point, up to this many.
REACTION_POINT = 1.0
MAX_REACTION_POINTS = 5.0
#: Each member who thanks a message gives its author this much helpfulness.
THANKS_BONUS = 2.0
RESOURCE = 3.0
ENCOURAGEMENT = 2.0
GRATITUDE = 1.0
WIN = 2.0
ACTIVITY = 1.0

QUESTION_KINDS = frozenset({MessageKind.QUESTION, MessageKind.PROBLEM})

#: "thanks", "thx", "ty", "that worked"… in a short message.
THANKS = re.compile(
    r"\b(thanks?|thank you|thankyou|thx|tnx|ty|tyvm|cheers|merci|appreciated?|"
    r"(?:that|it) (?:worked|works)|works now|solved|fixed it)\b",
    re.IGNORECASE,
)
THANKS_MAX_WORDS = 12
#: A member's own words that something now works.
ACHIEVEMENT = re.compile(
    r"\b(solved|fixed it|(?:it|that|this|everything) works now|(?:it's|is) working now"
    r"|got it (?:working|to work)|finally (?:works|working|got it)|figured (?:it )?out"
    r"|shipped|merged|passed)\b",
    re.IGNORECASE,
)
#: Kinds whose text saying "solved" is not a win (a question about it, a complaint).
NOT_WINS = frozenset({MessageKind.QUESTION, MessageKind.PROBLEM, MessageKind.COMPLAINT})

_METRIC_THEMES = {metric.value: theme.value for metric, theme in METRIC_THEMES.items()}

SOURCE_MESSAGE = "message"
SOURCE_THANKS = "thanks"


@dataclass(frozen=True, slots=True)
class Facts:
    """What scoring needs of one analyzed message."""

    message_id: str
    community_id: str
    channel_id: str
    author_id: str
    is_bot: bool
    created_at: datetime
    kind: MessageKind
    #: The highest of the toxicity, hate, spam and scam scores.
    risk: float
    text: str = ""
    reply_to_id: str | None = None
    mentioned: tuple[str, ...] = ()
    reactions: int = 0
    #: Deleted on its platform, or its author was erased: it must not count.
    gone: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """The message a reply, an answer or a thanks is about."""

    message_id: str
    author_id: str
    is_bot: bool
    kind: MessageKind | None
    channel_id: str
    created_at: datetime
    gone: bool = False


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one message gives its author (before the daily cap)."""

    contribution_id: str
    community_id: str
    member_id: str
    channel_id: str
    at: datetime
    message_id: str
    kind: str
    points: dict[str, float]
    metrics: dict[str, int]
    reason: str
    excluded: str | None = None
    #: The bonus this message adds to (a thanks): :func:`bonus_id` of its target.
    credit: str | None = None

    @property
    def day(self) -> str:
        return self.at.date().isoformat()

    @property
    def month(self) -> str:
        return month_label(self.at.date())


@dataclass(frozen=True, slots=True)
class Thanks:
    """A thanks to credit: ``thanker`` thanked ``target`` with message ``message_id``."""

    message_id: str
    thanker: str
    target: Target
    community_id: str


@dataclass(frozen=True, slots=True)
class Scored:
    """A message's contribution (``None`` for bots and gone messages) and its thanks."""

    contribution: Contribution | None
    thanks: Thanks | None = None


def bonus_id(target_message_id: str) -> str:
    """The id of the bonus a thanked message earns its author."""
    return f"thanked|{target_message_id}"


def is_thanks(facts: Facts) -> bool:
    if facts.kind is MessageKind.GRATITUDE:
        return True
    return THANKS.search(facts.text) is not None and len(facts.text.split()) <= THANKS_MAX_WORDS


def is_win(facts: Facts) -> bool:
    if facts.kind is MessageKind.SATISFACTION:
        return True
    return facts.kind not in NOT_WINS and ACHIEVEMENT.search(facts.text) is not None


def wants_target(facts: Facts) -> bool:
    """Whether the message's target matters to its score (answers, thanks, encouragement)."""
    return facts.kind in {MessageKind.ANSWER, MessageKind.ENCOURAGEMENT} or is_thanks(facts)


def addressee(facts: Facts) -> str | None:
    """The first member the message names other than its author."""
    for member_id in facts.mentioned:
        if member_id != facts.author_id:
            return member_id
    return None


def _excluded(facts: Facts, parent: Target | None, threshold: float) -> str | None:
    if facts.kind in MODERATION_KINDS:
        return f"flagged {facts.kind.value.replace('_', '-')}: counts for nothing"
    if facts.risk >= threshold:
        return f"moderation score {facts.risk:.2f} at or above {threshold:.2f}: counts for nothing"
    if parent is not None and parent.author_id == facts.author_id:
        return "reply to one's own message: counts for nothing"
    if facts.mentioned and all(m == facts.author_id for m in facts.mentioned) and is_thanks(facts):
        return "thanking oneself: counts for nothing"
    return None


@dataclass
class _Gains:
    """Points, counts and reasons, added up while a message is scored."""

    points: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    metrics: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reasons: list[str] = field(default_factory=list)

    def add(self, theme: Theme, points: float, metric: Metric | None, reason: str) -> None:
        self.points[theme.value] += points
        if metric is not None:
            self.metrics[metric.value] += 1
        if reason:
            self.reasons.append(reason)


def _answer(facts: Facts, other: Target | None, gains: _Gains) -> None:
    if other is not None and other.kind in QUESTION_KINDS:
        gains.add(
            Theme.HELPFULNESS,
            ANSWER_TO_QUESTION,
            Metric.ANSWERS,
            "answered another member's question",
        )
    elif other is not None or addressee(facts) is not None:
        gains.add(Theme.HELPFULNESS, ANSWER_TO_MEMBER, Metric.ANSWERS, "answered another member")
    else:
        gains.add(
            Theme.HELPFULNESS, ANSWER_TO_NO_ONE, None, "answer addressed to no one in particular"
        )


def _contribution(
    facts: Facts, gains: _Gains | None, *, excluded: str | None = None, credit: str | None = None
) -> Contribution:
    return Contribution(
        contribution_id=facts.message_id,
        community_id=facts.community_id,
        member_id=facts.author_id,
        channel_id=facts.channel_id,
        at=facts.created_at,
        message_id=facts.message_id,
        kind=facts.kind.value,
        points={k: v for k, v in gains.points.items() if v} if gains else {},
        metrics={k: v for k, v in gains.metrics.items() if v} if gains else {},
        reason="; ".join(gains.reasons) if gains else "",
        excluded=excluded,
        credit=credit,
    )


def score(facts: Facts, target: Target | None, *, moderation_threshold: float) -> Scored:
    """The contribution of one message and the thanks it gives.

    Args:
        facts: The message.
        target: The message it replies to, or for an answer, thanks or encouragement
            that names a member without replying, that member's latest message before it
            in the channel (when the caller found one).
        moderation_threshold: A risk score at or above this excludes the message.
    """
    if facts.is_bot or facts.gone:
        return Scored(None)
    parent = target if target is not None and facts.reply_to_id == target.message_id else None
    excluded = _excluded(facts, parent, moderation_threshold)
    if excluded is not None:
        return Scored(_contribution(facts, None, excluded=excluded))
    # Thanking a bot, a deleted message or a flagged one earns nobody anything.
    usable = (
        target
        if target is not None
        and not target.gone
        and not target.is_bot
        and target.kind not in MODERATION_KINDS
        else None
    )
    other = usable if usable is not None and usable.author_id != facts.author_id else None
    gains = _Gains()
    gains.add(Theme.ACTIVITY, ACTIVITY, Metric.MESSAGES, "")
    reactions = min(facts.reactions * REACTION_POINT, MAX_REACTION_POINTS)
    if facts.kind is MessageKind.ANSWER:
        _answer(facts, other, gains)
        gains.points[Theme.HELPFULNESS.value] += reactions
    elif facts.kind is MessageKind.RESOURCE:
        gains.add(Theme.SHARING, RESOURCE + reactions, Metric.RESOURCES, "shared a resource")
    elif facts.kind is MessageKind.ENCOURAGEMENT:
        gains.add(Theme.KINDNESS, ENCOURAGEMENT, Metric.ENCOURAGEMENTS, "encouraged a member")
    if reactions and facts.kind in {MessageKind.ANSWER, MessageKind.RESOURCE}:
        gains.metrics[Metric.REACTIONS_RECEIVED.value] += facts.reactions
        gains.reasons.append(f"{facts.reactions} reaction(s)")
    thanks: Thanks | None = None
    if is_thanks(facts):
        gains.add(Theme.KINDNESS, GRATITUDE, Metric.THANKS_GIVEN, "thanked a member")
        if other is not None:
            thanks = Thanks(facts.message_id, facts.author_id, other, facts.community_id)
    if is_win(facts):
        gains.add(Theme.PROGRESS, WIN, Metric.WINS, "reported a win")
    if not gains.reasons:
        gains.reasons.append("took part")
    credit = bonus_id(thanks.target.message_id) if thanks else None
    return Scored(_contribution(facts, gains, credit=credit), thanks)


def bonus_points(thankers: Iterable[str]) -> tuple[dict[str, float], dict[str, int], str]:
    """What a thanked message earns its author: points, counts and the reason."""
    count = len(set(thankers))
    if count == 0:
        return {}, {}, "no longer thanked"
    plural = "member" if count == 1 else "members"
    return (
        {Theme.HELPFULNESS.value: THANKS_BONUS * count},
        {Metric.THANKS_RECEIVED.value: count, Metric.ACCEPTED_ANSWERS.value: 1},
        f"thanked by {count} {plural}",
    )


@dataclass(slots=True)
class DayItem:
    """One stored contribution of a member's day, as the daily cap sees it."""

    contribution_id: str
    channel_id: str
    at: datetime
    points: dict[str, float]
    metrics: dict[str, int]
    counted: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelDay:
    """A member's counted points and counts in one channel on one day."""

    channel_id: str
    points: dict[str, float]
    metrics: dict[str, int]


def apply_daily_caps(
    items: Sequence[DayItem], caps: Mapping[str, float]
) -> tuple[dict[str, dict[str, float]], list[ChannelDay]]:
    """Cap one member's day, in the order the messages were written.

    Returns:
        The counted points of each item whose counted points changed, and the day's
        totals per channel. An item's counts go into the totals only when its points on
        their theme counted, so a burst past the caps does not earn titles either.
    """
    used: dict[str, float] = defaultdict(float)
    changed: dict[str, dict[str, float]] = {}
    per_channel: dict[str, tuple[dict[str, float], dict[str, int]]] = {}
    for item in sorted(items, key=lambda i: (i.at, i.contribution_id)):
        counted: dict[str, float] = {}
        for theme, value in item.points.items():
            cap = caps.get(theme)
            allowed = value if cap is None else max(0.0, min(value, cap - used[theme]))
            used[theme] += allowed
            if allowed:
                counted[theme] = round(allowed, 4)
        if counted != item.counted:
            changed[item.contribution_id] = counted
        points, metrics = per_channel.setdefault(item.channel_id, ({}, {}))
        for theme, value in counted.items():
            points[theme] = points.get(theme, 0.0) + value
        for metric, count in item.metrics.items():
            owner = _METRIC_THEMES.get(metric)
            if owner is None or not item.points.get(owner) or counted.get(owner):
                metrics[metric] = metrics.get(metric, 0) + count
    days = [
        ChannelDay(channel, points, metrics)
        for channel, (points, metrics) in sorted(per_channel.items())
        if points or metrics
    ]
    return changed, days
