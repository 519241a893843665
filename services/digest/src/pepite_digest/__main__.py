"""Start the digest service: ``python -m pepite_digest``.

It publishes each community's weekly digest on its schedule (``digest.published`` on
the notifications topic) and serves /healthz and /metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pepite_contracts import Topic
from pepite_digest.repository import DIGEST_INDEXES
from pepite_digest.schedule import SCHEDULE_INDEXES, DigestScheduler
from pepite_digest.settings import Settings
from pepite_kit import Runtime, WorkerSpec, run_worker


def main() -> None:
    settings = Settings()

    def background(runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        scheduler = DigestScheduler(
            runtime.db,
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
            poll_s=settings.digest_poll_seconds,
        )
        return [scheduler.run_forever]

    run_worker(
        WorkerSpec(
            name=settings.service_name,
            indexes=[*DIGEST_INDEXES, *SCHEDULE_INDEXES],
            build_background=background,
        ),
        settings,
    )


if __name__ == "__main__":
    main()
