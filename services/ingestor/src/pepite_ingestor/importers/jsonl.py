"""Stream a JSON Lines export as Pépite events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["iter_jsonl_export", "sniff_jsonl"]


def sniff_jsonl(path: Path, head: bytes) -> bool:
    """Recognise a JSON Lines export."""
    del path, head
    return False


def iter_jsonl_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a JSON Lines export."""
    del community_id
    raise UnknownFormatError(path, "the jsonl importer is not available yet")
