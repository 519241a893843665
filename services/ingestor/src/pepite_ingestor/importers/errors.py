"""Errors raised while reading chat exports.

Every error names the file and, when known, where in it the problem is, so the
import command can show a single line a person can act on.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ExportFormatError(Exception):
    """An export file cannot be read: missing, malformed, or not shaped as expected.

    Attributes:
        path: The file (or directory) being imported, as given.
        problem: What is wrong, in a few words.
        position: Where the problem is, when known: ``"byte 123456"``,
            ``"message #42 (id 1234)"`` (messages are counted from 1), or both.
    """

    def __init__(self, path: str | Path, problem: str, position: str | None = None) -> None:
        """Build the error.

        Args:
            path: The file being imported.
            problem: What is wrong, in a few words (one line).
            position: Where the problem is, if known.
        """
        self.path = str(path)
        self.problem = problem
        self.position = position
        super().__init__(self.path, problem, position)

    def __str__(self) -> str:
        """One line: ``<path>: <problem>`` plus `` at <position>`` when known."""
        # Problems may quote file content; a stray newline would break the one-line promise.
        text = f"{self.path}: {' '.join(self.problem.split())}"
        if self.position:
            text += f" at {self.position}"
        return text


class UnknownFormatError(ExportFormatError):
    """The file is not an export in any format this ingestor can read."""


def describe_contract_error(exc: ValidationError, *, within: str | None = None) -> str:
    """A contract validation error as ``invalid value for <field>: <reason>``.

    Used when nothing in the source looked wrong, so the contract field is the best name
    for the problem. The event envelope's ``payload`` level is left out of the field.

    Args:
        exc: The error.
        within: A prefix for the field (``"channel"`` for a header's channel).
    """
    error = exc.errors()[0]
    parts = [str(part) for part in error["loc"] if part != "payload"]
    if within is not None:
        parts.insert(0, within)
    return f"invalid value for {'.'.join(parts)}: {error['msg']}"
