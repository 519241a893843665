"""The local analyzer: offline, on the CPU, every message of every community.

Per batch:

1. *fast path*, every message: hashed n-gram features (``features``) and the fast linear
   heads (intent, question, sentiment, toxicity), cues and language, then the rules
   (``rules``) give a first analysis;
2. *embedding path*, for insight messages: a message not from a bot whose first analysis
   is an insight kind (question, problem, feature request, satisfaction, complaint). Its
   sentence embedding feeds the stacked heads, which re-decide intent, question and
   sentiment, and the rules run again. The embedding is returned with the analysis:
   topics group insights by it.

In the service the two steps are apart. A sentence embedding costs about fifty times the
whole fast path on a CPU (120-150 chat messages a second on two cores), so the stream is
analyzed by the fast path alone (``analyze``), and insight messages are embedded later,
in bulk, when the stream is quiet, by the topic placer (``pepite_classifier.placement``),
which calls :meth:`LocalAnalyzer.refine_batch` with the embeddings it computed: the
analysis that is kept is the same as if the message had been embedded at once
(``embed_inline=True``, what the quality benchmark measures), but arriving messages
never wait for the embedder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest
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
from pepite_contracts import INSIGHT_KINDS, Analysis, AnalyzerName
from pepite_embeddings.embedder import Embedder

#: Batches are featurized in slices of this many texts, which bounds peak memory.
FEATURE_SLICE = 2048
_POSITIVE_WORDS = DENSE_CUES.index("positive_words")
_NEGATIVE_WORDS = DENSE_CUES.index("negative_words")


#: Embeddings of some texts of a slice: (the slice's texts, the rows wanted) -> vectors.
_EmbeddingsOf = Callable[[Sequence[str], Sequence[int]], FloatArray]


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
        embed_inline: bool = False,
    ) -> None:
        """Load the artifacts (the shipped ones by default).

        Args:
            artifacts_dir: a folder written by ``train_local.py --out``.
            embedder: the sentence embedder, shared with the rest of the service; a new
                one (loaded on first use) when not given.
            model: an in-memory model, instead of a folder (training, the benchmark).
            embed_inline: embed insight messages at once and let the stacked heads
                decide (the benchmark, small batches); by default they are analyzed by
                the fast path and refined later with :meth:`refine_batch`.
        """
        self._model = model or LocalModel.load(artifacts_dir or SHIPPED_ARTIFACTS)
        self._featurizer = Featurizer(self._model.features)
        self._embedder: TextEmbedder = embedder if embedder is not None else Embedder()
        self._embed_inline = embed_inline
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
        embed = self._embed_texts if self._embed_inline else None
        outcomes: list[AnalysisOutcome] = []
        for start in range(0, len(requests), FEATURE_SLICE):
            outcomes.extend(self._analyze_slice(requests[start : start + FEATURE_SLICE], embed))
        return outcomes

    def refine_batch(
        self, requests: Sequence[AnalysisRequest], embeddings: FloatArray
    ) -> list[AnalysisOutcome]:
        """Analyze again, with the sentence embedding of each request already computed.

        Gives what ``analyze_batch`` with ``embed_inline=True`` gives, without embedding:
        the stacked heads decide for the insight messages, the fast path for the others
        (their outcomes carry no embedding).

        Raises:
            ValueError: not one embedding per request.
        """
        if len(embeddings) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(embeddings)} embeddings")
        outcomes: list[AnalysisOutcome] = []
        for start in range(0, len(requests), FEATURE_SLICE):
            known = np.asarray(embeddings[start : start + FEATURE_SLICE], dtype=np.float32)

            def given(
                _texts: Sequence[str], rows: Sequence[int], known: FloatArray = known
            ) -> FloatArray:
                return known[np.asarray(rows, dtype=np.intp)]

            outcomes.extend(self._analyze_slice(requests[start : start + FEATURE_SLICE], given))
        return outcomes

    def _embed_texts(self, texts: Sequence[str], rows: Sequence[int]) -> FloatArray:
        return np.asarray(self._embedder.embed([texts[row] for row in rows]), dtype=np.float32)

    def _analyze_slice(
        self, requests: Sequence[AnalysisRequest], embed: _EmbeddingsOf | None
    ) -> list[AnalysisOutcome]:
        """Fast path for every request, then stacked heads for the insight candidates
        when ``embed`` gives their embeddings (from the slice's texts and their rows)."""
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
        if candidates and embed is not None:
            vectors = embed(texts, candidates)
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

    @staticmethod
    def _is_candidate(signals: Signals, analysis: Analysis) -> bool:
        """Whether the stacked heads decide for a message (see the module docstring)."""
        return not signals.is_bot and analysis.kind in INSIGHT_KINDS

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
