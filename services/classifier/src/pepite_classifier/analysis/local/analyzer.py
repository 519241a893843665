"""The local analyzer: offline, on the CPU, every message of every community.

Per batch:

1. *fast path*, every message: hashed n-gram features (``features``) and the fast linear
   heads (intent, question, sentiment, toxicity), cues and language, then the rules
   (``rules``) give a first analysis;
2. *embedding path*, opt-in: a message not from a bot whose first analysis is an opinion
   (satisfaction, complaint) of at least ``embed_min_words`` words, or a question,
   problem or feature request of at least ``embed_min_words_request`` words. Its
   sentence embedding feeds the stacked heads, which re-decide intent, question and
   sentiment, and the rules run again. The embedding is returned with the analysis, so
   the message is placed in a topic at once.

By default nothing is embedded inline. A sentence embedding costs about fifty times the
whole fast path on a CPU (120-150 chat messages a second on two cores), and through the
whole analyzer path the stacked heads changed the cross-validated figures by less than
0.003 (they re-decide only messages already judged opinions or requests, which the fast
heads mostly get right). Insight messages are instead embedded in bulk, when the
stream is quiet, by the topic placer (``pepite_classifier.placement``), which is what
lets the analyzer keep up with a busy community on a small machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest
from pepite_classifier.analysis.embedder import Embedder
from pepite_classifier.analysis.local.cues import Cues, looks_like_question, tokenize
from pepite_classifier.analysis.local.embedding_cache import TextEmbedder
from pepite_classifier.analysis.local.features import DENSE_CUES, URL_RE, Featurizer
from pepite_classifier.analysis.local.language import detect_language
from pepite_classifier.analysis.local.lexicon import english_abuse, french_abuse
from pepite_classifier.analysis.local.model import SHIPPED_ARTIFACTS, FloatArray, LocalModel
from pepite_classifier.analysis.local.rules import (
    Signals,
    kind_scores_of,
    moderation_of,
    mood_of,
    primary_kind,
    sentiment_of,
)
from pepite_classifier.analysis.local.training import stack_inputs
from pepite_contracts import INSIGHT_KINDS, Analysis, AnalyzerName, MessageKind

_OPINION_KINDS = frozenset({MessageKind.SATISFACTION, MessageKind.COMPLAINT})
#: Batches are featurized in slices of this many texts, which bounds peak memory.
FEATURE_SLICE = 2048
_POSITIVE_WORDS = DENSE_CUES.index("positive_words")
_NEGATIVE_WORDS = DENSE_CUES.index("negative_words")


@dataclass(frozen=True)
class _HeadOutputs:
    """Probabilities of every head for a batch, one row per message."""

    intent: FloatArray
    question: FloatArray
    sentiment_en: FloatArray
    sentiment_fr: FloatArray
    toxicity: FloatArray
    #: The dense cue columns of the features (lexicon opinion words among them).
    cues: FloatArray


def _normalized(row: FloatArray) -> FloatArray:
    total = float(row.sum())
    return row / total if total > 0 else np.full_like(row, 1.0 / row.size)


class LocalAnalyzer:
    """Analyzes messages with the shipped heads and, for insight candidates, embeddings."""

    name = AnalyzerName.LOCAL

    def __init__(
        self,
        artifacts_dir: Path | None = None,
        embedder: TextEmbedder | None = None,
        *,
        model: LocalModel | None = None,
        embed_min_words: int | None = None,
        embed_min_words_request: int | None = None,
    ) -> None:
        """Load the artifacts (the shipped ones by default).

        Args:
            artifacts_dir: a folder written by ``train_local.py --out``.
            embedder: the sentence embedder, shared with the rest of the service; a new
                one (loaded on first use) when not given.
            model: an in-memory model, instead of a folder (training, the benchmark).
            embed_min_words: the fewest words an opinion needs to be embedded inline;
                ``None`` (the default) leaves opinions to the topic placer.
            embed_min_words_request: the fewest words a question, problem or feature
                request needs to be embedded inline; ``None`` (the default) leaves them
                to the topic placer.
        """
        self._model = model or LocalModel.load(artifacts_dir or SHIPPED_ARTIFACTS)
        self._featurizer = Featurizer(self._model.features)
        self._embedder: TextEmbedder = embedder if embedder is not None else Embedder()
        self._embed_min_words = embed_min_words
        self._embed_min_words_request = embed_min_words_request
        #: Messages embedded since start, for benchmarks and metrics.
        self.embedded = 0
        self.analyzed = 0

    @property
    def version(self) -> str:
        return self._model.version

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        """Analyze every request in a worker thread (the work is CPU-bound)."""
        return await asyncio.to_thread(self.analyze_batch, requests)

    async def aclose(self) -> None:
        return None

    def analyze_batch(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        """Analyze every request, in order, on the calling thread."""
        outcomes: list[AnalysisOutcome] = []
        for start in range(0, len(requests), FEATURE_SLICE):
            outcomes.extend(self._analyze_slice(requests[start : start + FEATURE_SLICE]))
        return outcomes

    def _analyze_slice(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        if not requests:
            return []
        model = self._model
        texts = [request.text for request in requests]
        features = self._featurizer.transform(texts)
        heads = _HeadOutputs(
            intent=model.fast["intent"].probabilities(features),
            question=model.fast["question"].probabilities(features),
            sentiment_en=model.fast["sentiment_en"].probabilities(features),
            sentiment_fr=model.fast["sentiment_fr"].probabilities(features),
            toxicity=model.fast["toxicity"].probabilities(features),
            cues=features[:, features.shape[1] - len(DENSE_CUES) :].toarray(),
        )
        signals = [self._signals(request, heads, row) for row, request in enumerate(requests)]
        analyses = [self._decide(one) for one in signals]
        candidates = [
            row
            for row, (one, analysis) in enumerate(zip(signals, analyses, strict=True))
            if self._is_candidate(one, analysis)
        ]
        embeddings: dict[int, FloatArray] = {}
        if candidates:
            vectors = np.asarray(
                self._embedder.embed([texts[row] for row in candidates]), dtype=np.float32
            )
            self.embedded += len(candidates)
            rows = np.asarray(candidates)
            restacked = self._stacked(vectors, features[rows], rows, heads)
            for index, row in enumerate(candidates):
                embeddings[row] = vectors[index]
                signals[row] = self._restacked_signals(signals[row], restacked, index)
                analyses[row] = self._decide(signals[row])
        self.analyzed += len(requests)
        return [
            AnalysisOutcome(analysis=analysis, embedding=embeddings.get(row))
            for row, analysis in enumerate(analyses)
        ]

    def _is_candidate(self, signals: Signals, analysis: Analysis) -> bool:
        """Whether a message is worth a sentence embedding (see the module docstring)."""
        if signals.is_bot or analysis.kind not in INSIGHT_KINDS:
            return False
        minimum = (
            self._embed_min_words
            if analysis.kind in _OPINION_KINDS
            else self._embed_min_words_request
        )
        return minimum is not None and signals.words >= minimum

    def _signals(self, request: AnalysisRequest, heads: _HeadOutputs, row: int) -> Signals:
        text = request.text
        lowered = text.lower()
        tokens = tokenize(lowered)
        cues = Cues.of(lowered, tokens)
        language = detect_language(tokens, lowered)
        insults, slurs = french_abuse(tokens) if language == "fr" else (0, 0)
        # The cue columns hold min(count, 4) / 4.
        positive_words = round(float(heads.cues[row, _POSITIVE_WORDS]) * 4)
        negative_words = round(float(heads.cues[row, _NEGATIVE_WORDS]) * 4)
        sentiment = heads.sentiment_fr[row] if language == "fr" else heads.sentiment_en[row]
        sentiment = _normalized(sentiment)
        intent = _normalized(heads.intent[row])
        toxicity = _normalized(heads.toxicity[row])
        context = request.context
        return Signals(
            words=sum(1 for token in tokens if token[0].isalnum() or token == "<num>"),  # noqa: S105 - a placeholder token, not a secret
            has_question_mark="?" in text,
            urls=len(URL_RE.findall(text)) if "." in text else 0,
            attachments=request.attachment_count,
            addressed=cues_addressed(text),
            replies_to_question=bool(context) and looks_like_question(context[-1]),
            is_bot=request.author_is_bot,
            language=language,
            cues=cues,
            abusive_words=english_abuse(tokens),
            french_insults=insults,
            french_slurs=slurs,
            positive_words=positive_words,
            negative_words=negative_words,
            bug=float(intent[0]),
            feature=float(intent[1]),
            question_share=float(intent[2]),
            asks=float(heads.question[row, 0]),
            negative=float(sentiment[0]),
            neutral=float(sentiment[1]),
            positive=float(sentiment[2]),
            hate=float(toxicity[0]),
            not_toxic=float(toxicity[1]),
        )

    def _stacked(
        self,
        vectors: FloatArray,
        features: sp.csr_matrix,
        rows: np.ndarray,
        heads: _HeadOutputs,
    ) -> _HeadOutputs:
        """Stacked-head probabilities for the embedded rows."""
        model = self._model
        outputs: dict[str, FloatArray] = {}
        for task in ("intent", "question", "sentiment_en", "sentiment_fr"):
            fast_logits = model.fast[task].logits(features)
            outputs[task] = model.stacked[task].probabilities(
                stack_inputs(vectors, fast_logits, features)
            )
        return _HeadOutputs(toxicity=heads.toxicity[rows], cues=heads.cues[rows], **outputs)

    @staticmethod
    def _restacked_signals(signals: Signals, stacked: _HeadOutputs, index: int) -> Signals:
        sentiment = _normalized(
            stacked.sentiment_fr[index] if signals.language == "fr" else stacked.sentiment_en[index]
        )
        intent = _normalized(stacked.intent[index])
        return replace(
            signals,
            bug=float(intent[0]),
            feature=float(intent[1]),
            question_share=float(intent[2]),
            asks=float(stacked.question[index, 0]),
            negative=float(sentiment[0]),
            neutral=float(sentiment[1]),
            positive=float(sentiment[2]),
        )

    def _decide(self, signals: Signals) -> Analysis:
        moderation = moderation_of(signals)
        scores = kind_scores_of(signals, moderation)
        kind = primary_kind(scores, is_bot=signals.is_bot)
        sentiment = sentiment_of(signals)
        return Analysis(
            kind=kind,
            kind_scores=scores,
            sentiment=sentiment,
            sentiment_score=round(max(-1.0, min(1.0, signals.positive - signals.negative)), 4),
            mood=mood_of(kind, sentiment, signals),
            language=signals.language,
            moderation=moderation,
            analyzer=AnalyzerName.LOCAL,
            model=self._model.version,
        )


def cues_addressed(text: str) -> bool:
    """Whether the message is addressed to someone: a mention or an IRC-style ``nick:``."""
    head = text[:40]
    if "@" in head or "<@" in head:
        return True
    colon = head.find(":")
    return 1 < colon < 32 and " " not in head[:colon] and head[colon + 1 : colon + 2] == " "
