"""Stream a Slack export as Pépite events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.importers.errors import UnknownFormatError

__all__ = ["iter_slack_export", "sniff_slack"]


def sniff_slack(path: Path, head: bytes) -> bool:
    """Recognise a Slack export."""
    del path, head
    return False


def iter_slack_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a Slack export."""
    del community_id
    raise UnknownFormatError(path, "the slack importer is not available yet")
