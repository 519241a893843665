"""Serving the API: one process, or several workers sharing the port."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time

import uvicorn
from fastapi import FastAPI

from pepite_api.app import create_app
from pepite_api.settings import Settings
from pepite_kit.http import MULTIPROCESS_DIR_ENV
from pepite_kit.logging import configure_logging

logger = logging.getLogger(__name__)


def app_from_environment() -> FastAPI:
    """The app of one worker process (each reads the same environment)."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    return create_app(settings)


def main() -> None:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    if settings.workers == 1:
        uvicorn.run(
            "pepite_api.server:app_from_environment",
            factory=True,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
        )
        return
    # Set before the workers start, so each of them counts in files the others read.
    with tempfile.TemporaryDirectory(prefix="pepite-api-metrics-") as metrics_dir:
        os.environ[MULTIPROCESS_DIR_ENV] = metrics_dir
        sys.exit(_supervise(settings))


def _supervise(settings: Settings) -> int:
    """Run the workers until a signal, or until one of them dies (then stop them all).

    Each worker listens on its own socket bound with ``SO_REUSEPORT``: the kernel then
    spreads new connections evenly. With one shared socket, the worker that wakes first
    takes most of a burst of connections, and keep-alive clients stay with it.
    """
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(settings.http_host, settings.http_port))
        for _ in range(settings.workers)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.start()
    logger.info("api workers started", extra={"workers": len(workers)})
    while not stopping and all(worker.is_alive() for worker in workers):
        time.sleep(0.2)
    failed = not stopping
    if failed:
        logger.error("an api worker died; stopping the others")
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: uvicorn finishes the requests under way
    for worker in workers:
        worker.join(timeout=30)
        if worker.is_alive():
            worker.kill()
    return 1 if failed else 0


def _worker(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    # Listening before the app starts: connections the kernel gives this worker while it
    # starts wait for it, rather than all going to the workers that started first.
    sock.listen(2048)
    config = uvicorn.Config(
        "pepite_api.server:app_from_environment",
        factory=True,
        log_config=None,
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
