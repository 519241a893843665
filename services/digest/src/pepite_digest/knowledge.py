"""FAQ knowledge mined from the messages: each answered question and its accepted answer.

Questions and the replies that answer them are found as the Lore Keeper finds them
(:func:`pepite_digest.lore.answers` over :func:`pepite_digest.lore.conversations`).
Among the replies a question drew, the accepted answer is the one the asker thanked
("thanks nick", a thanking reply to it, or a "thanks" right after it), then the most
reacted to, then the one the analyzer calls an answer, then the Lore Keeper's pick.
Bots, greetings, thanks and one-word replies are never answers.

Mining runs in the background, incrementally: each run reads the messages written
since the previous one (plus a day before, so a question asked just before the last
run gets the answers that came after it) and upserts entries keyed by their question,
so running twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pepite_contracts import ConsentFlags, MemberErasure, MessageKind
from pepite_digest.knowledge_repository import KnowledgeRunRepository
from pepite_digest.lore import ADDRESSED, ANSWER_WINDOW, UNQUOTABLE, answers, conversations
from pepite_digest.repository import DigestRepository, PeriodMessage
from pepite_embeddings import Embedder
from pepite_kit import Database
from pepite_knowledge import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    EntryChannel,
    EntryOrigin,
    EntrySignals,
    KnowledgeEntry,
    KnowledgeRepository,
    embed_entries,
    mined_entry_id,
)

logger = logging.getLogger(__name__)

#: "thanks", "thx", "ty", "that worked"… said by the asker after an answer.
THANKS = re.compile(
    r"\b(thanks?|thank you|thx|tnx|ty|tyvm|cheers|merci|appreciated?|"
    r"(?:that|it) (?:worked|works)|works now|solved|fixed it)\b",
    re.IGNORECASE,
)
#: A thanks is short; a long message with "thanks" in it is about something else.
THANKS_MAX_WORDS = 12
#: An unaddressed "thanks" credits the latest reply this soon before it.
THANKS_WINDOW = timedelta(minutes=15)
MIN_ANSWER_WORDS = 3
#: Replies that never count as answers, whatever else they have.
NOT_ANSWERS = UNQUOTABLE | {MessageKind.GRATITUDE, MessageKind.SCAM}
#: Each run re-reads this much before where the last one stopped.
LOOKBACK = timedelta(days=1)
#: Messages are read this many days at a time.
BATCH = timedelta(days=7)
#: Entries embedded per model call. A week of a busy community mines hundreds of pairs;
#: embedding them in one thread call would hold a stopping service for as long (a
#: thread cannot be cancelled), so they go a chunk at a time.
EMBED_CHUNK = 64


@dataclass(frozen=True)
class MinedPair:
    """A question and the answer accepted for it."""

    question: PeriodMessage
    answer: PeriodMessage
    question_text: str
    answer_text: str
    signals: EntrySignals

    def entry(self, community_id: str, now: datetime) -> KnowledgeEntry:
        return KnowledgeEntry(
            entry_id=mined_entry_id(self.question.message_id),
            community_id=community_id,
            origin=EntryOrigin.MINED,
            question=self.question_text[:MAX_QUESTION_CHARS],
            answer=self.answer_text[:MAX_ANSWER_CHARS],
            question_message_id=self.question.message_id,
            answer_message_id=self.answer.message_id,
            question_author_id=self.question.author_id,
            answer_author_id=self.answer.author_id,
            channel=EntryChannel(id=self.question.channel_id, name=self.question.channel_name),
            signals=self.signals,
            created_at=now,
            updated_at=now,
        )


def unaddressed(text: str) -> str:
    """The text without a leading "nick: " (chat habit), on one line."""
    return " ".join(ADDRESSED.sub("", text, count=1).split())


def _is_thanks(message: PeriodMessage) -> bool:
    return (
        message.kind is MessageKind.GRATITUDE or THANKS.search(message.text) is not None
    ) and len(message.text.split()) <= THANKS_MAX_WORDS


def _names(message: PeriodMessage, author_name: str) -> bool:
    """Whether ``message`` addresses ``author_name`` by name."""
    return re.search(rf"(?<!\w){re.escape(author_name)}(?!\w)", message.text, re.I) is not None


@dataclass
class _ChannelLog:
    """A channel's messages by kind of use: thanks per asker, mentions per member."""

    thanks: dict[str, list[PeriodMessage]]
    mentioning: dict[str, list[PeriodMessage]]


