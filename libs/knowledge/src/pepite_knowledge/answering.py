"""Answering a question from the knowledge base, with sources and a calibrated confidence.

The best entry's answer is given as written (nothing is made up) when the confidence
reaches the threshold; below it the reply says a human will follow up, and the
closest entries are still returned as sources.

The confidence is the retrieval score passed through a logistic curve fitted (Platt
scaling) on the older part of the sample community by ``bench/faq_eval.py``: it
estimates the chance that the entry given answers the question.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from pepite_embeddings import Embedder, Embedding
from pepite_knowledge.models import EntryChannel, KnowledgeEntry
from pepite_knowledge.repository import KnowledgeRepository
from pepite_knowledge.retrieval import KnowledgeIndex, Match

#: Below this confidence the question is left to a human.
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
#: The logistic curve from score to confidence (fitted by bench/faq_eval.py).
CALIBRATION_SLOPE = 14.0
CALIBRATION_INTERCEPT = -8.0
#: Sources returned with an answer.
SOURCES = 3
EXCERPT_CHARS = 200
FOLLOW_UP = "I am not sure I know the answer to this one: a member of the team will follow up."


def confidence_of(score: float) -> float:
    """The chance, estimated from past questions, that an entry of this score answers."""
    return 1.0 / (1.0 + math.exp(-(CALIBRATION_SLOPE * score + CALIBRATION_INTERCEPT)))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The text on one line, cut at a word near ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


@dataclass(frozen=True)
class Source:
    """An entry an answer rests on, and the messages it comes from."""

    entry_id: str
    question_message_id: str | None
    answer_message_id: str | None
    channel: EntryChannel | None
    question: str
    answer: str
    score: float

    @classmethod
    def of(cls, match: Match) -> Source:
        entry = match.entry
        return cls(
            entry_id=entry.entry_id,
            question_message_id=entry.question_message_id,
            answer_message_id=entry.answer_message_id,
            channel=entry.channel,
            question=excerpt(entry.question),
            answer=excerpt(entry.answer),
            score=round(match.score, 4),
        )


@dataclass(frozen=True)
class Reply:
    """What the knowledge base says to a question."""

    answered: bool
    answer: str
    confidence: float
    sources: tuple[Source, ...]
    #: The entry whose answer was given (also when unsure: the closest one).
    best: KnowledgeEntry | None


def reply_from(matches: list[Match], threshold: float) -> Reply:
    """The reply to give once the best entries are known."""
    if not matches:
        return Reply(False, FOLLOW_UP, 0.0, (), None)
    best = matches[0]
    confidence = confidence_of(best.score)
    answered = confidence >= threshold
    return Reply(
        answered=answered,
        answer=best.entry.answer if answered else FOLLOW_UP,
        confidence=round(confidence, 4),
        sources=tuple(Source.of(m) for m in matches),
        best=best.entry,
    )


class KnowledgeBase:
    """Answers questions from each community's entries, kept in memory.

    A community's index is built once from its stored entries and rebuilt only when the
    stored version moved (an entry was mined, curated or erased, in any process): a
    question costs one small version read, one embedding and one matrix product.
    """

    def __init__(
        self,
        repository: KnowledgeRepository,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    ) -> None:
        self._repository = repository
        self._embedder = embedder
        self._threshold = threshold
        self._indexes: dict[str, tuple[int, KnowledgeIndex]] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    async def embed(self, text: str) -> Embedding:
        """The text's embedding, computed in a thread (the model may load on first use)."""
        return await asyncio.to_thread(self._embedder.embed_one, text)

    async def index(self, community_id: str) -> KnowledgeIndex:
        """The community's index as stored now (reloaded only after a change)."""
        version = await self._repository.version(community_id)
        cached = self._indexes.get(community_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        lock = self._loading.setdefault(community_id, asyncio.Lock())
        async with lock:
            cached = self._indexes.get(community_id)
            if cached is not None and cached[0] >= version:
                return cached[1]
            stored = await self._repository.all_entries(community_id)
            built = await asyncio.to_thread(KnowledgeIndex, stored)
            self._indexes[community_id] = (version, built)
            return built

    async def search(self, community_id: str, question: str, *, k: int = SOURCES) -> list[Match]:
        vector = await self.embed(question)
        return (await self.index(community_id)).search(vector, question, k=k)

    async def ask(self, community_id: str, question: str) -> Reply:
        """The answer to ``question``, or word that a human will follow up."""
        return reply_from(await self.search(community_id, question), self._threshold)
