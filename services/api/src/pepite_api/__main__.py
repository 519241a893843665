"""Start the API gateway: ``python -m pepite_api``."""

from __future__ import annotations

import os
import tempfile

import uvicorn
from fastapi import FastAPI

from pepite_api.app import create_app
from pepite_api.settings import Settings
from pepite_kit.http import MULTIPROCESS_DIR_ENV
from pepite_kit.logging import configure_logging


def app_from_environment() -> FastAPI:
    """The app of one worker process (each reads the same environment)."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    return create_app(settings)


def main() -> None:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    if settings.workers == 1:
        _serve(settings)
        return
    # Set before the workers start, so each of them counts in files the others read.
    with tempfile.TemporaryDirectory(prefix="pepite-api-metrics-") as metrics_dir:
        os.environ[MULTIPROCESS_DIR_ENV] = metrics_dir
        _serve(settings)


def _serve(settings: Settings) -> None:
    uvicorn.run(
        "pepite_api.__main__:app_from_environment",
        factory=True,
        workers=settings.workers,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
