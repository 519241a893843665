"""Import exports with every core: parsing in worker processes, publishing in this one.

Reading an export is CPU-bound (JSON parsing, validation, serialization: ~50 µs a
message), while publishing pre-encoded records costs a fraction of that. So worker
processes read whole files (each file's messages stay in order, and so does each
channel's partition) and send encoded records through a pipe in chunks; this
process publishes them. A full pipe blocks its worker, which bounds memory whatever
the size of the export.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from pepite_contracts import encode_event
from pepite_ingestor.importers import (
    ExportFormatError,
    detect_format,
    export_shares,
    iter_export,
)
from pepite_ingestor.importers.common import ImportedEvent
from pepite_ingestor.service import route

#: Records a worker sends at a time: large enough that pickling and the pipe cost
#: ~1 µs a record, small enough that a chunk is well under a megabyte or two.
CHUNK_RECORDS = 1000

# Encoded records as (topic, key, value); topics are contract names, unprefixed.
Record = tuple[str, bytes, bytes]


@dataclass
class FileProgress:
    """How far the import of one file went."""

    path: Path
    by_type: dict[str, int] = field(default_factory=dict)
    done: bool = False
    #: Set when the file turned out malformed; says how many of its events were published.
    error: ExportFormatError | None = None
    #: Events left out, and why (too big to publish).
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    @property
    def messages(self) -> int:
        return self.by_type.get("message.ingested", 0)


class ImportWorkerError(RuntimeError):
    """A worker process failed for a reason other than a bad export."""


@dataclass(frozen=True)
class _Job:
    index: int
    path: Path
    fmt: str | None
    #: A share of the export's conversations, when it is split between workers.
    channels: tuple[str, ...] | None = None


def _oversized(event: ImportedEvent, size: int, limit: int) -> str:
    payload = event.payload
    what = f"message {payload.id}" if hasattr(payload, "id") else event.type
    return (
        f"{what} is {size:,} bytes once encoded, over the {limit:,}-byte limit of one "
        "event (PEPITE_IMPORT_MAX_EVENT_BYTES); skipped"
    )


def _read_files(
    jobs: Any,  # multiprocessing queue of _Job | None
    conn: Connection,
    community_id: str,
    max_event_bytes: int,
) -> None:
    """Worker process body: read the files it is given, send their encoded events."""
    try:
        while (job := jobs.get()) is not None:
            chunk: list[Record] = []
            counts: dict[str, int] = {}
            try:
                for event in iter_export(job.path, community_id, job.fmt, channels=job.channels):
                    topic, key = route(event)
                    value = encode_event(event)
                    if len(value) > max_event_bytes:
                        # One absurd message (a pasted log, a corrupt field) must neither
                        # fail the broker request nor stop the import of everything else.
                        conn.send(
                            ("skipped", job.index, _oversized(event, len(value), max_event_bytes))
                        )
                        continue
                    chunk.append((topic, key, value))
                    counts[event.type] = counts.get(event.type, 0) + 1
                    if len(chunk) >= CHUNK_RECORDS:
                        conn.send(("records", job.index, chunk, counts))
                        chunk, counts = [], {}
            except ExportFormatError as exc:
                # What came before the damage is good; the other files are still imported.
                conn.send(("records", job.index, chunk, counts))
                conn.send(("bad-export", job.index, exc))
                continue
            conn.send(("records", job.index, chunk, counts))
            conn.send(("done", job.index))
        conn.send(("exit",))
    except BaseException as exc:  # a worker must always say why it stopped
        conn.send(("crash", "".join(traceback.format_exception(exc)).strip()))
    finally:
        conn.close()


async def import_files(
    files: Sequence[tuple[Path, str | None]],
    community_id: str,
    *,
    send: Callable[[list[Record]], Awaitable[None]],
    flush: Callable[[], Awaitable[None]],
    flush_every: int,
    max_event_bytes: int = 1024 * 1024,
    workers: int | None = None,
    on_progress: Callable[[FileProgress], None] | None = None,
) -> list[FileProgress]:
    """Read ``files`` in worker processes and publish their events.

    Args:
        files: Each export and its format (``None`` to detect it).
        community_id: The community the events belong to.
        send: Queues records in order: ``await send([(topic, key, value), ...])``.
        flush: Waits until every queued record is acknowledged.
        flush_every: Flush after this many records.
        max_event_bytes: Events bigger than this once encoded are skipped and reported in
            :attr:`FileProgress.skipped`.
        workers: Worker processes; defaults to the number of cores, at most one a file.
        on_progress: Called with a file's progress after each chunk.

    Returns:
        The progress of every file, in the order given.

    A malformed file does not stop the others: what came before the damage is published
    and its :attr:`FileProgress.error` says so.

    Raises:
        ImportWorkerError: a worker failed unexpectedly; nothing more is read.
    """
    run = _ParallelImport(files, send=send, flush=flush, flush_every=flush_every)
    if not files:
        return run.progress
    wanted = max(1, workers or os.cpu_count() or 1)
    jobs = run.plan(wanted)
    run.start(community_id, jobs, min(wanted, len(jobs)), max_event_bytes)
    try:
        await run.publish_all(on_progress)
    finally:
        run.stop()
    return run.progress


class _ParallelImport:
    def __init__(
        self,
        files: Sequence[tuple[Path, str | None]],
        *,
        send: Callable[[list[Record]], Awaitable[None]],
        flush: Callable[[], Awaitable[None]],
        flush_every: int,
    ) -> None:
        self.files = files
        self.progress = [FileProgress(path) for path, _ in files]
        self._send = send
        self._flush = flush
        self._flush_every = flush_every
        self._since_flush = 0
        # Workers' chunks are published one at a time: the publisher's batches are shared.
        self._lock = asyncio.Lock()
        self._pipes: list[Connection] = []
        self._parts_left: dict[int, int] = {}
        self._processes: list[BaseProcess] = []

    def plan(self, workers: int) -> list[_Job]:
        """One job a file, or a job a share of a big export of many conversations."""
        jobs: list[_Job] = []
        for index, (path, fmt) in enumerate(self.files):
            shares = export_shares(path, fmt or detect_format(path), workers)
            self._parts_left[index] = len(shares)
            jobs.extend(_Job(index, path, fmt, share) for share in shares)
        return jobs

    def start(
        self, community_id: str, planned: list[_Job], count: int, max_event_bytes: int
    ) -> None:
        # Spawned, not forked: the parent may already run threads (Kafka client, progress bar).
        context = multiprocessing.get_context("spawn")
        # Kept on self: the queue must outlive start() until every worker has unpickled it.
        self._jobs = jobs = context.SimpleQueue()
        for job in planned:
            jobs.put(job)
        for _ in range(count):
            jobs.put(None)
        for number in range(count):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_read_files,
                args=(jobs, sender, community_id, max_event_bytes),
                name=f"pepite-import-{number}",
                daemon=True,
            )
            process.start()
            sender.close()
            self._pipes.append(receiver)
            self._processes.append(process)

    async def publish_all(self, on_progress: Callable[[FileProgress], None] | None) -> None:
        tasks = [asyncio.create_task(self._drain(conn, on_progress)) for conn in self._pipes]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = next((task.exception() for task in done if task.exception() is not None), None)
        if failed is not None:
            for process in self._processes:
                process.terminate()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Whatever was queued is acknowledged, so the counts reported are true.
        async with self._lock:
            await self._flush()
        if failed is not None:
            raise failed

    async def _drain(
        self, conn: Connection, on_progress: Callable[[FileProgress], None] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await loop.run_in_executor(None, conn.recv)
            except EOFError as exc:
                raise ImportWorkerError("an import worker exited without a word") from exc
            kind = message[0]
            if kind == "exit":
                return
            if kind == "crash":
                raise ImportWorkerError(message[1])
            file = self.progress[message[1]]
            if kind == "records":
                await self._publish(message[2])
                for event_type, n in message[3].items():
                    file.by_type[event_type] = file.by_type.get(event_type, 0) + n
            elif kind == "skipped":
                file.skipped.append(message[2])
            elif kind == "bad-export":
                bad: ExportFormatError = message[2]
                file.done = True
                file.error = file.error or ExportFormatError(
                    bad.path,
                    f"{bad.problem} ({file.total} events of this file before it were "
                    "published; fix the file and import it again, nothing will be duplicated)",
                    bad.position,
                )
            else:  # "done": one part of the file; the file is done with its last part
                self._parts_left[message[1]] -= 1
                file.done = self._parts_left[message[1]] == 0
            if on_progress is not None:
                on_progress(file)

    async def _publish(self, chunk: list[Record]) -> None:
        async with self._lock:
            await self._send(chunk)
            self._since_flush += len(chunk)
            if self._since_flush >= self._flush_every:
                await self._flush()
                self._since_flush = 0

    def stop(self) -> None:
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        for conn in self._pipes:
            conn.close()
