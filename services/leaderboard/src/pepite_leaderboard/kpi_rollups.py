"""What each analyzed message counts for in the KPI rollups, as pure functions.

Counters: a members' message, counted once, adds one message to four activity
documents (its UTC day and its month, for its channel and for the whole community):
``messages``, ``members.<author number>`` and, on days, ``hours.<UTC hour>``.

First responses (documented in docs/kpis.md): a question is a message the analyzer
classed ``question`` from a member (not a bot). Its first response is the earliest later
message of another member that

1. replies to it (``reply_to_id``), or
2. is in the same thread, when the question is in a thread, or
3. is classed ``answer``, replies to nothing, is in the same channel outside threads and
   within the answer window (default 2 hours) after the question: it responds to the
   latest question of another member there still without a response (chat habit: the
   answer follows the question it answers).

Bots' messages never respond. A reply seen before its question (out of order) is kept
on the question's document and applied when the question arrives.

Joins: each member is listed (by number) in the ``kpi_joins`` document of the calendar
month it joined, and moved when its join moves to an earlier month (a ``member.joined``
older than its first message, a message consumed late).

Response histograms: a question counts once in four ``kpi_responses`` documents (the
UTC day and month it was asked, its channel and the whole community): ``asked`` and,
once answered, ``n.<bucket>`` and ``ms.<bucket>`` (see
:func:`pepite_reports.kpis.response_bucket`). A question whose state changes (a response
found, an earlier response, re-analyzed into another kind) moves them by the difference
between its stored and its new state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pepite_contracts import AnalyzedMessage, MessageKind
from pepite_reports.kpis import (
    Grain,
    activity_id,
    day_start,
    joins_id,
    month_start,
    response_bucket,
    response_ms,
)

DEFAULT_ANSWER_WINDOW = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class KpiMessage:
    """What the KPIs need of one analyzed message."""

    message_id: str
    community_id: str
    channel_id: str
    thread_id: str | None
    reply_to_id: str | None
    author_id: str
    is_bot: bool
    #: UTC.
    created_at: datetime
    kind: MessageKind

    @classmethod
    def from_analyzed(cls, message: AnalyzedMessage) -> KpiMessage:
        return cls(
            message_id=message.message_id,
            community_id=message.community_id,
            channel_id=message.channel.id,
            thread_id=message.thread.id if message.thread else None,
            reply_to_id=message.reply_to_id,
            author_id=message.author.id,
            is_bot=message.author.is_bot,
            created_at=message.created_at.astimezone(UTC),
            kind=message.analysis.kind,
        )

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> KpiMessage:
        """From a stored ``messages`` document that has an ``analysis``."""
        created = doc["created_at"]
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        thread = doc.get("thread")
        return cls(
            message_id=doc["_id"],
            community_id=doc["community_id"],
            channel_id=doc["channel"]["id"],
            thread_id=thread["id"] if thread else None,
            reply_to_id=doc.get("reply_to_id"),
            author_id=doc["author"]["id"],
            is_bot=bool(doc["author"].get("is_bot")),
            created_at=created.astimezone(UTC),
            kind=MessageKind(doc["analysis"]["kind"]),
        )

    @property
    def day(self) -> date:
        return self.created_at.date()

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.created_at, self.message_id)


def _rollup_update(
    community_id: str,
    grain: Grain,
    start: date,
    channel_id: str | None,
    increments: Mapping[str, int | float],
) -> dict[str, Any]:
    """The ``$inc``/``$setOnInsert`` update of one day or month document of a rollup."""
    return {
        "$inc": dict(increments),
        "$setOnInsert": {
            "community_id": community_id,
            "grain": grain.value,
            "start": day_start(start),
            "channel_id": channel_id,
        },
    }


@dataclass
class ActivityIncrement:
    """How one activity document moves."""

    community_id: str
    grain: Grain
    start: date
    channel_id: str | None
    messages: int = 0
    members: dict[int, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)

    @property
    def document_id(self) -> str:
        return activity_id(self.community_id, self.grain, self.start, self.channel_id)

    def update(self) -> dict[str, Any]:
        """The ``$inc``/``$setOnInsert`` update that applies it."""
        increments: dict[str, int] = {"messages": self.messages}
        increments.update({f"members.{idx}": n for idx, n in self.members.items()})
        increments.update({f"hours.{hour}": n for hour, n in self.hours.items()})
        return _rollup_update(
            self.community_id, self.grain, self.start, self.channel_id, increments
        )


def activity_increments(
    messages: Iterable[KpiMessage], numbers: Mapping[str, int]
) -> list[ActivityIncrement]:
    """The counter changes of members' messages counted for the first time.

    Args:
        messages: New (never counted) messages of members; bots must be left out.
        numbers: Member number of each author id.
    """
    found: dict[tuple[Grain, date, str | None], ActivityIncrement] = {}
    for message in messages:
        author = numbers[message.author_id]
        for grain, start in ((Grain.DAY, message.day), (Grain.MONTH, month_start(message.day))):
            for channel in (None, message.channel_id):
                increment = found.get((grain, start, channel))
                if increment is None:
                    increment = ActivityIncrement(message.community_id, grain, start, channel)
                    found[(grain, start, channel)] = increment
                increment.messages += 1
                increment.members[author] = increment.members.get(author, 0) + 1
                if grain is Grain.DAY:
                    hour = message.created_at.hour
                    increment.hours[hour] = increment.hours.get(hour, 0) + 1
    return list(found.values())


@dataclass(frozen=True, slots=True)
class JoinListing:
    """A member's join and the month it is listed under in ``kpi_joins``."""

    member: int
    #: UTC; ``None`` while neither a message nor a join event was seen.
    joined_at: datetime | None
    #: Midnight UTC of the month's first day; ``None`` when listed nowhere.
    listed_month: datetime | None


