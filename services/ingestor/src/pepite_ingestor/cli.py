"""``pepite import``: read community exports and publish them as normalized events."""

from __future__ import annotations

import asyncio
import time
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

from pepite_contracts import all_topics
from pepite_ingestor.importers import (
    FOLDER_FORMATS,
    ExportFormatError,
    UnknownFormatError,
    detect_format,
    supported_formats,
)
from pepite_ingestor.pipeline import FileProgress, ImportWorkerError, import_files
from pepite_ingestor.settings import Settings
from pepite_kit import EventPublisher, ensure_topics
from pepite_kit.cli import fail, require_community_id
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
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes reading files in parallel (default: one per core, per file)."
        ),
    ] = None,
) -> None:
    """Import community exports: every message is published to Kafka once per run.

    Importing the same export again is safe: messages keep their stable ids, so
    nothing is stored twice.
    """
    require_community_id(community)
    settings = Settings()
    try:
        # Refuse unreadable or unknown files before anything is published; formats
        # are detected once, here.
        files: list[tuple[Path, str]] = []
        for path in _export_files(paths, export_format):
            if export_format is None:
                files.append((path, detect_format(path)))
            elif export_format not in supported_formats():
                raise UnknownFormatError(
                    str(path),
                    f"unknown format {export_format!r} (supported: "
                    f"{', '.join(supported_formats())})",
                )
            else:
                files.append((path, export_format))
    except ExportFormatError as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(_import(files, community, export_format, settings, progress, workers))
    except ExportFormatError as exc:
        raise fail(str(exc)) from None
    except KafkaError as exc:
        raise fail(f"Kafka at {settings.kafka_bootstrap}: {exc}") from None
    except ImportWorkerError as exc:
        raise fail(f"import failed: {exc}") from None


async def _import(  # noqa: PLR0917 - a private helper of the command above
    files: list[tuple[Path, str]],
    community: str,
    export_format: str | None,
    settings: Settings,
    show_progress: bool,
    workers: int | None,
) -> None:
    await ensure_topics(settings, settings.topic_names(all_topics()))
    started = time.perf_counter()
    async with EventPublisher(settings, client_id=f"{settings.kafka_client_id}-import") as pub:
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
            tasks: dict[Path, TaskID] = {}

            def show(file: FileProgress) -> None:
                if file.path not in tasks:
                    tasks[file.path] = bar.add_task(file.path.name, total=None)
                bar.update(tasks[file.path], completed=file.total)
                if file.done:
                    bar.update(tasks[file.path], total=file.total)

            topic_names = {topic: settings.topic_name(topic) for topic in all_topics()}

            async def send(records: list[tuple[str, bytes, bytes]]) -> None:
                await pub.send_many((topic_names[t], key, value) for t, key, value in records)

            results = await import_files(
                files,
                community,
                send=send,
                flush=pub.flush,
                flush_every=settings.import_flush_every,
                max_event_bytes=settings.import_max_event_bytes,
                workers=workers,
                on_progress=show,
            )
    seconds = time.perf_counter() - started
    for file in results:
        for reason in file.skipped:
            typer.echo(f"pepite: warning: {file.path}: {reason}", err=True)
        for event_type, count in file.by_type.items():
            IMPORT_RECORDS.labels(export_format or "auto", event_type).inc(count)
        if file.error is None:
            typer.echo(
                f"imported {file.path}: {file.messages} messages, "
                f"{file.total - file.messages} other events into community {community}"
            )
    total = sum(file.total for file in results)
    rate = total / seconds if seconds > 0 else 0.0
    bad = [file.error for file in results if file.error is not None]
    typer.echo(
        f"import done: {len(results) - len(bad)} file(s), {total} events in {seconds:.1f}s "
        f"({rate:,.0f} events/s)" + (f"; {len(bad)} file(s) failed" if bad else "")
    )
    if bad:
        for error in bad:
            typer.echo(f"pepite: {error}", err=True)
        raise typer.Exit(1)
