"""The Lore Keeper, extractive: what happened in a period, told with the messages themselves.

Every statement quotes or counts messages and cites them. Nothing is made up: without an
LLM, the digest chooses among what was said — the busiest conversations, announcements
and decisions, rising and new topics with a few diverse messages each, the questions
that drew the most attention with where they were answered, those still waiting, new
members' first words, and the members who answered the most.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from pepite_contracts import MessageKind
from pepite_digest.repository import MemberInfo, PeriodMessage, TopicInfo
from pepite_kit.search import search_terms
from pepite_reports.digests.models import (
    SECTION_TITLES,
    Cited,
    Digest,
    KeyNumber,
    Section,
    SectionKind,
    Statement,
)

#: Kinds never quoted: a digest does not spread spam or abuse.
UNQUOTABLE = frozenset({MessageKind.SPAM, MessageKind.TOXIC, MessageKind.SELF_PROMOTION})
#: Words that mark a decision in a meeting or an announcement channel.
DECISION = re.compile(
    r"\b(we(?:'ve| have)? decided|decision|agreed (?:to|on|that)|approved|voted|resolved to"
    r"|will be released|has been released|is (?:now )?released|is now available|#agreed"
    r"|#action|action item)\b",
    re.IGNORECASE,
)
#: "nick: ..." or "nick, ...": a message addressed to one person in chat habits.
ADDRESSED = re.compile(r"^\s*@?[\w\-\[\]`^{}|.]{2,32}[:,]\s")
#: A reply that mentions the asker this long after a question answers it, even unlinked.
ANSWER_WINDOW = timedelta(hours=2)
SECTION_SIZE = 5
#: Weight of relevance against repetition when choosing representative messages.
MMR_RELEVANCE = 0.5
#: Share of centrality (the rest: engagement) in how representative an embedded message is.
CENTRALITY_WEIGHT = 0.7
EXCERPT_CHARS = 160


@dataclass
class Conversation:
    """A message and the replies it drew within the period."""

    root: PeriodMessage
    messages: list[PeriodMessage] = field(default_factory=list)

    @property
    def participants(self) -> set[str]:
        return {m.author_id for m in self.messages if not m.is_bot}

    @property
    def engagement(self) -> int:
        return (
            len(self.messages)
            - 1
            + sum(m.reactions for m in self.messages)
            + len(self.participants)
        )


@dataclass(frozen=True)
class Answered:
    question: PeriodMessage
    answer: PeriodMessage | None
    #: Replies to the question itself (linked, or mentioning the asker soon after).
    replies: int

    @property
    def opens_a_topic(self) -> bool:
        """Asked of everyone, in words enough to stand alone (not "what do u see?")."""
        return opens_a_topic(self.question)


def opens_a_topic(message: PeriodMessage) -> bool:
    """Said to everyone, in words enough to stand alone: not a reply, not addressed to
    or mentioning someone, six words or more."""
    return (
        not message.mentioned
        and message.reply_to_id is None
        and not ADDRESSED.match(message.text)
        and len(message.text.split()) >= 6
    )


def open_question(message: PeriodMessage) -> bool:
    """A member's question to everyone, worth someone's answer: what, left without
    one, the digest lists as still unanswered and the watcher alerts about."""
    return (
        message.kind is MessageKind.QUESTION
        and not message.is_bot
        and opens_a_topic(message)
        and "?" in message.text
    )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The text on one line, cut at a word near ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + "…"


def conversations(messages: Sequence[PeriodMessage]) -> list[Conversation]:
    """Group messages by the reply chains (and threads) they belong to, oldest first."""
    by_id = {m.message_id: m for m in messages}
    root_of: dict[str, str] = {}
    thread_root: dict[str, str] = {}
    grouped: dict[str, Conversation] = {}
    for message in messages:
        parent = message.reply_to_id
        if parent is not None and parent in root_of:
            root = root_of[parent]
        elif message.thread_id is not None and message.thread_id in thread_root:
            root = thread_root[message.thread_id]
        else:
            root = message.message_id
        root_of[message.message_id] = root
        if message.thread_id is not None:
            thread_root.setdefault(message.thread_id, root)
        grouped.setdefault(root, Conversation(by_id[root])).messages.append(message)
    return list(grouped.values())


def answers(messages: Sequence[PeriodMessage], talks: Sequence[Conversation]) -> list[Answered]:
    """Each question of the period, with the reply that answers it best (if any).

    A reply is another member's message linked to the question, or one that mentions
    the asker in the same channel within :data:`ANSWER_WINDOW` of their latest question
    (chat habits: "nick: try this"). Without either, what others said next in the
    question's conversation stands in. The reply the analyzer calls an answer wins,
    then the most reacted to, then the first.
    """
    conversation_of = {m.message_id: talk for talk in talks for m in talk.messages}
    direct: dict[str, list[PeriodMessage]] = defaultdict(list)
    latest_question: dict[tuple[str, str], PeriodMessage] = {}
    for message in messages:
        if message.is_bot:
            continue
        if message.reply_to_id is not None:
            direct[message.reply_to_id].append(message)
        for member_id in message.mentioned:
            asked = latest_question.get((message.channel_id, member_id))
            if (
                asked is not None
                and member_id != message.author_id
                and message.reply_to_id != asked.message_id
                and message.created_at - asked.created_at <= ANSWER_WINDOW
            ):
                direct[asked.message_id].append(message)
        if message.kind is MessageKind.QUESTION:
            latest_question[(message.channel_id, message.author_id)] = message
    found: list[Answered] = []
    for question in messages:
        if question.kind is not MessageKind.QUESTION or question.is_bot:
            continue
        replies = [m for m in direct[question.message_id] if m.author_id != question.author_id]
        later_in_talk = [
            m
            for m in conversation_of[question.message_id].messages
            if m.created_at > question.created_at
            and m.author_id != question.author_id
            and not m.is_bot
        ]
        best = max(
            replies or later_in_talk,
            key=lambda m: (m.kind is MessageKind.ANSWER, m.reactions, -m.created_at.timestamp()),
            default=None,
        )
        found.append(Answered(question, best, len(replies)))
    return found


def diverse(candidates: Sequence[PeriodMessage], k: int = 3) -> list[PeriodMessage]:
    """Up to ``k`` representative messages that do not repeat each other.

    Maximal marginal relevance: each next message trades how representative it is
    against how much it repeats those already chosen. With sentence vectors, a message
    is as representative as it is close to the centroid of the group's vectors, and
    repeats another as much as their vectors agree (cosine). A message without a vector
    falls back to words: its engagement alone (reactions, then length) for relevance,
    and the overlap of its stemmed terms with another's for repetition.
    """
    pool = [m for m in candidates if m.kind not in UNQUOTABLE and len(m.text.split()) >= 4]
    if not pool:
        return []
    likeness = _Likeness(pool)
    relevance = likeness.relevance()
    repeats = np.zeros(len(pool))
    available = np.ones(len(pool), dtype=bool)
    chosen: list[int] = []
    while len(chosen) < min(k, len(pool)):
        score = np.where(
            available, MMR_RELEVANCE * relevance - (1 - MMR_RELEVANCE) * repeats, -np.inf
        )
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        repeats = np.maximum(repeats, likeness.similarity_to(best))
    return [pool[i] for i in chosen]


class _Likeness:
    """How representative messages of one group are, and how much two say the same.

    Vectors are compared by cosine; word sets (stemmed terms, computed once per
    message) stand in for a message without a vector.
    """

    def __init__(self, pool: Sequence[PeriodMessage]) -> None:
        self._pool = pool
        embedded = [(i, m.vector) for i, m in enumerate(pool) if m.vector is not None]
        #: Indexes in ``pool`` of the messages with a vector, row by row of ``_vectors``.
        self._rows = [i for i, _ in embedded]
        self._row_of = {i: row for row, i in enumerate(self._rows)}
        self._vectors = (
            _unit(np.stack([v for _, v in embedded]))
            if embedded
            else np.zeros((0, 0), dtype=np.float32)
        )
        self._words_only = [i for i in range(len(pool)) if i not in self._row_of]
        self._terms: dict[int, set[str]] = {}

    def terms(self, i: int) -> set[str]:
        if i not in self._terms:
            self._terms[i] = set(search_terms(self._pool[i].text))
        return self._terms[i]

    def relevance(self) -> npt.NDArray[np.float64]:
        """Per message, in [0, 1]: its engagement (reactions, then length) against the
        group's best, blended for a message with a vector with its cosine to the centroid
        of the group's vectors (alone, centrality favours short, generic messages)."""
        engagement = np.array(
            [m.reactions + min(len(self.terms(i)), 20) / 20 for i, m in enumerate(self._pool)]
        )
        relevance = engagement / (engagement.max() or 1.0)
        if self._rows:
            centroid = _unit(self._vectors.mean(axis=0, keepdims=True))[0]
            centrality = np.clip(self._vectors @ centroid, 0.0, 1.0)
            relevance[self._rows] = (
                CENTRALITY_WEIGHT * centrality + (1 - CENTRALITY_WEIGHT) * relevance[self._rows]
            )
        return relevance

    def similarity_to(self, chosen: int) -> npt.NDArray[np.float64]:
        """Per message: how much it says what message ``chosen`` says, in [0, 1]."""
        similarity = np.zeros(len(self._pool))
        words: Iterable[int] = range(len(self._pool))
        row = self._row_of.get(chosen)
        if row is not None:
            cosines = self._vectors @ self._vectors[row]
            similarity[self._rows] = np.clip(cosines, 0.0, 1.0)
            words = self._words_only
        mine = self.terms(chosen)
        for i in words:
            similarity[i] = _jaccard(mine, self.terms(i))
        return similarity


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass
class PeriodFacts:
    """What the builder reads of one period."""

    messages: list[PeriodMessage]
    talks: list[Conversation]
    answered: list[Answered]

    @classmethod
    def of(cls, messages: list[PeriodMessage]) -> PeriodFacts:
        talks = conversations(messages)
        return cls(messages, talks, answers(messages, talks))

    @cached_property
    def by_topic(self) -> dict[str, list[PeriodMessage]]:
        """Members' messages per topic (trending and new topics both read it)."""
        grouped: dict[str, list[PeriodMessage]] = defaultdict(list)
        for m in self.messages:
            if m.topic_id is not None and not m.is_bot:
                grouped[m.topic_id].append(m)
        return grouped

    def numbers(self, new_members: int) -> dict[str, float]:
        humans = [m for m in self.messages if not m.is_bot]
        questions = len(self.answered)
        answered = sum(1 for a in self.answered if a.answer is not None)
        return {
            "messages": len(humans),
            "active_members": len({m.author_id for m in humans}),
            "new_members": new_members,
            "questions": questions,
            "answered_questions": answered,
            "answer_rate_percent": round(100 * answered / questions, 1) if questions else 0.0,
        }