@dataclass
class JoinsUpdate:
    """Members added to and taken from one month's listing."""

    community_id: str
    month: date
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    @property
    def document_id(self) -> str:
        return joins_id(self.community_id, self.month)

    def updates(self) -> list[dict[str, Any]]:
        """The updates that apply it: adding and taking away are separate updates, since
        one update may not both ``$addToSet`` and ``$pull`` the same array."""
        insert = {"community_id": self.community_id, "start": day_start(self.month)}
        found: list[dict[str, Any]] = []
        if self.added:
            found.append(
                {
                    "$addToSet": {"members": {"$each": sorted(self.added)}},
                    "$setOnInsert": insert,
                }
            )
        if self.removed:
            found.append({"$pull": {"members": {"$in": sorted(self.removed)}}})
        return found


@dataclass(frozen=True, slots=True)
class JoinsMoves:
    """What listing members under their join month changes."""

    #: The month each moved member is now listed under, by member number.
    listed: dict[int, datetime]
    updates: list[JoinsUpdate]


def joins_moves(community_id: str, members: Iterable[JoinListing]) -> JoinsMoves:
    """List each member under its join month, taking it from the month it was under."""
    listed: dict[int, datetime] = {}
    updates: dict[date, JoinsUpdate] = {}

    def change(month: date) -> JoinsUpdate:
        if month not in updates:
            updates[month] = JoinsUpdate(community_id, month)
        return updates[month]

    for member in members:
        if member.joined_at is None:
            continue
        target = day_start(month_start(member.joined_at.astimezone(UTC).date()))
        current = member.listed_month
        if current is not None and current.astimezone(UTC) == target:
            continue
        if current is not None:
            change(current.astimezone(UTC).date()).removed.append(member.member)
        change(target.date()).added.append(member.member)
        listed[member.member] = target
    return JoinsMoves(listed, list(updates.values()))


