"""Labeled evaluation files: one JSON object per line, ``{"id", "text", "label", ...}``.

A file ``<task>_<split>.jsonl`` holds task ``<task>``; the task name may itself contain
underscores (``sentiment_en_dev.jsonl`` is task ``sentiment_en``, split ``dev``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


class LabeledFileError(ValueError):
    """A labeled file cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class LabeledSet:
    """The rows of one labeled file, in file order."""

    path: Path
    task: str
    split: str
    sha256: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: npt.NDArray[np.str_]
    #: The 1-based line of each row in the file, for error messages.
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: npt.NDArray[np.intp]) -> LabeledSet:
        """The same set restricted to ``rows`` (indices, in the order given)."""
        return LabeledSet(
            path=self.path,
            task=self.task,
            split=self.split,
            sha256=self.sha256,
            ids=tuple(self.ids[row] for row in rows),
            texts=tuple(self.texts[row] for row in rows),
            labels=self.labels[rows],
            lines=tuple(self.lines[row] for row in rows),
        )


def task_and_split(path: Path) -> tuple[str, str]:
    """``("sentiment_en", "dev")`` for ``sentiment_en_dev.jsonl``.

    Raises:
        LabeledFileError: the name is not ``<task>_<split>.jsonl``.
    """
    stem = path.name.removesuffix(".jsonl")
    task, _, split = stem.rpartition("_")
    if not path.name.endswith(".jsonl") or not task or not split:
        raise LabeledFileError(f"{path}: expected a name like <task>_<split>.jsonl")
    return task, split


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_labeled(path: Path) -> LabeledSet:
    """Read and check every line of a labeled file.

    Raises:
        LabeledFileError: the file is unreadable or a line is not an object with string
            ``id``, ``text`` and ``label`` (the message names the file and the line).
    """
    task, split = task_and_split(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LabeledFileError(f"{path}: cannot read: {error.strerror or error}") from error
    ids: list[str] = []
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabeledFileError(f"{path}:{number}: not JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise LabeledFileError(f"{path}:{number}: expected a JSON object")
        for key in ("id", "text", "label"):
            if not isinstance(row.get(key), str):
                raise LabeledFileError(f"{path}:{number}: '{key}' must be a string")
        ids.append(row["id"])
        texts.append(row["text"])
        labels.append(row["label"])
        lines.append(number)
    if not texts:
        raise LabeledFileError(f"{path}: no rows")
    return LabeledSet(
        path=path,
        task=task,
        split=split,
        sha256=hashlib.sha256(raw).hexdigest(),
        ids=tuple(ids),
        texts=tuple(texts),
        labels=np.asarray(labels, dtype=np.str_),
        lines=tuple(lines),
    )