class LoreKeeper:
    """Builds a community digest of one period from its messages."""

    def __init__(self, *, section_size: int = SECTION_SIZE) -> None:
        self._size = section_size

    def build(
        self,
        *,
        community_id: str,
        community_name: str,
        timezone: str,
        start: datetime,
        end: datetime,
        current: list[PeriodMessage],
        previous: list[PeriodMessage],
        topics: dict[str, TopicInfo],
        new_members: list[MemberInfo],
        previous_new_members: int,
        generated_at: datetime,
    ) -> Digest:
        now = PeriodFacts.of(current)
        before = PeriodFacts.of(previous)
        numbers_now = now.numbers(len(new_members))
        numbers_before = before.numbers(previous_new_members)
        sections = [
            Section(kind=kind, title=SECTION_TITLES[kind], statements=statements)
            for kind, statements in (
                (SectionKind.HIGHLIGHTS, self._highlights(now)),
                (SectionKind.ANNOUNCEMENTS, self._announcements(now)),
                (SectionKind.TRENDING_TOPICS, self._trending(now, before, topics)),
                (SectionKind.NEW_TOPICS, self._new_topics(now, before, topics)),
                (SectionKind.TOP_QUESTIONS, self._top_questions(now)),
                (SectionKind.UNANSWERED_QUESTIONS, self._unanswered(now)),
                (SectionKind.NEW_MEMBERS, self._welcome(now, new_members)),
                (SectionKind.SHOUT_OUTS, self._shout_outs(now)),
            )
            if statements
        ]
        by_id = {m.message_id: m for m in current}
        cited = sorted(
            {i for section in sections for s in section.statements for i in s.message_ids},
            key=lambda i: (by_id[i].created_at, i),
        )
        zone = ZoneInfo(timezone)
        return Digest(
            digest_id=digest_id(community_id, start, end, zone),
            community_id=community_id,
            title=_title(community_name or community_id, start, end, zone),
            period_start=start,
            period_end=end,
            timezone=timezone,
            generated_at=generated_at,
            writer="extractive",
            summary=_summary(numbers_now, len({m.channel_id for m in current})),
            numbers=[
                KeyNumber(name=name, value=value, previous=numbers_before[name])
                for name, value in numbers_now.items()
            ],
            sections=sections,
            sources=[
                Cited(
                    message_id=i,
                    channel_name=by_id[i].channel_name,
                    author_name=by_id[i].author_name,
                    created_at=by_id[i].created_at,
                    excerpt=excerpt(by_id[i].text),
                )
                for i in cited
            ],
        )

    def _highlights(self, facts: PeriodFacts) -> list[Statement]:
        busy = [
            t
            for t in facts.talks
            if len(t.messages) >= 3
            and len(t.participants) >= 2
            and not t.root.is_bot
            and t.root.kind not in UNQUOTABLE
        ]
        busy.sort(key=lambda t: (-t.engagement, t.root.created_at))
        statements = []
        for talk in busy[: self._size]:
            replies = diverse(talk.messages[1:], k=2)
            statements.append(
                Statement(
                    text=(
                        f"#{talk.root.channel_name}: {talk.root.author_name} started "
                        f"“{excerpt(talk.root.text)}” — {len(talk.messages) - 1} replies from "
                        f"{len(talk.participants)} members."
                    ),
                    message_ids=[talk.root.message_id, *(m.message_id for m in replies)],
                )
            )
        return statements

    def _announcements(self, facts: PeriodFacts) -> list[Statement]:
        size = {t.root.message_id: len(t.messages) for t in facts.talks}
        # People's announcements: bots mostly repeat canned answers.
        picked = [
            m
            for m in facts.messages
            if not m.is_bot
            and m.kind not in UNQUOTABLE
            and (m.kind is MessageKind.ANNOUNCEMENT or DECISION.search(m.text))
        ]
        picked.sort(key=lambda m: (-(size.get(m.message_id, 1) + m.reactions), m.created_at))
        return [
            Statement(
                text=f"{m.author_name} in #{m.channel_name}: “{excerpt(m.text)}”",
                message_ids=[m.message_id],
            )
            for m in picked[: self._size]
        ]

    def _trending(
        self, now: PeriodFacts, before: PeriodFacts, topics: dict[str, TopicInfo]
    ) -> list[Statement]:
        current = now.by_topic
        previous = Counter({t: len(ms) for t, ms in before.by_topic.items()})
        rising = [
            (len(ms) - previous[t], t)
            for t, ms in current.items()
            if previous[t] > 0
            and len(ms) >= 3
            and len(ms) > previous[t]
            and t in topics
            and not topics[t].is_other
        ]
        rising.sort(key=lambda item: (-item[0], item[1]))
        statements = []
        for gain, topic_id in rising[: self._size]:
            count = len(current[topic_id])
            change = round(100 * gain / previous[topic_id])
            statements.append(
                Statement(
                    text=(
                        f"{_topic_name(topics[topic_id])}: {count} messages, "
                        f"+{change}% on the period before."
                    ),
                    message_ids=[m.message_id for m in diverse(current[topic_id])],
                )
            )
        return [s for s in statements if s.message_ids]

    def _new_topics(
        self, now: PeriodFacts, before: PeriodFacts, topics: dict[str, TopicInfo]
    ) -> list[Statement]:
        current = now.by_topic
        earlier = set(before.by_topic)
        fresh = [
            (len(ms), t)
            for t, ms in current.items()
            if t not in earlier and len(ms) >= 2 and t in topics and not topics[t].is_other
        ]
        fresh.sort(key=lambda item: (-item[0], item[1]))
        statements = [
            Statement(
                text=f"{_topic_name(topics[topic_id])}: {count} messages, new this period.",
                message_ids=[m.message_id for m in diverse(current[topic_id])],
            )
            for count, topic_id in fresh[: self._size]
        ]
        return [s for s in statements if s.message_ids]

    def _top_questions(self, facts: PeriodFacts) -> list[Statement]:
        # The questions that drew the most replies and reactions, among those asked of
        # everyone: follow-ups inside a conversation are that conversation's business.
        ranked = sorted(
            (a for a in facts.answered if a.opens_a_topic and a.question.kind not in UNQUOTABLE),
            key=lambda a: (-(a.replies + 2 * a.question.reactions), a.question.created_at),
        )
        statements = []
        for item in ranked[: self._size]:
            q = item.question
            asked = f"{q.author_name} asked in #{q.channel_name}: “{excerpt(q.text)}”"
            if item.answer is None:
                statements.append(
                    Statement(text=f"{asked} — not answered yet.", message_ids=[q.message_id])
                )
                continue
            a = item.answer
            where = "" if a.channel_id == q.channel_id else f" in #{a.channel_name}"
            statements.append(
                Statement(
                    text=f"{asked} — answered by {a.author_name}{where}: “{excerpt(a.text)}”",
                    message_ids=[q.message_id, a.message_id],
                )
            )
        return statements

    def _unanswered(self, facts: PeriodFacts) -> list[Statement]:
        waiting = [
            a.question for a in facts.answered if a.answer is None and open_question(a.question)
        ]
        # The longest waiting first: they are the ones at risk of being forgotten.
        return [
            Statement(
                text=(
                    f"{q.author_name} in #{q.channel_name}, "
                    f"{q.created_at:%b %d}: “{excerpt(q.text)}”"
                ),
                message_ids=[q.message_id],
            )
            for q in waiting[: self._size]
        ]

    def _welcome(self, facts: PeriodFacts, members: Iterable[MemberInfo]) -> list[Statement]:
        # Their first message that says something ("hi" and "ok" do not introduce anyone).
        first: dict[str, PeriodMessage] = {}
        for m in facts.messages:
            if m.kind not in UNQUOTABLE and len(m.text.split()) >= 5:
                first.setdefault(m.author_id, m)
        statements = []
        for member in members:
            message = first.get(member.member_id)
            if message is None:
                continue
            statements.append(
                Statement(
                    text=(
                        f"Welcome {member.name}! First words in #{message.channel_name}: "
                        f"“{excerpt(message.text)}”"
                    ),
                    message_ids=[message.message_id],
                )
            )
            if len(statements) == self._size:
                break
        return statements

    def _shout_outs(self, facts: PeriodFacts) -> list[Statement]:
        given: dict[str, list[PeriodMessage]] = defaultdict(list)
        for item in facts.answered:
            if item.answer is not None:
                given[item.answer.author_id].append(item.answer)
        helpers = sorted(given.values(), key=lambda answers: (-len(answers), answers[0].created_at))
        return [
            Statement(
                text=(
                    f"{answers[0].author_name} answered {len(answers)} questions"
                    f"{_channels_phrase(answers)}."
                ),
                message_ids=[m.message_id for m in diverse(answers)] or [answers[0].message_id],
            )
            for answers in helpers[:3]
            if len(answers) >= 2
        ]


