"""The trained weights of the local analyzer and how they are stored.

Two kinds of linear heads, evaluated with numpy/scipy only (no estimator objects):

- *fast* heads read the hashed n-gram features (``features.Featurizer``) of every message;
- *stacked* heads re-decide for the messages worth a sentence embedding: they read
  ``[embedding ⊕ the fast head's logits ⊕ dense cues]``.

Every head is one-vs-rest logistic regression: a column of weights and a bias per class,
each giving that class's probability on its own (a text can be both a question and a
problem report). ``weights.npz`` holds every matrix (float16: four significant digits are
plenty for a linear model's weights and halve the size); ``manifest.json`` describes the
heads, the data they were trained on and their cross-validation scores. The model
version is a hash of both, so any change to either changes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pepite_classifier.analysis.local.features import FeatureConfig

WEIGHTS_FILE = "weights.npz"
MANIFEST_FILE = "manifest.json"

#: Where the shipped artifacts live (inside the package, so they ship in the wheel).
SHIPPED_ARTIFACTS = Path(__file__).parent / "artifacts"

FloatArray = npt.NDArray[np.float32]


def sigmoid(logits: FloatArray) -> FloatArray:
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)


@dataclass
class LinearHead:
    """One-vs-rest logistic regression: ``sigmoid(features @ weights + bias)`` per class."""

    classes: tuple[str, ...]
    #: Shape ``(n_features, n_classes)``.
    weights: FloatArray
    #: Shape ``(n_classes,)``.
    bias: FloatArray

    def logits(self, features: sp.csr_matrix | FloatArray) -> FloatArray:
        return np.asarray(features @ self.weights, dtype=np.float32) + self.bias

    def probabilities(self, features: sp.csr_matrix | FloatArray) -> FloatArray:
        return sigmoid(self.logits(features))


@dataclass
class LocalModel:
    """Everything the local analyzer needs besides the sentence embedder."""

    features: FeatureConfig
    #: Fast heads over n-gram features, by task (intent, question, sentiment_en, ...).
    fast: dict[str, LinearHead]
    #: Stacked heads over [embedding ⊕ fast logits ⊕ dense cues], by task.
    stacked: dict[str, LinearHead]
    #: Training files, hyperparameters, CV scores: whatever the trainer wants recorded.
    manifest: dict[str, Any] = field(default_factory=dict)
    version: str = "untrained"

    def save(self, folder: Path) -> None:
        """Write ``weights.npz`` and ``manifest.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, npt.NDArray[Any]] = {}
        heads: dict[str, dict[str, Any]] = {}
        for group, group_heads in (("fast", self.fast), ("stacked", self.stacked)):
            for task, head in sorted(group_heads.items()):
                key = f"{group}.{task}"
                arrays[f"{key}.weights"] = head.weights.astype(np.float16)
                arrays[f"{key}.bias"] = head.bias.astype(np.float32)
                heads[key] = {"classes": list(head.classes)}
        weights_bytes = deterministic_npz(arrays)
        (folder / WEIGHTS_FILE).write_bytes(weights_bytes)
        manifest = {
            **self.manifest,
            "features": self.features.to_json(),
            "heads": heads,
            "weights_sha256": hashlib.sha256(weights_bytes).hexdigest(),
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
        self.manifest = manifest
        self.version = version_of(text.encode())

    @classmethod
    def load(cls, folder: Path = SHIPPED_ARTIFACTS) -> LocalModel:
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: the folder has no trained model.
            ValueError: the weights do not match the manifest.
        """
        manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
        manifest = json.loads(manifest_bytes)
        weights_bytes = (folder / WEIGHTS_FILE).read_bytes()
        if hashlib.sha256(weights_bytes).hexdigest() != manifest["weights_sha256"]:
            raise ValueError(f"{folder / WEIGHTS_FILE} does not match {MANIFEST_FILE}")
        fast: dict[str, LinearHead] = {}
        stacked: dict[str, LinearHead] = {}
        with np.load(io.BytesIO(weights_bytes)) as arrays:
            for key, description in manifest["heads"].items():
                group, task = key.split(".", 1)
                head = LinearHead(
                    classes=tuple(description["classes"]),
                    # float32 in memory: scipy has no float16 sparse-dense product and
                    # would convert the matrix on every batch.
                    weights=arrays[f"{key}.weights"].astype(np.float32),
                    bias=arrays[f"{key}.bias"].astype(np.float32),
                )
                (fast if group == "fast" else stacked)[task] = head
        return cls(
            features=FeatureConfig(**manifest["features"]),
            fast=fast,
            stacked=stacked,
            manifest=manifest,
            version=version_of(manifest_bytes),
        )


def deterministic_npz(arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    """An ``.npz`` (zip of ``.npy``, deflated) whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps each member with the current time; here members are
    sorted by name and dated 1980-01-01, so retraining on the same data gives the same file.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in sorted(arrays.items()):
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(member, data.getvalue(), compresslevel=9)
    return buffer.getvalue()


def version_of(manifest_bytes: bytes) -> str:
    """The model version: ``local-`` and the first 12 hex digits of the manifest's SHA-256
    (the manifest holds the weights' hash, so this covers the weights too)."""
    return "local-" + hashlib.sha256(manifest_bytes).hexdigest()[:12]
