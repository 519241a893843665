"""Quality benchmark: the local analyzer scored on every labeled file of an evaluation folder.

    uv run --frozen python bench/quality.py [--eval-dir DIR] [--artifacts DIR]

Reads every ``<task>_<split>.jsonl`` in the folder (``--eval-dir``, else ``EVAL_DIR``, else
``../shared/datasets/eval``), runs its texts through ``LocalAnalyzer.analyze_batch``
with insight messages embedded at once (the analysis the service keeps once the topic
placer has refined them), and maps each analysis onto the task's labels with
``pepite_classifier.analysis.eval_mapping``.
Prints one JSON line per figure: macro-F1, macro-recall, accuracy, n, per-class
precision/recall/F1, the confusion matrix (rows: truth, columns: prediction, in
``labels`` order) and the share of texts the analyzer embedded.

Honesty rule: a file whose SHA-256 is one the shipped heads were trained on (the
manifest lists them) is scored out of fold: for each of 5 stratified folds, the heads
trained on that file are refitted with the exact training recipe and the shipped
hyperparameters on the other 4 folds, and the held-out fold goes through the same
analyzer path and mapping (``"method": "5-fold-cv"``). Any other file is scored with the
shipped analyzer (``"method": "shipped"``).

Unknown tasks are reported as skipped; a malformed file is reported with its name and
line, and the other files are still scored (exit status 1 then).
Sentence embeddings (keyed by a hash of the text) and refitted fold models (keyed by the
shipped model's version and a hash of the fitting code) are cached under
``.pepite/cache`` (``--cache-dir``): the first run refits, later runs mostly analyze.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pepite_classifier.analysis.base import AnalysisRequest
from pepite_classifier.analysis.eval_mapping import TASK_LABELS, label_for
from pepite_classifier.analysis.local import LocalAnalyzer, features, lexicon, training
from pepite_classifier.analysis.local import model as model_module
from pepite_classifier.analysis.local.embedding_cache import CachedEmbedder
from pepite_classifier.analysis.local.labeled import (
    LabeledFileError,
    LabeledSet,
    read_labeled,
    task_and_split,
)
from pepite_classifier.analysis.local.model import SHIPPED_ARTIFACTS, LocalModel
from pepite_classifier.analysis.local.training import (
    HEADS,
    TRAINING_FILES,
    HeadParams,
    folds,
    train_model,
)
from pepite_embeddings.embedder import Embedder

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".pepite" / "cache"
#: Embeddings depend on the model and its settings: the folder names both.
EMBEDDING_CACHE = "embeddings/all-MiniLM-L6-v2-64tok"
METHOD_CV = "5-fold-cv"
METHOD_SHIPPED = "shipped"


def fitting_code_digest() -> str:
    """A hash of the modules whose code decides what a refit gives."""
    digest = hashlib.sha256()
    for module in (features, lexicon, model_module, training):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def emit(**line: Any) -> None:
    print(json.dumps(line, ensure_ascii=False), flush=True)


def default_eval_dir() -> Path:
    if os.environ.get("EVAL_DIR"):
        return Path(os.environ["EVAL_DIR"])
    return REPO_ROOT.parent / "shared" / "datasets" / "eval"


def check_labels(labeled: LabeledSet) -> None:
    """Raises LabeledFileError naming the first line whose label the task does not have."""
    known = set(TASK_LABELS[labeled.task])
    for line, label in zip(labeled.lines, labeled.labels, strict=True):
        if label not in known:
            raise LabeledFileError(
                f"{labeled.path}:{line}: label {str(label)!r} is not one of {sorted(known)}"
            )


def requests_for(texts: Sequence[str]) -> list[AnalysisRequest]:
    return [
        AnalysisRequest(message_id=str(index), community_id="bench", text=text)
        for index, text in enumerate(texts)
    ]


def predict(analyzer: LocalAnalyzer, task: str, texts: Sequence[str]) -> list[str]:
    outcomes = analyzer.analyze_batch(requests_for(texts))
    return [label_for(task, outcome.analysis) for outcome in outcomes]


class Scorer:
    """Predictions for one labeled file, shipped or out of fold."""

    def __init__(
        self, model: LocalModel, embedder: CachedEmbedder, eval_dir: Path, cache: Path
    ) -> None:
        self.model = model
        self.embedder = embedder
        self.eval_dir = eval_dir
        # Refitted fold models, reused while neither the shipped model nor the code that
        # fits heads changes: refitting is most of the benchmark's time.
        self.fold_cache = cache / "quality-folds" / f"{model.version}-{fitting_code_digest()}"
        training = model.manifest.get("training_files", {})
        #: Training file SHA-256 -> dataset name.
        self.trained_on: dict[str, str] = {
            record["sha256"]: name for name, record in training.items()
        }
        self.params = {
            name: HeadParams(**record["hyperparameters"])
            for name, record in model.manifest.get("training", {}).items()
        }

    def method_for(self, labeled: LabeledSet) -> str:
        return METHOD_CV if labeled.sha256 in self.trained_on else METHOD_SHIPPED

    def shipped(self, labeled: LabeledSet) -> tuple[list[str], float]:
        analyzer = LocalAnalyzer(model=self.model, embedder=self.embedder, embed_inline=True)
        predicted = predict(analyzer, labeled.task, labeled.texts)
        return predicted, analyzer.embedded / len(labeled)

    def out_of_fold(self, labeled: LabeledSet) -> tuple[list[str], float]:
        """Refit the heads trained on this file on 4 folds, predict the 5th, five times."""
        dataset = self.trained_on[labeled.sha256]
        heads = [spec.name for spec in HEADS if dataset in spec.datasets]
        data = self.training_data(
            {dataset for spec in HEADS if spec.name in heads for dataset in spec.datasets}
        )
        predicted = [""] * len(labeled)
        embedded = 0
        for fold_number, (train, test) in enumerate(folds(labeled.labels)):
            cached = self.fold_cache / labeled.sha256[:16] / f"fold-{fold_number}"
            if (cached / "manifest.json").exists():
                model = LocalModel.load(cached)
            else:
                data[dataset] = labeled.subset(train)
                model = train_model(
                    data, self.embedder, hyperparameters=self.params, heads=heads, base=self.model
                )
                model.save(cached)
            analyzer = LocalAnalyzer(model=model, embedder=self.embedder, embed_inline=True)
            fold = predict(analyzer, labeled.task, [labeled.texts[row] for row in test])
            for row, label in zip(test, fold, strict=True):
                predicted[row] = label
            embedded += analyzer.embedded
        return predicted, embedded / len(labeled)

    def training_data(self, datasets: set[str]) -> dict[str, LabeledSet]:
        """The exact training files of these datasets, read from the evaluation folder.

        Raises:
            LabeledFileError: a file is missing or differs from the one trained on.
        """
        data: dict[str, LabeledSet] = {}
        expected = {name: sha for sha, name in self.trained_on.items()}
        for name in sorted(datasets):
            path = self.eval_dir / TRAINING_FILES[name]
            labeled = read_labeled(path) if path.exists() else None
            if labeled is None or labeled.sha256 != expected.get(name):
                raise LabeledFileError(
                    f"{path}: the training file the heads were fitted on is needed to refit"
                    " them out of fold, and it is missing or differs"
                )
            data[name] = labeled
        return data


def report(  # noqa: PLR0917 - one call site, a flat record
    task: str,
    split: str,
    method: str,
    truth: Sequence[str],
    predicted: Sequence[str],
    embedded: float,
) -> None:
    labels = list(TASK_LABELS[task])
    truth_array = np.asarray(truth)
    predicted_array = np.asarray(predicted)
    base = {"task": task, "split": split, "method": method}
    precisions, recalls, f1s = [], [], []
    per_class: list[dict[str, Any]] = []
    present = [label for label in labels if np.any(truth_array == label)]
    for label in labels:
        true_positive = int(np.sum((truth_array == label) & (predicted_array == label)))
        predicted_count = int(np.sum(predicted_array == label))
        actual = int(np.sum(truth_array == label))
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if label in present:
            precisions.append(precision)
            recalls.append(recall)
            f1s.append(f1)
        for metric, value in (("precision", precision), ("recall", recall), ("f1", f1)):
            per_class.append(
                {
                    **base,
                    "metric": metric,
                    "class": label,
                    "value": round(value, 4),
                    "support": actual,
                }
            )
    emit(**base, metric="macro_f1", value=round(float(np.mean(f1s)), 4))
    emit(**base, metric="macro_recall", value=round(float(np.mean(recalls)), 4))
    emit(**base, metric="accuracy", value=round(float(np.mean(truth_array == predicted_array)), 4))
    emit(**base, metric="n", value=len(truth))
    for line in per_class:
        emit(**line)
    matrix = [
        [int(np.sum((truth_array == row) & (predicted_array == column))) for column in labels]
        for row in labels
    ]
    emit(**base, metric="confusion_matrix", labels=labels, value=matrix)
    emit(**base, metric="embedded_fraction", value=round(embedded, 4))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--eval-dir", type=Path, default=None, help="folder of <task>_<split>.jsonl"
    )
    parser.add_argument("--artifacts", type=Path, default=SHIPPED_ARTIFACTS, help="model folder")
    parser.add_argument(
        "--cache-dir", type=Path, default=CACHE, help="embeddings and refitted fold models"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    eval_dir: Path = args.eval_dir or default_eval_dir()
    files = sorted(eval_dir.glob("*.jsonl"))
    if not files:
        print(f"no <task>_<split>.jsonl files in {eval_dir}", file=sys.stderr)
        return 1
    model = LocalModel.load(args.artifacts)
    # One thread: the two cores of the machine are shared.
    embedder = CachedEmbedder(Embedder(threads=1), args.cache_dir / EMBEDDING_CACHE)
    scorer = Scorer(model, embedder, eval_dir, args.cache_dir)
    failures = 0
    for path in files:
        started = time.perf_counter()
        try:
            task, split = task_and_split(path)
        except LabeledFileError as error:
            emit(file=path.name, status="skipped", reason=str(error))
            continue
        if task not in TASK_LABELS:
            emit(task=task, split=split, status="skipped", reason=f"unknown task {task!r}")
            continue
        try:
            labeled = read_labeled(path)
            check_labels(labeled)
            method = scorer.method_for(labeled)
            if method == METHOD_CV:
                predicted, embedded = scorer.out_of_fold(labeled)
            else:
                predicted, embedded = scorer.shipped(labeled)
        except LabeledFileError as error:
            failures += 1
            emit(task=task, split=split, status="error", error=str(error))
            print(f"error: {error}", file=sys.stderr)
            continue
        report(task, split, method, labeled.labels.tolist(), predicted, embedded)
        emit(
            task=task,
            split=split,
            method=method,
            metric="seconds",
            value=round(time.perf_counter() - started, 1),
            model=model.version,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
