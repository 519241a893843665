"""Stream a Discourse export as Pépite events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["iter_discourse_export", "sniff_discourse"]


def sniff_discourse(path: Path, head: bytes) -> bool:
    """Recognise a Discourse export."""
    del path, head
    return False


def iter_discourse_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a Discourse export."""
    del community_id
    raise UnknownFormatError(path, "the discourse importer is not available yet")
