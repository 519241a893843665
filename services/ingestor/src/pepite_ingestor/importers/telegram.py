"""Stream a Telegram export as Pépite events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["iter_telegram_export", "sniff_telegram"]


def sniff_telegram(path: Path, head: bytes) -> bool:
    """Recognise a Telegram export."""
    del path, head
    return False


def iter_telegram_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a Telegram export."""
    del community_id
    raise UnknownFormatError(path, "the telegram importer is not available yet")
