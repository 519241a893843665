"""Fitting a community's FAQ confidence curve on its own history.

How often the best entry found for a new question is right depends on the community:
on the sample IRC community the right entries score 0.31-0.40 and a hand-set curve with
even odds at 0.4 answers wrongly almost every time. So the curve is fitted on the
community's past, split in time:

1. The days (UTC) in order: the first 75% are the knowledge, the rest the questions.
   Question → accepted answer pairs are mined from the knowledge days with the miner
   the service uses (:func:`pepite_digest.knowledge.mine_pairs`) and indexed in memory
   (the community's real knowledge base is not touched).
2. Every question of the later days that got an answer is asked; its best entry is
   *correct* when that entry's answer says what the real answer said, judged without
   labels (:class:`Judge`): the two answers' embeddings have a cosine of at least 0.7,
   or both name the same concrete thing (URL, file path, option, package, sudo command).
3. A logistic curve from score to P(correct) is fitted (Platt scaling,
   :func:`fit_platt`), and the recommended threshold is the lowest confidence whose
   answers were right at least the target precision of the time.

With too little evidence (fewer than :data:`MIN_QUESTIONS` questions or
:data:`MIN_CORRECT` correct ones) nothing is fitted (:class:`NotEnoughEvidenceError`): a curve
fitted on three points says nothing, and the community keeps the default curve (or the
curve it had) rather than one that would never, or always, answer by accident.
``bench/faq_eval.py`` uses the same pieces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from pepite_digest.knowledge import LOOKBACK, MinedPair, mine_pairs
from pepite_digest.repository import PeriodMessage
from pepite_embeddings import Embedder
from pepite_knowledge import (
    Calibration,
    KnowledgeIndex,
    StoredEntry,
    embed_entries,
)

#: Share of the days used as knowledge; the rest are asked.
KNOWLEDGE_SHARE = 0.75
#: Two answers whose embeddings are this close say the same thing.
ANSWER_COSINE = 0.7
DEFAULT_TARGET_PRECISION = 0.5
#: Least evidence a curve is fitted on.
MIN_QUESTIONS = 50
MIN_CORRECT = 3

JUDGE = (
    "a retrieved entry is correct when its answer and the real answer have an embedding "
    "cosine >= {cosine} (all-MiniLM-L6-v2), or both name the same URL, file path, "
    "command-line option, installed package or sudo command"
)
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.])(?:/[\w.+-]+){2,}")
_OPTION = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]{2,}")
_INSTALL = re.compile(r"\binstall\s+((?:[\w.+-]+\s*){1,4})", re.IGNORECASE)
_SUDO = re.compile(r"\bsudo\s+([\w.-]+(?:\s+[\w.-]+)?)", re.IGNORECASE)
_GENERIC = frozenset({"apt-get install", "apt install", "aptitude install", "-y", "--help"})


def artifacts(text: str) -> set[str]:
    """Concrete things an answer names: two answers naming one say the same thing."""
    found = {m.rstrip(".,;:)").lower() for m in _URL.findall(text)}
    found |= {m.lower() for m in _PATH.findall(text)}
    found |= {m.lower() for m in _OPTION.findall(text)}
    for packages in _INSTALL.findall(text):
        found |= {f"pkg:{p.lower()}" for p in packages.split() if p not in {"-y", "the", "a"}}
    found |= {f"sudo:{m.lower()}" for m in _SUDO.findall(text)}
    return found - _GENERIC


class Judge:
    """Says whether two answers are equivalent, from embeddings and named artifacts."""

    def __init__(self, embedder: Embedder, cosine: float = ANSWER_COSINE) -> None:
        self._embedder = embedder
        self._cosine = cosine
        self._vectors: dict[str, np.ndarray] = {}

    def prepare(self, texts: Sequence[str]) -> None:
        """Embed the texts not seen yet, in one batch."""
        missing = sorted({t for t in texts if t not in self._vectors})
        if not missing:
            return
        for text, vector in zip(missing, self._embedder.embed(missing), strict=True):
            self._vectors[text] = vector

    def same(self, answer: str, real: str) -> bool:
        if answer == real:
            return True
        if artifacts(answer) & artifacts(real):
            return True
        self.prepare([answer, real])
        return float(self._vectors[answer] @ self._vectors[real]) >= self._cosine


def split_days(messages: Sequence[PeriodMessage], share: float) -> datetime:
    """The first moment of the day that starts the last ``1 - share`` of the days."""
    days = sorted({m.created_at.astimezone(UTC).date() for m in messages})
    if not days:
        raise NotEnoughEvidenceError("the community has no messages")
    cut = days[min(len(days) - 1, int(len(days) * share))]
    return datetime(cut.year, cut.month, cut.day, tzinfo=UTC)


def questions_after(messages: Sequence[PeriodMessage], cut: datetime) -> list[MinedPair]:
    """Questions asked from ``cut`` on that got an answer (the day before read for context)."""
    window = [m for m in messages if m.created_at >= cut - LOOKBACK]
    return [p for p in mine_pairs(window) if p.question.created_at >= cut]


def past_pairs(messages: Sequence[PeriodMessage], cut: datetime) -> list[MinedPair]:
    """The pairs mined from the messages before ``cut``."""
    return mine_pairs([m for m in messages if m.created_at < cut])


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Logistic curve P(correct) = 1 / (1 + exp(-(a * score + b))), by Newton's method."""
    a, b = 1.0, 0.0
    features = np.column_stack([scores, np.ones_like(scores)])
    # Platt's smoothed targets keep the fit finite when a split is separable.
    positives, negatives = labels.sum(), len(labels) - labels.sum()
    targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    for _ in range(100):
        p = 1 / (1 + np.exp(-(features @ np.array([a, b]))))
        gradient = features.T @ (p - targets)
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-8:
            break
    return a, b