@dataclass(frozen=True, slots=True)
class ResponseFact:
    """What one question adds to the response histograms: where, when, its wait."""

    community_id: str
    channel_id: str | None
    day: date
    #: First-response time in whole milliseconds; ``None`` while unanswered.
    wait_ms: int | None

    @classmethod
    def of(
        cls,
        community_id: str,
        *,
        is_question: bool,
        asked_at: datetime | None,
        channel_id: str | None,
        response_s: float | None,
    ) -> ResponseFact | None:
        """The fact of a stored or computed question state; ``None`` if it counts nowhere."""
        if not is_question or asked_at is None:
            return None
        return cls(
            community_id,
            channel_id,
            asked_at.astimezone(UTC).date(),
            None if response_s is None else response_ms(response_s),
        )


@dataclass
class ResponseIncrement:
    """How one response-histogram document moves."""

    community_id: str
    grain: Grain
    start: date
    channel_id: str | None
    asked: int = 0
    #: Per bucket: [answered questions, summed milliseconds].
    waits: dict[int, list[int]] = field(default_factory=dict)

    @property
    def document_id(self) -> str:
        return activity_id(self.community_id, self.grain, self.start, self.channel_id)

    @property
    def empty(self) -> bool:
        return self.asked == 0 and all(n == 0 and ms == 0 for n, ms in self.waits.values())

    def update(self) -> dict[str, Any]:
        """The ``$inc``/``$setOnInsert`` update that applies it."""
        increments: dict[str, int] = {}
        if self.asked:
            increments["asked"] = self.asked
        for bucket, (count, ms) in self.waits.items():
            if count or ms:
                increments[f"n.{bucket}"] = count
                increments[f"ms.{bucket}"] = ms
        return _rollup_update(
            self.community_id, self.grain, self.start, self.channel_id, increments
        )


def response_increments(
    changes: Iterable[tuple[ResponseFact | None, ResponseFact | None]],
) -> list[ResponseIncrement]:
    """The histogram changes of questions moving from a stored state to a new one.

    Args:
        changes: ``(before, after)`` per question; ``None`` where it counts nowhere
            (not stored yet, not a question).

    Returns:
        The non-empty increments, at most four documents per distinct day and channel.
    """
    found: dict[tuple[Grain, date, str | None], ResponseIncrement] = {}

    def move(fact: ResponseFact, sign: int) -> None:
        scopes = (None,) if fact.channel_id is None else (None, fact.channel_id)
        for grain, start in ((Grain.DAY, fact.day), (Grain.MONTH, month_start(fact.day))):
            for channel in scopes:
                increment = found.get((grain, start, channel))
                if increment is None:
                    increment = ResponseIncrement(fact.community_id, grain, start, channel)
                    found[(grain, start, channel)] = increment
                increment.asked += sign
                if fact.wait_ms is not None:
                    bucket = increment.waits.setdefault(response_bucket(fact.wait_ms), [0, 0])
                    bucket[0] += sign
                    bucket[1] += sign * fact.wait_ms

    for before, after in changes:
        if before == after:
            continue
        if before is not None:
            move(before, -1)
        if after is not None:
            move(after, 1)
    return [increment for increment in found.values() if not increment.empty]


@dataclass(frozen=True, slots=True)
class EarlyReply:
    """A reply seen before the message it replies to."""

    member: int
    at: datetime
    message_id: str


@dataclass
class QuestionState:
    """A question (or a message replied to before it was seen) and its first response."""

    question_id: str
    community_id: str
    channel_id: str | None = None
    thread_id: str | None = None
    asked_at: datetime | None = None
    asker: int | None = None
    is_question: bool = False
    response_at: datetime | None = None
    response_id: str | None = None
    early: list[EarlyReply] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        """The message itself was seen (not only replies to it)."""
        return self.asked_at is not None

    def open_for(self, message_id: str) -> bool:
        """Without a response, or responded to by this very message (a replay)."""
        return self.response_id is None or self.response_id == message_id

    def respond(self, member: int, at: datetime, message_id: str) -> bool:
        """Take a member's message as a response if it is the earliest valid one."""
        if self.asked_at is None or member == self.asker or at <= self.asked_at:
            return False
        if self.response_at is not None and (self.response_at, self.response_id or "") <= (
            at,
            message_id,
        ):
            return False
        self.response_at, self.response_id = at, message_id
        return True

    @property
    def response_s(self) -> float | None:
        if self.response_at is None or self.asked_at is None:
            return None
        return (self.response_at - self.asked_at).total_seconds()


