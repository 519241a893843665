"""Streaming JSON plumbing shared by the JSON-based importers.

ijson's C backend parses a 25 MB export about as fast as ``json.load`` while
holding one message at a time, so importers use it whenever it is installed.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import ijson

from pepite_ingestor.importers.errors import ExportFormatError

#: Errors any ijson backend raises on malformed input.
JSON_ERRORS: tuple[type[Exception], ...] = (ijson.JSONError, UnicodeDecodeError)


def _pick_backend() -> ModuleType:
    # The pure-Python fallback is ~20x slower but still correct, so a missing
    # compiler on some platform costs speed, not the feature.
    try:
        backend: ModuleType = ijson.get_backend("yajl2_c")
    except (ImportError, ModuleNotFoundError):  # pragma: no cover - depends on the wheel
        backend = ijson  # ijson picks the best backend it can load
    return backend


#: The ijson backend in use (``yajl2_c`` when available).
BACKEND: ModuleType = _pick_backend()

# yajl renders a parse error as three lines: the message, ~30 bytes of input on
# each side of the error, and an arrow whose caret sits at this column.
_YAJL_CARET_COLUMN = 40
_YAJL_CONTEXT_BEFORE = 30
_NEWLINES_AS_SPACES = bytes.maketrans(b"\r\n", b"  ")


class TrackingReader:
    """A binary reader that remembers which bytes it last handed to the parser.

    ijson reports neither line nor byte offsets; knowing the chunk being parsed
    when an error happened lets :meth:`error_position` locate it in the file.
    A UTF-8 byte order mark, which some editors add, is skipped.

    Attributes:
        chunk: The last chunk returned by :meth:`read`.
        chunk_start: Offset in the file of ``chunk``'s first byte.
        at_eof: Whether a read has returned end of file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        """Wrap an open binary file positioned at its start.

        Args:
            raw: The file to read from.
        """
        self._raw = raw
        self._offset = 0
        self._bom = 0
        self._started = False
        self.chunk = b""
        self.chunk_start = 0
        self.at_eof = False

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes, like ``BinaryIO.read``.

        Args:
            size: How many bytes at most; ``-1`` for all that remain.

        Returns:
            The bytes read; empty at end of file.
        """
        if size == 0:
            # ijson probes with read(0) to tell text files from binary ones.
            return b""
        data = self._raw.read(size)
        if not self._started:
            self._started = True
            if data.startswith(codecs.BOM_UTF8):
                self._bom = self._offset = len(codecs.BOM_UTF8)
                data = data[len(codecs.BOM_UTF8) :]
        self.chunk_start = self._offset
        self.chunk = data
        self._offset += len(data)
        if not data:
            self.at_eof = True
        return data

    @property
    def is_empty(self) -> bool:
        """Whether the whole file has been read and held nothing (but a byte order mark)."""
        return self.at_eof and self._offset == self._bom

    def error_position(self, exc: Exception) -> str:
        """Say where in the file a parse error happened.

        Args:
            exc: The error ijson raised while reading through this reader.

        Returns:
            ``"byte N"`` when the error could be located (with the C backend):
            the parser gave up after reading N bytes, so the fault is at or just
            before the N-th byte. ``"byte N (end of file)"`` when the input
            stopped early, and ``"near byte N"`` (the end of the chunk being
            parsed) when the error could not be located.
        """
        if self.at_eof:
            return f"byte {self._offset} (end of file)"
        offset = _locate_yajl_error(str(exc), self.chunk)
        if offset is not None:
            return f"byte {self.chunk_start + offset}"
        return f"near byte {self._offset}"


def _locate_yajl_error(message: str, chunk: bytes) -> int | None:
    """Find the offset in ``chunk`` of the error yajl described, or None."""
    lines = message.split("\n")
    if len(lines) < 3 or "(right here)" not in lines[2]:
        return None
    try:
        context = lines[1].encode("utf-8")
    except UnicodeEncodeError:  # pragma: no cover - ijson decodes with replacement
        return None
    haystack = chunk.translate(_NEWLINES_AS_SPACES)
    # Usual case: yajl pads with 10 spaces, then 30 bytes before the error.
    pad = _YAJL_CARET_COLUMN - _YAJL_CONTEXT_BEFORE
    around = context[pad:]
    if len(context) > _YAJL_CARET_COLUMN and around:
        found = haystack.find(around)
        if found >= 0:
            return found + _YAJL_CONTEXT_BEFORE
    # The error is within the chunk's first 30 bytes: more padding, fewer bytes before it.
    for before in range(_YAJL_CONTEXT_BEFORE - 1, -1, -1):
        if haystack.startswith(context[_YAJL_CARET_COLUMN - before :]):
            return before
    return None


def describe_json_error(exc: Exception, reader: TrackingReader) -> str:
    """Turn an ijson error into a short problem description.

    Args:
        exc: The error ijson raised.
        reader: The reader the parser was reading from.

    Returns:
        One line such as ``"invalid JSON (lexical error: invalid char in json text)"``.
    """
    if isinstance(exc, UnicodeDecodeError):
        return "invalid JSON (the file is not UTF-8 text)"
    if reader.is_empty:
        return "file is empty"
    first_line = str(exc).strip().split("\n", 1)[0].strip().rstrip(".")
    if reader.at_eof:
        return f"file is truncated: the JSON ends before it is complete ({first_line})"
    return f"invalid JSON ({first_line})"


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """Open an export file for reading bytes, turning OS errors into one-line errors.

    Raises:
        ExportFormatError: the file is missing, a directory, or unreadable.
    """
    try:
        raw = path.open("rb")
    except FileNotFoundError as exc:
        raise ExportFormatError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise ExportFormatError(path, "is a directory, not an export file") from exc
    except PermissionError as exc:
        raise ExportFormatError(path, "permission denied") from exc
    except OSError as exc:
        raise ExportFormatError(path, f"cannot open file ({exc.strerror or exc})") from exc
    with raw:
        yield raw


@contextmanager
def open_export(path: Path) -> Iterator[TrackingReader]:
    """Open an export file for streaming JSON, turning OS errors into one-line errors.

    Args:
        path: The file to open.

    Yields:
        A :class:`TrackingReader` over the file.

    Raises:
        ExportFormatError: the file is missing, a directory, or unreadable.
    """
    with open_binary(path) as raw:
        yield TrackingReader(raw)


#: ijson events that open and close a container.
_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})

#: ijson's (prefix, event, value) triples.
JsonEvents = Iterator[tuple[str, str, Any]]


def json_kind(event: str) -> str:
    """What an ijson event opens, in words: ``"an object"``, ``"a string"``..."""
    kinds = {"start_map": "an object", "start_array": "an array", "null": "null"}
    return kinds.get(event, f"a {event}")


def skip_value(events: JsonEvents, *, opened: bool = False) -> None:
    """Consume the events of the next JSON value without building it.

    Args:
        events: The parser's events.
        opened: The value's opening event was already read (the value is a container).
    """
    depth = 1 if opened else 0
    for _prefix, event, _value in events:
        if event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
        if depth == 0:
            return


def build_value(events: JsonEvents, *, opened: str | None = None) -> Any:
    """Build the next JSON value (a small one: a header, a post).

    Args:
        events: The parser's events.
        opened: The value's opening event (``"start_map"``...), when it was already read.
    """
    builder = ijson.ObjectBuilder()
    depth = 0
    if opened is not None:
        builder.event(opened, None)
        depth = 1
    for _prefix, event, value in events:
        builder.event(event, value)
        if event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
        if depth == 0:
            return builder.value
    return builder.value