def choose_threshold(confidences: np.ndarray, labels: np.ndarray, target: float) -> float:
    """The lowest confidence above which answers are correct at least ``target`` of the time."""
    for threshold in np.round(np.arange(0.05, 0.96, 0.01), 2):
        given = confidences >= threshold
        if given.sum() >= 10 and labels[given].mean() >= target:
            return float(threshold)
    return 0.95


class NotEnoughEvidenceError(ValueError):
    """The history is too short, or too few of its answers repeat, to fit a curve."""


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted curve and the evidence it rests on."""

    calibration: Calibration
    knowledge_entries: int
    questions: int
    correct: int
    threshold: float
    target_precision: float
    cut: datetime

    @property
    def hit_rate(self) -> float:
        return self.correct / self.questions if self.questions else 0.0


def score_questions(
    stored: Sequence[StoredEntry],
    embedder: Embedder,
    questions: Sequence[MinedPair],
    judge: Judge,
) -> tuple[np.ndarray, np.ndarray]:
    """Each question's best score in ``stored`` and whether that entry was right (1/0)."""
    index = KnowledgeIndex(stored)
    if not questions:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    vectors = embedder.embed([q.question_text for q in questions])
    best = [index.search(v, q.question_text, k=1) for q, v in zip(questions, vectors, strict=True)]
    # Every answer compared is embedded in one batch, not two texts at a time.
    judge.prepare([q.answer_text for q in questions] + [m[0].entry.answer for m in best if m])
    scores = [matches[0].score if matches else 0.0 for matches in best]
    labels = [
        int(bool(matches) and judge.same(matches[0].entry.answer, pair.answer_text))
        for pair, matches in zip(questions, best, strict=True)
    ]
    return np.array(scores, dtype=np.float64), np.array(labels, dtype=np.int64)


def fit_community(
    community_id: str,
    messages: Sequence[PeriodMessage],
    embedder: Embedder,
    *,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    cosine: float = ANSWER_COSINE,
    progress: Callable[[str], None] = lambda _: None,
) -> CalibrationFit:
    """Fit the community's curve on its history (see the module's docs).

    Raises:
        NotEnoughEvidenceError: Fewer than MIN_QUESTIONS questions or MIN_CORRECT correct ones.
    """
    if not 0 < target_precision <= 1:
        raise ValueError(f"target_precision: {target_precision} is not in (0, 1]")
    cut = split_days(messages, KNOWLEDGE_SHARE)
    knowledge = past_pairs(messages, cut)
    questions = questions_after(messages, cut)
    progress(
        f"knowledge before {cut:%Y-%m-%d}: {len(knowledge)} pairs; "
        f"questions from then on: {len(questions)}"
    )
    if len(questions) < MIN_QUESTIONS or not knowledge:
        raise NotEnoughEvidenceError(
            f"only {len(questions)} answered questions after {cut:%Y-%m-%d} and "
            f"{len(knowledge)} mined pairs before it: at least {MIN_QUESTIONS} questions "
            "are needed to fit a curve"
        )
    now = datetime.now(UTC)
    entries = [p.entry(community_id, now) for p in knowledge]
    progress(f"embedding {len(entries)} entries")
    vectors = embed_entries(embedder, entries)
    stored = [StoredEntry(e, v) for e, v in zip(entries, vectors, strict=True)]
    progress(f"asking {len(questions)} questions")
    judge = Judge(embedder, cosine)
    scores, labels = score_questions(stored, embedder, questions, judge)
    correct = int(labels.sum())
    if correct < MIN_CORRECT:
        raise NotEnoughEvidenceError(
            f"only {correct} of {len(questions)} questions found a right answer in the "
            f"knowledge: at least {MIN_CORRECT} are needed to fit a curve"
        )
    calibration = Calibration(*fit_platt(scores, labels))
    confidences = np.array([calibration.confidence(s) for s in scores])
    return CalibrationFit(
        calibration=calibration,
        knowledge_entries=len(entries),
        questions=len(questions),
        correct=correct,
        threshold=choose_threshold(confidences, labels, target_precision),
        target_precision=target_precision,
        cut=cut,
    )
