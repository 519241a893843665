"""The Personal Logger, extractive: one member's day told with their own messages.

Built only for members who turned their journal on. An entry says how the member's
messages read (mood), what went wrong (challenges) and right (wins), what they did for
others (answers, resources, encouragements), a few numbers, and the titles reached that
day. Other members are named only when they consented to a journal or to
personalization themselves; everyone else is "a member", in quoted text too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo

from pepite_contracts import MessageKind, Mood
from pepite_digest.lore import UNQUOTABLE, PeriodFacts, excerpt
from pepite_digest.repository import PeriodMessage
from pepite_reports.journals import (
    ActionKind,
    JournalEntry,
    JournalStats,
    MoodOfDay,
    NamedMember,
    NotableAction,
    Quoted,
    UnlockedTitle,
    journal_entry_id,
)

#: What stands for a member who did not consent to be named.
A_MEMBER = "a member"
#: Quotes kept per section: a journal is read, not scrolled.
SECTION_SIZE = 10
#: How far back a message may be and still be what a reply of the day answers.
CONTEXT = timedelta(days=1)
CHALLENGE_KINDS = frozenset({MessageKind.PROBLEM, MessageKind.COMPLAINT})
WIN_KINDS = frozenset({MessageKind.SATISFACTION, MessageKind.GRATITUDE})
#: Achievements in the member's words ("it works now", "solved!").
ACHIEVEMENT = re.compile(
    r"\b(solved|fixed it|(?:it|that|this|everything) works now|(?:it's|is) working now"
    r"|got it (?:working|to work)|finally (?:works|working|got it)|figured (?:it )?out"
    r"|managed to|shipped|merged|passed)\b",
    re.IGNORECASE,
)
LINK = re.compile(r"https?://\S+", re.IGNORECASE)
#: Platform mention markup (``<@123>``, ``<@!123>``): the native id of a member.
MENTION_MARKUP = re.compile(r"<@!?(\d+)>")


class Measure(StrEnum):
    MESSAGES = "messages"
    ANSWERS = "answers"
    RESOURCES = "resources"
    ENCOURAGEMENTS = "encouragements"
    STREAK = "streak"


@dataclass(frozen=True)
class Title:
    """A title a member unlocks once, the first day ``measure`` reaches ``threshold``."""

    title_id: str
    name: str
    description: str
    measure: Measure
    threshold: int

    def shown(self) -> UnlockedTitle:
        return UnlockedTitle(title_id=self.title_id, name=self.name, description=self.description)


TITLES = (
    Title("first_words", "First words", "Wrote a first message.", Measure.MESSAGES, 1),
    Title("regular", "Regular", "100 messages written.", Measure.MESSAGES, 100),
    Title("voice", "Voice of the community", "1,000 messages written.", Measure.MESSAGES, 1000),
    Title("first_answer", "Helping hand", "Answered a first question.", Measure.ANSWERS, 1),
    Title("go_to_helper", "Go-to helper", "10 questions answered.", Measure.ANSWERS, 10),
    Title("pillar", "Pillar", "50 questions answered.", Measure.ANSWERS, 50),
    Title("librarian", "Librarian", "Shared a first resource.", Measure.RESOURCES, 1),
    Title("curator", "Curator", "10 resources shared.", Measure.RESOURCES, 10),
    Title("cheerleader", "Cheerleader", "5 encouragements given.", Measure.ENCOURAGEMENTS, 5),
    Title("week_streak", "Week streak", "Active 7 days in a row.", Measure.STREAK, 7),
    Title("month_streak", "Month streak", "Active 30 days in a row.", Measure.STREAK, 30),
)
TITLES_BY_ID = {t.title_id: t for t in TITLES}


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a local day, as aware datetimes (23 or 25 hours across DST)."""
    zone = ZoneInfo(timezone)
    # In UTC: comparing with stored times is then cheap (no zone rules to apply each time).
    return (
        datetime.combine(day, time(), zone).astimezone(UTC),
        datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC),
    )


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def streak(active_days: Iterable[date], day: date) -> int:
    """Consecutive active days ending with ``day`` (0 when ``day`` was not active)."""
    active = set(active_days)
    count = 0
    while day - timedelta(days=count) in active:
        count += 1
    return count


@dataclass(frozen=True)
class Totals:
    """Where the member stands at the end of the day, for titles."""

    messages: int
    answers: int
    resources: int
    encouragements: int
    streak: int

    def of(self, measure: Measure) -> int:
        return int(getattr(self, measure.value))


def reached_titles(totals: Totals) -> list[Title]:
    return [t for t in TITLES if totals.of(t.measure) >= t.threshold]


