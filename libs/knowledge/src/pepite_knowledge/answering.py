"""Answering a question from the knowledge base, with sources and a calibrated confidence.

The best entry's answer is given as written (nothing is made up) when the confidence
reaches the threshold; below it the reply says a human will follow up, and the
closest entries are still returned as sources.

The confidence is the retrieval score passed through a logistic curve (Platt scaling):
it estimates the chance that the entry given answers the question. When the best
entry was mined, the curve is the community's own, fitted on its history by
``pepite knowledge calibrate`` (see :mod:`pepite_knowledge.calibration`), if one is
stored. Curated entries always use the default curve: the fit measures how often a
mined answer (a passing chat reply) answers a new question; an answer the team wrote
for that question is another kind of evidence, and a community whose mined answers
rarely repeat (the fitted curve then never answers) must still get its team's answers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pepite_embeddings import Embedder, Embedding
from pepite_knowledge.calibration import (
    CALIBRATION,
    Calibration,
    CalibrationRepository,
    CommunityCalibration,
)
from pepite_knowledge.models import EntryChannel, EntryOrigin, KnowledgeEntry
from pepite_knowledge.repository import EntryVectors, KnowledgeRepository, embed_entries
from pepite_knowledge.retrieval import KnowledgeIndex, Match

#: Below this confidence the question is left to a human.
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
#: Sources returned with an answer.
SOURCES = 3
EXCERPT_CHARS = 200
FOLLOW_UP = "I am not sure I know the answer to this one: a member of the team will follow up."


#: Which curve gave a reply's confidence.
CurveUsed = Literal["community", "default"]


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
    origin: EntryOrigin
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
            origin=entry.origin,
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
    #: The community's fitted curve, or the default one.
    calibration: CurveUsed = "default"


def curve_for(
    entry: KnowledgeEntry, default: Calibration, community: Calibration | None
) -> tuple[Calibration, CurveUsed]:
    """The curve for an entry: the community's for mined entries when fitted (see above)."""
    if community is not None and entry.origin is EntryOrigin.MINED:
        return community, "community"
    return default, "default"


def reply_from(
    matches: list[Match],
    threshold: float,
    calibration: Calibration = CALIBRATION,
    community: Calibration | None = None,
) -> Reply:
    """The reply to give once the best entries are known.

    Args:
        matches: The best entries, best first.
        threshold: Confidence needed to answer.
        calibration: The default curve (curated entries, communities never fitted).
        community: The community's fitted curve, for mined entries; None when not fitted.
    """
    if not matches:
        return Reply(False, FOLLOW_UP, 0.0, (), None)
    best = matches[0]
    curve, used = curve_for(best.entry, calibration, community)
    confidence = curve.confidence(best.score)
    answered = confidence >= threshold
    return Reply(
        answered=answered,
        answer=best.entry.answer if answered else FOLLOW_UP,
        confidence=round(confidence, 4),
        sources=tuple(Source.of(m) for m in matches),
        best=best.entry,
        calibration=used,
    )


class KnowledgeBase:
    """Answers questions from each community's entries, kept in memory.

    A community's index is built once from its stored entries and rebuilt only when the
    stored version moved (an entry was mined, curated or erased, in any process): a
    question costs one small version read, one embedding and one matrix product. The
    community's fitted curve is cached the same way, keyed by when it was fitted.
    """

    def __init__(
        self,
        repository: KnowledgeRepository,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        calibration: Calibration = CALIBRATION,
        calibrations: CalibrationRepository | None = None,
    ) -> None:
        """Answer from ``repository``'s entries.

        Args:
            repository: The entries.
            embedder: Embeds questions (and entries written through the API).
            threshold: Confidence needed to answer.
            calibration: The default curve.
            calibrations: The communities' fitted curves; None uses the default for all.
        """
        self._repository = repository
        self._embedder = embedder
        self._threshold = threshold
        self._calibration = calibration
        self._calibrations = calibrations
        self._indexes: dict[str, tuple[int, KnowledgeIndex]] = {}
        self._curves: dict[str, tuple[datetime | None, Calibration | None]] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    async def embed(self, text: str) -> Embedding:
        """The text's embedding, computed in a thread (the model may load on first use)."""
        return await asyncio.to_thread(self._embedder.embed_one, text)

    async def warm_up(self) -> None:
        """Load the model now, so that the first question is not the one that waits."""
        await self.embed("warm up")

    async def embed_entry(self, entry: KnowledgeEntry) -> EntryVectors:
        """The embeddings an entry is stored with, computed in a thread."""
        (vectors,) = await asyncio.to_thread(embed_entries, self._embedder, [entry])
        return vectors

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

    async def calibration(self, community_id: str) -> Calibration | None:
        """The community's fitted curve as stored now; None when it uses the default.

        Only the curve's ``fitted_at`` is read unless it changed since the last question.
        """
        if self._calibrations is None:
            return None
        fitted_at = await self._calibrations.fitted_at(community_id)
        cached = self._curves.get(community_id)
        if cached is not None and cached[0] == fitted_at:
            return cached[1]
        stored: CommunityCalibration | None = None
        if fitted_at is not None:
            stored = await self._calibrations.get(community_id)
        curve = stored.curve if stored is not None else None
        self._curves[community_id] = (stored.fitted_at if stored else None, curve)
        return curve

    async def search(self, community_id: str, question: str, *, k: int = SOURCES) -> list[Match]:
        vector = await self.embed(question)
        return (await self.index(community_id)).search(vector, question, k=k)

    async def ask(self, community_id: str, question: str) -> Reply:
        """The answer to ``question``, or word that a human will follow up."""
        matches = await self.search(community_id, question)
        community = await self.calibration(community_id)
        return reply_from(matches, self._threshold, self._calibration, community)