class QuestionTracker:
    """Follows questions and their first responses through a batch of messages.

    Args:
        known: The stored questions the batch may touch (see the repository).
        answer_window: How long after a question an ``answer`` outside any reply chain
            still responds to it.
        not_questions: Messages already seen that are no questions: replies to them are
            not kept for later.
    """

    def __init__(
        self,
        known: Iterable[QuestionState],
        *,
        answer_window: timedelta = DEFAULT_ANSWER_WINDOW,
        not_questions: Iterable[str] = (),
    ) -> None:
        self._known = {q.question_id: q for q in known}
        self._not_questions = set(not_questions)
        self._window = answer_window
        self._changed: dict[str, QuestionState] = {}
        #: Replies to messages not seen yet, to add to their documents.
        self._early: dict[str, list[EarlyReply]] = {}

    @property
    def changed(self) -> list[QuestionState]:
        return list(self._changed.values())

    @property
    def early(self) -> dict[str, list[EarlyReply]]:
        """Replies to messages still unseen after the batch, by replied message id."""
        return {
            message_id: replies
            for message_id, replies in self._early.items()
            if not self._known[message_id].seen
        }

    def add(self, message: KpiMessage, member: int) -> None:
        """Account for one member's message (messages must come in time order)."""
        self._as_question(message, member)
        if message.reply_to_id is not None:
            target = self._known.get(message.reply_to_id)
            if target is not None and target.seen:
                self._respond(target, message, member)
            elif target is None and message.reply_to_id in self._not_questions:
                pass
            else:
                reply = EarlyReply(member, message.created_at, message.message_id)
                self._early.setdefault(message.reply_to_id, []).append(reply)
                if target is None:
                    target = QuestionState(message.reply_to_id, message.community_id)
                    self._known[target.question_id] = target
                if reply not in target.early:
                    target.early.append(reply)
        if message.thread_id is not None:
            for question in self._known.values():
                if question.is_question and question.thread_id == message.thread_id:
                    self._respond(question, message, member)
        elif message.kind is MessageKind.ANSWER and message.reply_to_id is None:
            target = self._latest_open_question(message, member)
            if target is not None:
                self._respond(target, message, member)

    def _as_question(self, message: KpiMessage, member: int) -> None:
        current = self._known.get(message.message_id)
        is_question = message.kind is MessageKind.QUESTION
        if current is None:
            if not is_question:
                return
            current = QuestionState(message.message_id, message.community_id)
            self._known[current.question_id] = current
        before = (current.is_question, current.response_at, current.asked_at)
        current.channel_id = message.channel_id
        current.thread_id = message.thread_id
        current.asked_at = message.created_at
        current.asker = member
        current.is_question = is_question
        resolved = bool(current.early)
        for reply in current.early:
            current.respond(reply.member, reply.at, reply.message_id)
        # Once the question is seen, its early replies live on as its response.
        current.early = []
        if resolved or (current.is_question, current.response_at, current.asked_at) != before:
            self._changed[current.question_id] = current

    def _respond(self, question: QuestionState, message: KpiMessage, member: int) -> None:
        if question.respond(member, message.created_at, message.message_id):
            self._changed[question.question_id] = question

    def _latest_open_question(self, message: KpiMessage, member: int) -> QuestionState | None:
        best: QuestionState | None = None
        for question in self._known.values():
            if (
                question.is_question
                and question.asked_at is not None
                and question.channel_id == message.channel_id
                and question.thread_id is None
                and question.asker != member
                and question.asked_at < message.created_at
                and message.created_at - question.asked_at <= self._window
                and question.open_for(message.message_id)
                and (
                    best is None
                    or (question.asked_at, question.question_id)
                    > (
                        best.asked_at or question.asked_at,
                        best.question_id,
                    )
                )
            ):
                best = question
        return best