def _logs(messages: Sequence[PeriodMessage]) -> dict[str, _ChannelLog]:
    logs: dict[str, _ChannelLog] = defaultdict(
        lambda: _ChannelLog(defaultdict(list), defaultdict(list))
    )
    for message in messages:
        if message.is_bot:
            continue
        log = logs[message.channel_id]
        if _is_thanks(message):
            log.thanks[message.author_id].append(message)
        for member_id in message.mentioned:
            log.mentioning[member_id].append(message)
    return logs


def _thanked(
    question: PeriodMessage, candidates: Sequence[PeriodMessage], log: _ChannelLog
) -> set[str]:
    """The replies the asker thanked: by reply, mention or name, else the one just before."""
    credited: set[str] = set()
    for thanks in log.thanks.get(question.author_id, ()):
        earlier = [
            c
            for c in candidates
            if c.created_at < thanks.created_at <= c.created_at + ANSWER_WINDOW
        ]
        named = [
            c
            for c in earlier
            if thanks.reply_to_id == c.message_id
            or c.author_id in thanks.mentioned
            or _names(thanks, c.author_name)
        ]
        if named:
            credited.update(c.message_id for c in named)
        elif earlier and not thanks.mentioned and thanks.reply_to_id is None:
            latest = max(earlier, key=lambda c: c.created_at)
            if thanks.created_at - latest.created_at <= THANKS_WINDOW:
                credited.add(latest.message_id)
    return credited


def _is_answer_text(message: PeriodMessage) -> bool:
    text = unaddressed(message.text)
    return (
        message.kind not in NOT_ANSWERS
        and len(text.split()) >= MIN_ANSWER_WORDS
        and any(c.isalpha() for c in text)
    )


def mine_pairs(messages: Sequence[PeriodMessage]) -> list[MinedPair]:
    """Every question of ``messages`` that got an answer, with its accepted answer."""
    talks = conversations(messages)
    conversation_of = {m.message_id: talk for talk in talks for m in talk.messages}
    logs = _logs(messages)
    pairs = []
    for found in answers(messages, talks):
        question = found.question
        question_text = unaddressed(question.text)
        # A FAQ keeps questions asked of everyone in words that stand alone, not a
        # helper's "have you tried rebooting?" to the person they help.
        if found.answer is None or not found.opens_a_topic:
            continue
        log = logs[question.channel_id]

        def replies_to_asker(m: PeriodMessage, q: PeriodMessage = question) -> bool:
            return (
                q.created_at < m.created_at <= q.created_at + ANSWER_WINDOW
                and m.author_id != q.author_id
                and not m.is_bot
            )

        pool = {found.answer.message_id: found.answer}
        for m in conversation_of[question.message_id].messages:
            if replies_to_asker(m):
                pool[m.message_id] = m
        for m in log.mentioning.get(question.author_id, ()):
            if replies_to_asker(m):
                pool[m.message_id] = m
        candidates = [m for m in pool.values() if _is_answer_text(m)]
        if not candidates:
            continue
        thanked = _thanked(question, candidates, log)
        best = max(
            candidates,
            key=lambda m: (
                m.message_id in thanked,
                m.kind is not MessageKind.QUESTION,
                m.reactions,
                m.kind is MessageKind.ANSWER,
                m.message_id == found.answer.message_id if found.answer else False,
                -m.created_at.timestamp(),
            ),
        )
        if best.kind is MessageKind.QUESTION and best.message_id not in thanked:
            # "Which version?" asks for more; it does not answer.
            continue
        answer_text = unaddressed(best.text)
        pairs.append(
            MinedPair(
                question=question,
                answer=best,
                question_text=question_text,
                answer_text=answer_text,
                signals=EntrySignals(
                    thanked=best.message_id in thanked,
                    reactions=best.reactions,
                    analyzer_answer=best.kind is MessageKind.ANSWER,
                    answer_length=len(answer_text.split()),
                ),
            )
        )
    return pairs


