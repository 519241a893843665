"""Start the API gateway: ``python -m pepite_api``."""

from __future__ import annotations

import uvicorn

from pepite_api.app import create_app
from pepite_api.settings import Settings
from pepite_kit.logging import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