class Redactor:
    """Replaces the names (and mention markup) of members who may not be named.

    Names match as whole words, case-insensitively, with or without ``@``; longer names
    first, so "ann-marie" is not left half-replaced by "ann".
    """

    def __init__(
        self, hidden_names: Iterable[str], shown: Mapping[str, str], member_prefix: str
    ) -> None:
        names = sorted({n for n in hidden_names if len(n) >= 2}, key=len, reverse=True)
        self._names = (
            re.compile(
                r"(?<![\w@])@?(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)",
                re.IGNORECASE,
            )
            if names
            else None
        )
        self._shown = shown
        self._prefix = member_prefix

    def __call__(self, text: str) -> str:
        def markup(match: re.Match[str]) -> str:
            name = self._shown.get(self._prefix + match.group(1))
            return f"@{name}" if name else A_MEMBER

        text = MENTION_MARKUP.sub(markup, text)
        return self._names.sub(A_MEMBER, text) if self._names is not None else text


@dataclass(frozen=True)
class CommunityDay:
    """What one local day of a community holds, read once for all its journals."""

    community_id: str
    day: date
    timezone: str
    start: datetime
    end: datetime
    #: The day's messages and those of the :data:`CONTEXT` before, oldest first.
    facts: PeriodFacts
    moods: Mapping[str, Mood]
    #: Every name of the members involved (authors, mentioned), by member id, the one
    #: to show first.
    names: Mapping[str, Sequence[str]]
    #: Members who consented to a journal or to personalization: they may be named.
    visible: frozenset[str]
    #: Every name taken by someone not visible (dropped from quotes).
    hidden_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        hidden = {
            name
            for member_id, names in self.names.items()
            if member_id not in self.visible
            for name in names
        }
        object.__setattr__(self, "hidden_names", frozenset(hidden))

    def in_day(self, message: PeriodMessage) -> bool:
        return self.start <= message.created_at < self.end

    @cached_property
    def by_author(self) -> dict[str, list[PeriodMessage]]:
        """Members' messages (context included) by author, bots left out."""
        grouped: dict[str, list[PeriodMessage]] = {}
        for message in self.facts.messages:
            if not message.is_bot:
                grouped.setdefault(message.author_id, []).append(message)
        return grouped

    @cached_property
    def members_messages(self) -> list[PeriodMessage]:
        """Members' messages of the day itself, bots left out."""
        return [m for m in self.facts.messages if not m.is_bot and self.in_day(m)]

    def name_of(self, member_id: str) -> str | None:
        """The member's name when they may be named, else None."""
        if member_id not in self.visible:
            return None
        names = self.names.get(member_id)
        return names[0] if names else None


@dataclass(frozen=True)
class MemberDay:
    """One member's day before the titles (which depend on what is stored) are known."""

    member_id: str
    member_name: str
    mood: MoodOfDay
    challenges: list[Quoted]
    wins: list[Quoted]
    actions: list[NotableAction]
    stats: JournalStats
    named: list[NamedMember]

    def count(self, kind: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind is kind)

    def entry(
        self,
        day: CommunityDay,
        *,
        streak_days: int,
        titles: Sequence[Title],
        generated_at: datetime,
    ) -> JournalEntry:
        return JournalEntry(
            entry_id=journal_entry_id(self.member_id, day.day),
            community_id=day.community_id,
            member_id=self.member_id,
            member_name=self.member_name,
            day=day.day,
            timezone=day.timezone,
            generated_at=generated_at,
            mood=self.mood,
            challenges=self.challenges,
            wins=self.wins,
            actions=self.actions,
            stats=self.stats.model_copy(update={"streak_days": streak_days}),
            titles_unlocked=[t.shown() for t in titles],
            named=self.named,
        )


def mood_of(messages: Sequence[PeriodMessage], moods: Mapping[str, Mood]) -> MoodOfDay:
    """Counts by mood and sentiment; the dominant mood is the most frequent one, a
    non-neutral mood winning a tie against neutral, then the latest of the day."""
    found = [moods[m.message_id] for m in messages if m.message_id in moods]
    counts = Counter(mood.value for mood in found)
    last_seen = {mood.value: n for n, mood in enumerate(found)}
    dominant = max(
        counts,
        key=lambda mood: (counts[mood], mood != Mood.NEUTRAL.value, last_seen[mood]),
        default=None,
    )
    sentiments = Counter(m.sentiment.value for m in messages if m.sentiment is not None)
    return MoodOfDay(dominant=dominant, moods=dict(counts), sentiments=dict(sentiments))


