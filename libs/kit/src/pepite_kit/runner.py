"""Start, supervise and stop a worker service the same way in every service."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp

from pepite_contracts import all_topics
from pepite_kit.consumer import ConsumerLoop, LoopState
from pepite_kit.http import embedded_server, health_app
from pepite_kit.logging import configure_logging
from pepite_kit.mongo import Database, IndexSpec, mongo_database, ping
from pepite_kit.producer import EventPublisher, ensure_topics
from pepite_kit.settings import ServiceSettings

logger = logging.getLogger(__name__)

_STARTUP_RETRY_S = 2.0


@dataclass
class Runtime:
    """What a running service holds: its settings and clients, created in the lifespan."""

    settings: ServiceSettings
    db: Database
    publisher: EventPublisher
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


BuildLoops = Callable[[Runtime], Sequence[ConsumerLoop[Any]]]
#: An ASGI app served beside ``/healthz``, ``/readyz`` and ``/metrics`` (e.g. webhook endpoints).
BuildApp = Callable[[Runtime], ASGIApp | None]
#: Long-running coroutines (e.g. a platform gateway client); each runs until the service stops.
BuildBackground = Callable[[Runtime], Sequence[Callable[[], Awaitable[None]]]]


def _no_loops(_: Runtime) -> Sequence[ConsumerLoop[Any]]:
    return ()


def _no_app(_: Runtime) -> ASGIApp | None:
    return None


def _no_background(_: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
    return ()


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker service is: its indexes and its consumer loops."""

    name: str
    indexes: Iterable[IndexSpec] = ()
    build_loops: BuildLoops = _no_loops
    build_app: BuildApp = _no_app
    build_background: BuildBackground = _no_background
    startup_timeout_s: float = 120.0


def run_worker(spec: WorkerSpec, settings: ServiceSettings) -> None:
    """Run a worker until SIGTERM/SIGINT; exit non-zero if a loop failed."""
    configure_logging(spec.name, settings.log_level, settings.log_format)
    code = asyncio.run(_run_worker(spec, settings))
    sys.exit(code)


async def _retry_until(
    what: str, action: Callable[[], Awaitable[Any]], *, timeout_s: float, stopping: asyncio.Event
) -> bool:
    """Retry ``action`` until it succeeds, the timeout passes, or a stop is asked."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await action()
            return True
        except Exception as exc:
            if asyncio.get_running_loop().time() >= deadline:
                logger.error("%s still unavailable, giving up", what, extra={"error": repr(exc)})
                return False
            logger.warning("%s unavailable, retrying", what, extra={"error": repr(exc)})
        try:
            await asyncio.wait_for(stopping.wait(), timeout=_STARTUP_RETRY_S)
            return False
        except TimeoutError:
            pass


async def _run_worker(spec: WorkerSpec, settings: ServiceSettings) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    # Every service creates every topic with its dead-letter twin, so start order never matters.
    topics = settings.topic_names(all_topics())
    if not await _retry_until(
        "kafka",
        lambda: ensure_topics(settings, topics),
        timeout_s=spec.startup_timeout_s,
        stopping=stopping,
    ):
        return 0 if stopping.is_set() else 1

    async with AsyncExitStack() as stack:
        db: Database | None = None

        async def connect() -> None:
            nonlocal db
            db = await stack.enter_async_context(
                mongo_database(settings, app_name=spec.name, indexes=spec.indexes)
            )

        if not await _retry_until(
            "mongodb", connect, timeout_s=spec.startup_timeout_s, stopping=stopping
        ):
            return 0 if stopping.is_set() else 1
        assert db is not None
        publisher = await stack.enter_async_context(
            EventPublisher(settings, client_id=f"{settings.kafka_client_id}-{spec.name}")
        )
        runtime = Runtime(settings=settings, db=db, publisher=publisher, stopping=stopping)
        loops = list(spec.build_loops(runtime))
        background = list(spec.build_background(runtime))
        connected_db = db
        background_tasks: list[asyncio.Task[None]] = []

        async def loops_alive() -> bool:
            return all(item.state is LoopState.RUNNING for item in loops) and not any(
                task.done() for task in background_tasks
            )

        async def mongo_ok() -> bool:
            return await ping(connected_db)

        app = health_app(
            service=spec.name,
            liveness={"consumers": loops_alive},
            readiness={"consumers": loops_alive, "mongodb": mongo_ok},
        )
        extra_app = spec.build_app(runtime)
        if extra_app is not None:
            # Health and metrics routes are matched first; everything else goes to the service.
            app.router.routes.append(Mount("/", app=extra_app))
        server = embedded_server(app, host=settings.http_host, port=settings.http_port)
        server_task = asyncio.create_task(server.serve(), name="http")
        loop_tasks = [asyncio.create_task(item.run(), name=item.name) for item in loops]
        background_tasks.extend(
            asyncio.create_task(_as_coroutine(job), name=f"background-{index}")
            for index, job in enumerate(background)
        )
        stop_task = asyncio.create_task(stopping.wait(), name="stop")
        logger.info(
            "service started",
            extra={"http": f"{settings.http_host}:{settings.http_port}", "loops": len(loops)},
        )
        done, _ = await asyncio.wait(
            [stop_task, server_task, *loop_tasks, *background_tasks],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in background_tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error(
                    "background task failed",
                    extra={"task": task.get_name(), "error": repr(task.exception())},
                )
        failed = any(task is not stop_task and task.done() for task in done)
        logger.info("service stopping", extra={"reason": "failure" if failed else "signal"})
        for item in loops:
            item.stop()
        for task in background_tasks:
            task.cancel()
        await asyncio.gather(*background_tasks, return_exceptions=True)
        results = await asyncio.gather(*loop_tasks, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(server_task, return_exceptions=True)
        stop_task.cancel()
        failed = failed or any(isinstance(result, BaseException) for result in results)
        return 1 if failed else 0


async def _as_coroutine(job: Callable[[], Awaitable[None]]) -> None:
    await job()
