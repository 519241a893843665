"""Stream a WhatsApp export as Pépite events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["iter_whatsapp_export", "sniff_whatsapp"]


def sniff_whatsapp(path: Path, head: bytes) -> bool:
    """Recognise a WhatsApp export."""
    del path, head
    return False


def iter_whatsapp_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a WhatsApp export."""
    del community_id
    raise UnknownFormatError(path, "the whatsapp importer is not available yet")
