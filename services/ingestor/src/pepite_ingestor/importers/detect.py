"""Tell which chat platform an export file comes from.

Each format registers a sniffer in :data:`SNIFFERS`; the first that recognises
the file wins. Sniffers look at the first :data:`HEAD_SIZE` bytes only, so
detection costs the same for a 1 KB and a 1 GB export.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable
from pathlib import Path

from pepite_ingestor.importers._jsonstream import (
    BACKEND,
    JSON_ERRORS,
    TrackingReader,
    describe_json_error,
    open_export,
)
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["HEAD_SIZE", "SNIFFERS", "Sniffer", "detect_format", "sniff_discord"]

#: How many bytes of a file sniffers get to look at.
HEAD_SIZE = 64 * 1024

#: A sniffer gets the path (some exports are directories) and the first
#: ``HEAD_SIZE`` bytes of the file (empty for a directory); True means "mine".
Sniffer = Callable[[Path, bytes], bool]

_WHITESPACE = b" \t\r\n"
# Fields every DCE message has; they identify an export whose header comes late.
_DCE_MESSAGE_FIELDS = frozenset({"id", "timestamp", "author"})


def _json_text(head: bytes) -> bytes:
    """The head without a UTF-8 byte order mark and leading whitespace."""
    return head.removeprefix(codecs.BOM_UTF8).lstrip(_WHITESPACE)


def sniff_discord(path: Path, head: bytes) -> bool:
    """Recognise a DiscordChatExporter JSON export.

    DCE writes a JSON object whose first keys are ``guild`` and ``channel``,
    then ``messages``. A file with ``messages`` first is recognised too when its
    first message looks like a DCE message, so the importer can explain what is
    wrong with it instead of calling it unknown.

    Args:
        path: The export (unused: the head is enough).
        head: The first bytes of the file.

    Returns:
        Whether the file looks like a DCE JSON export.
    """
    del path
    text = _json_text(head)
    if not text.startswith(b"{"):
        return False
    keys: set[str] = set()
    first_message: set[str] = set()
    try:
        for prefix, event, value in BACKEND.parse(io.BytesIO(text)):
            if event == "map_key":
                if prefix == "":
                    keys.add(value)
                    if "channel" in keys and ("guild" in keys or "messages" in keys):
                        return True
                elif prefix == "messages.item":
                    first_message.add(value)
            elif event == "end_map" and prefix == "messages.item":
                return first_message >= _DCE_MESSAGE_FIELDS
    except JSON_ERRORS:
        # Invalid JSON, or the head cut the document short: not recognisable here.
        return False
    return False


def _sniffers() -> dict[str, Sniffer]:
    # Imported here: format modules may use this module's helpers.
    from pepite_ingestor.importers.discourse import sniff_discourse
    from pepite_ingestor.importers.jsonl import sniff_jsonl
    from pepite_ingestor.importers.slack import sniff_slack
    from pepite_ingestor.importers.telegram import sniff_telegram
    from pepite_ingestor.importers.whatsapp import sniff_whatsapp

    # Most specific first: folders and zips, then line-based formats, then JSON documents.
    return {
        "slack": sniff_slack,
        "whatsapp": sniff_whatsapp,
        "jsonl": sniff_jsonl,
        "discord": sniff_discord,
        "telegram": sniff_telegram,
        "discourse": sniff_discourse,
    }


#: Every format the ingestor can detect, by name; the order is the order tried.
SNIFFERS: dict[str, Sniffer] = _sniffers()


def _read_head(path: Path) -> bytes:
    if path.is_dir():
        return b""
    with open_export(path) as reader:
        return reader.read(HEAD_SIZE)


def _describe(path: Path, head: bytes) -> tuple[str, str | None]:
    """Say what the file is instead, with a position when it is broken JSON."""
    if path.is_dir():
        return "a directory", None
    text = _json_text(head)
    if not text:
        return ("an empty file" if not head else "a file with only whitespace"), None
    if text[:1] not in (b"{", b"["):
        return "not a JSON file", None
    reader = TrackingReader(io.BytesIO(head))
    keys: list[str] = []
    is_array = text.startswith(b"[")
    try:
        for prefix, event, value in BACKEND.parse(reader):
            if prefix == "" and event == "map_key":
                keys.append(value)
    except JSON_ERRORS as exc:
        # A full head may end mid-document; only errors before that are real.
        if not (reader.at_eof and len(head) == HEAD_SIZE):
            return describe_json_error(exc, reader), reader.error_position(exc)
    if is_array:
        return "a JSON array, not an export object", None
    shown = ", ".join(repr(key) for key in keys[:8]) + (", ..." if len(keys) > 8 else "")
    return f"JSON of another shape (top-level keys: {shown or 'none'})", None


def detect_format(path: Path | str) -> str:
    """Name the format of an export file.

    Args:
        path: The export file (or directory, for formats exported as one).

    Returns:
        A key of :data:`SNIFFERS`, e.g. ``"discord"``.

    Raises:
        ExportFormatError: the file is missing or cannot be read.
        UnknownFormatError: the file is empty, not JSON, or JSON no sniffer recognises.
    """
    path = Path(path)
    head = _read_head(path)
    for name, sniffer in SNIFFERS.items():
        if sniffer(path, head):
            return name
    what, position = _describe(path, head)
    raise UnknownFormatError(
        path,
        f"not a supported chat export: {what} (supported formats: {', '.join(sorted(SNIFFERS))})",
        position,
    )
