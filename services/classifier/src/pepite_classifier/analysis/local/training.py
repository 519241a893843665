"""How the local analyzer's heads are trained: data, recipe and cross-validated choices.

Used by ``services/classifier/training/train_local.py`` (which writes the shipped
artifacts) and by ``bench/quality.py`` (which refits the same recipe on K-1 folds to
score the files the heads were trained on).

Heads and their data (files of the evaluation folder, see its README):

========== ===================================== ==================================
head       trained on                            classes
========== ===================================== ==================================
intent     intent_dev                            bug, feature, question
question   question_dev + intent_dev             question (vs anything else)
sentiment  sentiment_en_dev / sentiment_fr_dev   negative, neutral, positive
toxicity   toxicity_en_dev                       hate, neither, offensive
========== ===================================== ==================================

The question head learns "asks something" from meeting utterances (question vs
statement) and from issues (a question vs a bug report or a feature request, which often
contain a '?' too). Almost every question in the meeting corpus ends with '?', so a
deterministic half of the rows (chosen by a hash of the row id) lose their '?' marks:
chat questions often have none, and the head must learn the words that ask.

Sentiment has one head per language: cross-validation scored separate English and French
heads above one head trained on both.

Recipe for every head (one-vs-rest logistic regression, classes weighted by inverse
frequency because the reported figures are macro averages):

1. *fast* head over the n-gram features; its ``C`` is chosen by stratified 5-fold
   cross-validation over ``FAST_C_GRID``;
2. for heads with a *stacked* head: out-of-fold fast logits over the same 5 folds (so the
   stacked head learns how far to trust them on unseen text), then a head over
   ``[sentence embedding ⊕ fast logits ⊕ dense cues]`` whose ``C`` is chosen by 5-fold
   cross-validation over ``STACK_C_GRID``.

With fixed hyperparameters (``hyperparameters=``) the grid search is skipped: the
quality benchmark refits that way on K-1 folds.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from pepite_classifier.analysis.local.embedding_cache import TextEmbedder
from pepite_classifier.analysis.local.features import DENSE_CUES, FeatureConfig, Featurizer
from pepite_classifier.analysis.local.labeled import LabeledSet
from pepite_classifier.analysis.local.model import FloatArray, LinearHead, LocalModel

log = logging.getLogger(__name__)

FOLDS = 5
SEED = 0
FAST_C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
STACK_C_GRID: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)

#: Training data: dataset name -> file in the evaluation folder.
TRAINING_FILES: dict[str, str] = {
    "intent": "intent_dev.jsonl",
    "question": "question_dev.jsonl",
    "sentiment_en": "sentiment_en_dev.jsonl",
    "sentiment_fr": "sentiment_fr_dev.jsonl",
    "toxicity_en": "toxicity_en_dev.jsonl",
}

QUESTION = "question"
STATEMENT = "statement"


@dataclass(frozen=True)
class HeadSpec:
    """One head: its data, its classes and the cross-validation score that picks its ``C``."""

    name: str
    datasets: tuple[str, ...]
    classes: tuple[str, ...]
    stacked: bool
    #: ``macro_f1``, ``macro_recall`` or ``f1:<class>`` (binary heads).
    metric: str


HEADS: tuple[HeadSpec, ...] = (
    HeadSpec("intent", ("intent",), ("bug", "feature", "question"), True, "macro_f1"),
    HeadSpec("question", ("question", "intent"), (QUESTION,), True, f"f1:{QUESTION}"),
    HeadSpec(
        "sentiment_en",
        ("sentiment_en",),
        ("negative", "neutral", "positive"),
        True,
        # TweetEval's official sentiment figure.
        "macro_recall",
    ),
    HeadSpec(
        "sentiment_fr", ("sentiment_fr",), ("negative", "neutral", "positive"), True, "macro_f1"
    ),
    HeadSpec("toxicity", ("toxicity_en",), ("hate", "neither", "offensive"), False, "macro_f1"),
)
HEADS_BY_NAME: dict[str, HeadSpec] = {spec.name: spec for spec in HEADS}


@dataclass(frozen=True)
class HeadParams:
    fast_c: float
    stack_c: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {"fast_c": self.fast_c, "stack_c": self.stack_c}


@dataclass(frozen=True)
class Rows:
    """A head's training rows: texts, labels, and a stratification key per row."""

    texts: list[str]
    labels: npt.NDArray[np.str_]
    strata: npt.NDArray[np.str_]


def drops_question_marks(row_id: str) -> bool:
    """Whether a question-head row loses its '?': half of the rows, by a hash of the id."""
    return hashlib.sha256(row_id.encode()).digest()[0] % 2 == 1