def member_day(day: CommunityDay, member_id: str, member_name: str) -> MemberDay | None:
    """The member's day, or None when they wrote nothing that day."""
    own = day.by_author.get(member_id, [])
    today = [m for m in own if day.in_day(m)]
    if not today:
        return None
    platform, community, _ = member_id.split(":", 2)
    redact = Redactor(
        day.hidden_names - {member_name, *day.names.get(member_id, ())},
        {m: n for m in day.visible if (n := day.name_of(m))},
        f"{platform}:{community}:",
    )
    named: set[str] = set()

    def quoted(message: PeriodMessage) -> Quoted:
        return Quoted(
            message_id=message.message_id,
            channel_name=message.channel_name,
            created_at=message.created_at,
            excerpt=redact(excerpt(message.text)),
        )

    def who(other_id: str) -> str:
        name = day.name_of(other_id)
        if name is None:
            return A_MEMBER
        named.add(other_id)
        return name

    quotable = [m for m in today if m.kind not in UNQUOTABLE]
    challenges = [quoted(m) for m in quotable if m.kind in CHALLENGE_KINDS]
    wins = [
        quoted(m)
        for m in quotable
        if m.kind in WIN_KINDS
        or (
            m.kind not in CHALLENGE_KINDS
            and m.kind is not MessageKind.QUESTION
            and ACHIEVEMENT.search(m.text)
        )
    ]
    answered = {
        a.answer.message_id: a
        for a in day.facts.answered
        if a.answer is not None
        and a.answer.author_id == member_id
        and a.question.author_id != member_id
        and day.in_day(a.answer)
    }
    actions: list[NotableAction] = []
    for message in quotable:
        if message.message_id in answered:
            asker = answered[message.message_id].question.author_id
            kind, summary = ActionKind.ANSWER, f"Answered a question from {who(asker)}"
        elif message.kind is MessageKind.RESOURCE or LINK.search(message.text):
            kind, summary = ActionKind.RESOURCE, "Shared a resource"
        elif message.kind is MessageKind.ENCOURAGEMENT:
            kind, summary = ActionKind.ENCOURAGEMENT, "Encouraged others"
        else:
            continue
        actions.append(NotableAction(kind=kind, summary=summary, message=quoted(message)))
    own_ids = {m.message_id for m in own}
    replies = [
        m
        for m in day.members_messages
        if m.author_id != member_id and (m.reply_to_id in own_ids or member_id in m.mentioned)
    ]
    stats = JournalStats(
        messages=len(today),
        channels=len({m.channel_id for m in today}),
        replies_received=len(replies),
        reactions_received=sum(m.reactions for m in today),
        questions_asked=sum(1 for m in today if m.kind is MessageKind.QUESTION),
        questions_answered=len(answered),
        streak_days=0,
    )
    return MemberDay(
        member_id=member_id,
        member_name=member_name,
        mood=mood_of(today, day.moods),
        challenges=challenges[:SECTION_SIZE],
        wins=wins[:SECTION_SIZE],
        actions=actions,
        stats=stats,
        named=_named(day, member_id, named, [*challenges, *wins, *(a.message for a in actions)]),
    )


def _named(
    day: CommunityDay, member_id: str, named: set[str], quotes: Sequence[Quoted]
) -> list[NamedMember]:
    """The visible members the entry names: in its summaries, or in the quoted text."""
    text = " ".join(q.excerpt for q in quotes)
    for other_id, names in day.names.items():
        if other_id in day.visible and other_id != member_id and _mentions(text, names):
            named.add(other_id)
    return [
        NamedMember(member_id=other_id, names=list(day.names.get(other_id, ())))
        for other_id in sorted(named)
    ]


def _mentions(text: str, names: Iterable[str]) -> bool:
    return any(
        re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text, re.IGNORECASE)
        for name in names
        if len(name) >= 2
    )


def forget_name(entry: JournalEntry, member_id: str) -> JournalEntry:
    """The entry without ``member_id``'s name: they no longer allow being named."""
    names = [name for n in entry.named if n.member_id == member_id for name in n.names]
    if not names:
        return entry
    redact = Redactor(names, {}, "")

    def clean(quoted: Quoted) -> Quoted:
        return quoted.model_copy(update={"excerpt": redact(quoted.excerpt)})

    return entry.model_copy(
        update={
            "challenges": [clean(q) for q in entry.challenges],
            "wins": [clean(q) for q in entry.wins],
            "actions": [
                a.model_copy(update={"summary": redact(a.summary), "message": clean(a.message)})
                for a in entry.actions
            ],
            "named": [n for n in entry.named if n.member_id != member_id],
        }
    )