@dataclass(frozen=True)
class BuildResult:
    pairs: int
    written: int
    until: datetime


class KnowledgeBuilder:
    """Mines communities' messages into their knowledge bases."""

    def __init__(self, db: Database, embedder: Embedder, *, poll_s: float = 300.0) -> None:
        self._messages = DigestRepository(db)
        self._runs = KnowledgeRunRepository(db)
        self._entries = KnowledgeRepository(db)
        self._embedder = embedder
        self._poll_s = poll_s

    async def build(
        self,
        community_id: str,
        *,
        until: datetime,
        since: datetime | None = None,
        progress: Callable[[datetime, int], None] | None = None,
    ) -> BuildResult:
        """Mine the messages in ``[since, until)`` (from the first when ``since`` is None)."""
        start = since or await self._runs.first_message_at(community_id)
        pairs = written = 0
        while start is not None and start < until:
            end = min(start + BATCH, until)
            # Read a day before the batch too: its first questions' conversations
            # started earlier, and the batch before could not see their answers.
            messages = await self._messages.messages(community_id, start - LOOKBACK, end)
            mined = mine_pairs(messages)
            pairs += len(mined)
            written += await self._store(community_id, mined)
            if progress is not None:
                progress(end, pairs)
            start = end
        return BuildResult(pairs, written, until)

    async def _store(self, community_id: str, mined: Sequence[MinedPair]) -> int:
        if not mined:
            return 0
        now = datetime.now(UTC)
        entries = [p.entry(community_id, now) for p in mined]
        vectors = []
        for first in range(0, len(entries), EMBED_CHUNK):
            chunk = entries[first : first + EMBED_CHUNK]
            vectors.extend(await asyncio.to_thread(embed_entries, self._embedder, chunk))
        return await self._entries.upsert(list(zip(entries, vectors, strict=True)))

    async def run_once(self, now: datetime) -> dict[str, int]:
        """Mine what each community said since the last run; entries written per community."""
        written: dict[str, int] = {}
        for community_id in await self._runs.communities():
            last = await self._runs.mined_until(community_id)
            if last is not None and not await self._runs.has_messages_since(community_id, last):
                continue
            try:
                result = await self.build(community_id, since=last, until=now)
            except Exception:
                logger.exception("knowledge mining failed", extra={"community": community_id})
                continue
            await self._runs.record(community_id, now, result.written)
            written[community_id] = result.written
        return written

    async def run_forever(self) -> None:
        while True:
            try:
                written = await self.run_once(datetime.now(UTC))
                if any(written.values()):
                    logger.info("knowledge mined", extra={"written": written})
            except Exception:
                # The next look tries again.
                logger.exception("could not mine knowledge")
            await asyncio.sleep(self._poll_s)


class KnowledgePrivacy:
    """The knowledge base as a store of member data.

    Entries quote what members wrote in the community's channels, which is not a
    per-member feature behind a consent flag; an erasure deletes every mined entry
    whose question or answer the member wrote.
    """

    def __init__(self, db: Database) -> None:
        self._entries = KnowledgeRepository(db)

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        """No consent flag governs community FAQ entries: nothing to delete."""

    async def erase(self, erasure: MemberErasure) -> None:
        deleted = await self._entries.delete_by_member(erasure.community_id, erasure.member_id)
        if deleted:
            logger.info("knowledge entries erased", extra={"entries": deleted})