def head_rows(spec: HeadSpec, data: Mapping[str, LabeledSet]) -> Rows:
    """The rows a head trains on, built from the labeled sets it reads."""
    texts: list[str] = []
    labels: list[str] = []
    strata: list[str] = []
    for dataset in spec.datasets:
        labeled = data[dataset]
        for row_id, raw_text, raw_label in zip(
            labeled.ids, labeled.texts, labeled.labels, strict=True
        ):
            text, label = raw_text, raw_label
            if spec.name == "question":
                label = QUESTION if label == QUESTION else STATEMENT
                if drops_question_marks(row_id):
                    text = text.replace("?", "")
            texts.append(text)
            labels.append(str(label))
            strata.append(f"{dataset}:{label}")
    return Rows(texts, np.asarray(labels, dtype=np.str_), np.asarray(strata, dtype=np.str_))


def folds(strata: npt.NDArray[np.str_]) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    """The stratified (train, test) splits every cross-validation here uses."""
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    return list(splitter.split(np.zeros(len(strata)), strata))


def fit_linear(
    features: sp.csr_matrix | FloatArray,
    labels: npt.NDArray[np.str_],
    classes: Sequence[str],
    c: float,
) -> LinearHead:
    """One-vs-rest logistic regression, classes weighted by inverse frequency.

    Weights are rounded to float16 as they are shipped, so a model used straight from
    training behaves exactly like the same model saved and loaded.
    """
    weights = np.zeros((features.shape[1], len(classes)), dtype=np.float32)
    bias = np.zeros(len(classes), dtype=np.float32)
    for column, name in enumerate(classes):
        target = labels == name
        # The dual solver is several times faster than the primal one when features far
        # outnumber rows (hashed n-grams), the primal one when rows do (stacked inputs).
        model = LogisticRegression(
            C=c,
            solver="liblinear",
            dual=features.shape[1] > features.shape[0],
            class_weight="balanced",
            random_state=SEED,
            max_iter=300,
        )
        with warnings.catch_warnings():
            # Iterations are capped to bound training time; at the largest C of the grid
            # the solver may stop a little short of convergence, the same way every run.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(features, target)
        weights[:, column] = model.coef_.ravel()
        bias[column] = model.intercept_[0]
    return LinearHead(
        classes=tuple(classes),
        weights=weights.astype(np.float16).astype(np.float32),
        bias=bias,
    )


def predicted_labels(
    probabilities: FloatArray, classes: Sequence[str], negative_label: str = STATEMENT
) -> npt.NDArray[np.str_]:
    """Argmax over classes; a binary head says its class at probability >= 0.5."""
    if len(classes) == 1:
        chosen: npt.NDArray[np.str_] = np.where(
            probabilities[:, 0] >= 0.5, classes[0], negative_label
        )
        return chosen
    best: npt.NDArray[np.str_] = np.asarray(classes, dtype=np.str_)[probabilities.argmax(axis=1)]
    return best


def score(metric: str, truth: npt.NDArray[np.str_], predicted: npt.NDArray[np.str_]) -> float:
    """The cross-validation score named by ``metric``."""
    if metric.startswith("f1:"):
        name = metric.removeprefix("f1:")
        return f1_of(truth, predicted, name)
    labels = sorted(set(truth.tolist()))
    if metric == "macro_recall":
        return float(np.mean([np.mean(predicted[truth == name] == name) for name in labels]))
    if metric == "macro_f1":
        return float(np.mean([f1_of(truth, predicted, name) for name in labels]))
    raise ValueError(f"unknown metric {metric}")


def f1_of(truth: npt.NDArray[np.str_], predicted: npt.NDArray[np.str_], name: str) -> float:
    true_positive = float(np.sum((truth == name) & (predicted == name)))
    denominator = float(np.sum(truth == name) + np.sum(predicted == name))
    return 2 * true_positive / denominator if denominator else 0.0


def out_of_fold_logits(
    features: sp.csr_matrix,
    rows: Rows,
    classes: Sequence[str],
    c: float,
    splits: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
) -> FloatArray:
    """Fast-head logits of every row from a head that did not see it."""
    logits = np.zeros((len(rows.texts), len(classes)), dtype=np.float32)
    for train, test in splits:
        head = fit_linear(features[train], rows.labels[train], classes, c)
        logits[test] = head.logits(features[test])
    return logits


def stack_inputs(
    embeddings: FloatArray, fast_logits: FloatArray, features: sp.csr_matrix
) -> FloatArray:
    """``[embedding ⊕ fast logits ⊕ dense cues]``: what a stacked head reads."""
    cues = features[:, features.shape[1] - len(DENSE_CUES) :].toarray()
    return np.hstack([embeddings, fast_logits, cues]).astype(np.float32)


