"""Sentence embeddings kept on disk, keyed by a hash of the text.

Training and the quality benchmark embed the same tens of thousands of labeled texts
again and again; on a small CPU that is minutes each time. The cache stores each batch of
new embeddings as one ``.npz`` chunk (text SHA-256 digests and float32 vectors), so
concurrent runs never rewrite each other's files, and loads every chunk at start.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pepite_embeddings.embedder import EMBEDDING_DIM


class TextEmbedder(Protocol):
    """Anything that turns texts into unit-length float32 vectors, one row per text."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class CachedEmbedder:
    """Wraps an embedder; texts already embedded (by any run) are read from ``folder``.

    ``folder`` should name the model and its settings (the vectors depend on both): keys
    are text hashes only.
    """

    def __init__(self, embedder: TextEmbedder, folder: Path) -> None:
        self._embedder = embedder
        self._folder = folder
        self._rows: dict[bytes, npt.NDArray[np.float32]] = {}
        self.computed = 0
        if folder.is_dir():
            for chunk in sorted(folder.glob("chunk-*.npz")):
                with np.load(chunk) as stored:
                    keys, vectors = stored["keys"], stored["vectors"]
                for key, vector in zip(keys, vectors, strict=True):
                    self._rows[key.tobytes()] = vector

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-length float32 embeddings, shape ``(len(texts), 384)``."""
        digests = [text_digest(text) for text in texts]
        missing: dict[bytes, str] = {}
        for digest, text in zip(digests, texts, strict=True):
            if digest not in self._rows:
                missing.setdefault(digest, text)
        if missing:
            vectors = np.asarray(self._embedder.embed(list(missing.values())), dtype=np.float32)
            self.computed += len(missing)
            self._store(list(missing), vectors)
            for digest, vector in zip(missing, vectors, strict=True):
                self._rows[digest] = vector
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._rows[digest] for digest in digests])

    def _store(self, digests: list[bytes], vectors: npt.NDArray[np.float32]) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        name = hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        # Written under a temporary name then renamed: a reader never sees half a chunk.
        handle, temporary = tempfile.mkstemp(dir=self._folder, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, keys=keys, vectors=vectors)
        Path(temporary).replace(self._folder / f"chunk-{name}.npz")
