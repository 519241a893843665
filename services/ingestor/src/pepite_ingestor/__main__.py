"""Start the ingestor service: ``python -m pepite_ingestor``.

The service process hosts the live platform adapters (Slack Events API, the generic
signed webhook, the Discord gateway), each switched on by its secret in the settings.
History exports are read by the ``pepite import`` command, which publishes through the
same contracts and routing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.types import ASGIApp

from pepite_ingestor.live.app import create_live_app, live_background_jobs
from pepite_ingestor.live.sink import KafkaEventSink
from pepite_ingestor.repository import INDEXES, DeliveryRepository
from pepite_ingestor.settings import Settings
from pepite_kit import Runtime, WorkerSpec, run_worker


def main() -> None:
    settings = Settings()

    def sink(runtime: Runtime) -> KafkaEventSink:
        return KafkaEventSink(runtime.publisher, settings.topic_name)

    def build_app(runtime: Runtime) -> ASGIApp | None:
        return create_live_app(settings, sink(runtime), DeliveryRepository(runtime.db))

    def build_background(runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        return live_background_jobs(settings, sink(runtime))

    spec = WorkerSpec(
        name=settings.service_name,
        indexes=INDEXES,
        build_app=build_app,
        build_background=build_background,
    )
    run_worker(spec, settings)


if __name__ == "__main__":
    main()