@dataclass
class HeadTraining:
    spec: HeadSpec
    fast: LinearHead
    stacked: LinearHead | None
    params: HeadParams
    #: Mean cross-validation score per grid point, when the grid was searched.
    cv_scores: dict[str, float]


def train_head(
    spec: HeadSpec,
    data: Mapping[str, LabeledSet],
    featurizer: Featurizer,
    embedder: TextEmbedder,
    params: HeadParams | None = None,
) -> HeadTraining:
    """Train one head (and its stacked head), searching the grid unless ``params`` is set."""
    rows = head_rows(spec, data)
    features = featurizer.transform(rows.texts)
    splits = folds(rows.strata)
    cv_scores: dict[str, float] = {}
    if params is None:
        best_c, best = FAST_C_GRID[0], -1.0
        for c in FAST_C_GRID:
            logits = out_of_fold_logits(features, rows, spec.classes, c, splits)
            value = score(spec.metric, rows.labels, predicted_labels(logits, spec.classes))
            cv_scores[f"fast_c={c}"] = round(value, 4)
            log.info("%s fast C=%s: %s %.4f", spec.name, c, spec.metric, value)
            if value > best:
                best_c, best = c, value
        fast_c = best_c
    else:
        fast_c = params.fast_c
    fast = fit_linear(features, rows.labels, spec.classes, fast_c)
    if not spec.stacked:
        return HeadTraining(spec, fast, None, HeadParams(fast_c), cv_scores)
    stack_features = stack_inputs(
        embedder.embed(rows.texts),
        out_of_fold_logits(features, rows, spec.classes, fast_c, splits),
        features,
    )
    if params is None or params.stack_c is None:
        best_c, best = STACK_C_GRID[0], -1.0
        for c in STACK_C_GRID:
            probabilities = np.zeros((len(rows.texts), len(spec.classes)), dtype=np.float32)
            for train, test in splits:
                head = fit_linear(stack_features[train], rows.labels[train], spec.classes, c)
                probabilities[test] = head.probabilities(stack_features[test])
            value = score(spec.metric, rows.labels, predicted_labels(probabilities, spec.classes))
            cv_scores[f"stack_c={c}"] = round(value, 4)
            log.info("%s stacked C=%s: %s %.4f", spec.name, c, spec.metric, value)
            if value > best:
                best_c, best = c, value
        stack_c = best_c
    else:
        stack_c = params.stack_c
    stacked = fit_linear(stack_features, rows.labels, spec.classes, stack_c)
    return HeadTraining(spec, fast, stacked, HeadParams(fast_c, stack_c), cv_scores)


def train_model(
    data: Mapping[str, LabeledSet],
    embedder: TextEmbedder,
    *,
    config: FeatureConfig | None = None,
    hyperparameters: Mapping[str, HeadParams] | None = None,
    heads: Sequence[str] | None = None,
    base: LocalModel | None = None,
) -> LocalModel:
    """Train the heads named in ``heads`` (all by default) and return the model.

    Args:
        data: labeled sets by dataset name (see ``TRAINING_FILES``); a head's sets may be
            subsets of the files (the benchmark's K-1 folds).
        embedder: sentence embeddings for the stacked heads (a cached one, preferably).
        config: the feature space (the default one unless given).
        hyperparameters: fixed ``C`` values by head; the grid is searched for heads
            without any.
        heads: which heads to train; the others are copied from ``base``.
        base: the model whose other heads are kept.
    """
    config = config or (base.features if base else FeatureConfig())
    featurizer = Featurizer(config)
    fast = dict(base.fast) if base else {}
    stacked = dict(base.stacked) if base else {}
    records: dict[str, Any] = dict(base.manifest.get("training", {})) if base else {}
    for name in heads or [spec.name for spec in HEADS]:
        spec = HEADS_BY_NAME[name]
        params = (hyperparameters or {}).get(name)
        trained = train_head(spec, data, featurizer, embedder, params)
        fast[name] = trained.fast
        if trained.stacked is not None:
            stacked[name] = trained.stacked
        records[name] = {
            "datasets": list(spec.datasets),
            "classes": list(spec.classes),
            "cv_metric": spec.metric,
            "hyperparameters": trained.params.to_json(),
            "cv_scores": trained.cv_scores,
        }
    return LocalModel(
        features=config,
        fast=fast,
        stacked=stacked,
        manifest={"training": records},
        version="local-trained-in-memory",
    )