def _channels_phrase(messages: Sequence[PeriodMessage]) -> str:
    channels = Counter(m.channel_name for m in messages)
    if len(channels) == 1:
        return f" in #{next(iter(channels))}"
    return " across " + ", ".join(f"#{c}" for c, _ in channels.most_common(3))


def _topic_name(topic: TopicInfo) -> str:
    return topic.name or "an unnamed topic"


def digest_id(community_id: str, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``community:first-day:last-day``, days in the community's time zone."""
    last = end - timedelta(seconds=1)
    return f"{community_id}:{start.astimezone(zone):%Y-%m-%d}:{last.astimezone(zone):%Y-%m-%d}"


def _title(community: str, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first = start.astimezone(zone)
    last = (end - timedelta(seconds=1)).astimezone(zone)
    if (end - start) == timedelta(days=7):
        return f"{community}: the week of {first:%B} {first.day}, {first.year}"
    return f"{community}: {first:%B} {first.day} to {last:%B} {last.day}, {last.year}"


def _summary(numbers: dict[str, float], channels: int) -> str:
    return (
        f"{int(numbers['messages']):,} messages from {int(numbers['active_members']):,} members "
        f"in {channels} channels; {int(numbers['questions']):,} questions, "
        f"{numbers['answer_rate_percent']:g}% answered; "
        f"{int(numbers['new_members']):,} new members."
    )
