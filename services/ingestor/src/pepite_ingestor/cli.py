"""``pepite import``: read community exports and publish them as normalized events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pepite_contracts import all_topics, validate_community_id
from pepite_ingestor.importers import (
    FOLDER_FORMATS,
    ExportFormatError,
    UnknownFormatError,
    detect_format,
    iter_export,
    supported_formats,
)
from pepite_ingestor.service import ImportCounts, publish_events
from pepite_ingestor.settings import Settings
from pepite_kit import EventPublisher, ensure_topics
from pepite_kit.cli import fail
from pepite_kit.metrics import IMPORT_RECORDS

_stderr = Console(stderr=True)


#: File types a folder of exports is searched for when the folder itself is not an export.
EXPORT_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".txt", ".zip"})


def _export_files(paths: list[Path], export_format: str | None) -> Iterator[Path]:
    """What to import: each file given; each folder given, as one export if it is one
    (a Slack workspace export is a folder), else every export file in it."""
    for path in paths:
        if not path.exists():
            raise ExportFormatError(str(path), "file not found")
        if not path.is_dir():
            yield path
            continue
        if export_format is not None and export_format in FOLDER_FORMATS:
            yield path
            continue
        if export_format is None:
            try:
                detect_format(path)
            except UnknownFormatError:
                pass
            else:
                yield path
                continue
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in EXPORT_SUFFIXES)
        if not files:
            raise ExportFormatError(
                str(path),
                "folder is not an export and holds no export files "
                f"({', '.join(sorted(EXPORT_SUFFIXES))})",
            )
        yield from files


def import_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Export files, or folders of them.", show_default=False)
    ],
    community: Annotated[
        str, typer.Option("--community", "-c", help="Community id to import into.")
    ],
    export_format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="Export format; detected from the file if omitted."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Import community exports: every message is published to Kafka once per run.

    Importing the same export again is safe: messages keep their stable ids, so
    nothing is stored twice.
    """
    try:
        validate_community_id(community)
    except ValueError as exc:
        raise fail(str(exc)) from None
    settings = Settings()
    try:
        files = list(_export_files(paths, export_format))
        # Refuse unreadable or unknown files before anything is published.
        for path in files:
            if export_format is None:
                detect_format(path)
            elif export_format not in supported_formats():
                raise UnknownFormatError(
                    str(path),
                    f"unknown format {export_format!r} (supported: "
                    f"{', '.join(supported_formats())})",
                )
    except ExportFormatError as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(_import(files, community, export_format, settings, progress))
    except ExportFormatError as exc:
        raise fail(str(exc)) from None
    except KafkaError as exc:
        raise fail(f"Kafka at {settings.kafka_bootstrap}: {exc}") from None


async def _import(
    files: list[Path],
    community: str,
    export_format: str | None,
    settings: Settings,
    show_progress: bool,
) -> None:
    await ensure_topics(settings, settings.topic_names(all_topics()))
    async with EventPublisher(settings, client_id=f"{settings.kafka_client_id}-import") as pub:
        for path in files:
            counts = ImportCounts()
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("events"),
                TimeElapsedColumn(),
                console=_stderr,
                disable=not (show_progress and _stderr.is_terminal),
                transient=True,
            ) as bar:
                task = bar.add_task(path.name, total=None)

                def show(counts: ImportCounts, bar: Progress = bar, task: TaskID = task) -> None:
                    bar.update(task, completed=counts.total)

                try:
                    await publish_events(
                        iter_export(path, community, export_format),
                        pub,
                        topic_name=settings.topic_name,
                        flush_every=settings.import_flush_every,
                        counts=counts,
                        on_progress=show,
                    )
                except ExportFormatError as exc:
                    await pub.flush()
                    raise ExportFormatError(
                        exc.path,
                        f"{exc.problem} ({counts.total} events before it were published; "
                        "fix the file and import it again, nothing will be duplicated)",
                        exc.position,
                    ) from exc
            for event_type, count in counts.by_type.items():
                IMPORT_RECORDS.labels(export_format or "auto", event_type).inc(count)
            rate = counts.total / counts.seconds if counts.seconds > 0 else 0.0
            member_events = counts.total - counts.messages
            typer.echo(
                f"imported {path}: {counts.messages} messages, {member_events} member events "
                f"into community {community} in {counts.seconds:.1f}s ({rate:,.0f} events/s)"
            )
