"""Read chat exports from community platforms as Pépite events.

Typical use::

    for event in iter_export(Path("general.json"), "my-community"):
        publish(encode_event(event))

Every importer streams: it reads one message at a time, so memory stays flat
whatever the size of the export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from pepite_ingestor.importers.common import ImportedEvent, validate_community_id
from pepite_ingestor.importers.detect import SNIFFERS, Sniffer, detect_format
from pepite_ingestor.importers.discord import iter_discord_export
from pepite_ingestor.importers.discourse import iter_discourse_export
from pepite_ingestor.importers.errors import ExportFormatError, UnknownFormatError
from pepite_ingestor.importers.jsonl import iter_jsonl_export
from pepite_ingestor.importers.slack import iter_slack_export, slack_export_channels
from pepite_ingestor.importers.telegram import iter_telegram_export
from pepite_ingestor.importers.whatsapp import iter_whatsapp_export

__all__ = [
    "FOLDER_FORMATS",
    "IMPORTERS",
    "SNIFFERS",
    "ExportFormatError",
    "ImportedEvent",
    "Importer",
    "Sniffer",
    "UnknownFormatError",
    "detect_format",
    "export_shares",
    "iter_discord_export",
    "iter_export",
    "supported_formats",
    "validate_community_id",
]

#: An importer turns one export into events for one community.
Importer = Callable[[Path, str], Iterator[ImportedEvent]]

#: The importer for each format name; every name here has a sniffer in ``SNIFFERS``.
IMPORTERS: dict[str, Importer] = {
    "discord": iter_discord_export,
    "slack": iter_slack_export,
    "telegram": iter_telegram_export,
    "whatsapp": iter_whatsapp_export,
    "discourse": iter_discourse_export,
    "jsonl": iter_jsonl_export,
}


#: Formats whose export can be a folder (rather than one file) to read as a whole.
FOLDER_FORMATS = frozenset({"slack"})


def supported_formats() -> list[str]:
    """The format names :func:`iter_export` accepts, sorted."""
    return sorted(IMPORTERS)


def export_shares(path: Path | str, fmt: str, shares: int) -> list[tuple[str, ...] | None]:
    """Split one export into up to ``shares`` parts that can be read in parallel.

    Only exports holding several conversations in one file or folder (Slack) split;
    each conversation goes whole to one part, so its order is kept, and parts are
    balanced by size. Other exports are one part, ``None``.

    Raises:
        ExportFormatError: the export's metadata cannot be read.
    """
    if fmt != "slack" or shares < 2:
        return [None]
    sizes = slack_export_channels(path)
    parts: list[list[str]] = [[] for _ in range(min(shares, len(sizes)))]
    totals = [0] * len(parts)
    if not parts:
        return [None]
    for channel_id, size in sorted(sizes, key=lambda item: -item[1]):
        lightest = totals.index(min(totals))
        parts[lightest].append(channel_id)
        totals[lightest] += size
    return [tuple(part) for part in parts]


def iter_export(
    path: Path | str,
    community_id: str,
    fmt: str | None = None,
    *,
    channels: tuple[str, ...] | None = None,
) -> Iterator[ImportedEvent]:
    """Stream the events of an export, detecting its format unless told.

    Args:
        path: The export file.
        community_id: The Pépite community the messages belong to.
        fmt: A format name from :func:`supported_formats`; ``None`` to detect it.
        channels: A part from :func:`export_shares`: read only these conversations.

    Returns:
        An iterator of events, read lazily from the file.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file is missing or malformed (also while iterating).
        UnknownFormatError: ``fmt`` is not supported, or the format is not recognised.
    """
    validate_community_id(community_id)
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path)
    importer = IMPORTERS.get(fmt)
    if importer is None:
        raise UnknownFormatError(
            path, f"unknown format {fmt!r} (supported formats: {', '.join(supported_formats())})"
        )
    if channels is not None:
        if fmt != "slack":
            raise UnknownFormatError(path, f"format {fmt!r} cannot be read in parts")
        return iter_slack_export(path, community_id, channels=channels)
    return importer(path, community_id)
