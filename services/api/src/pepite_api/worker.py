"""Deliver webhooks, keep the moderation queue, export the community gauges:
``python -m pepite_api.worker``.

Consumes the notifications topic, stores one delivery per event and subscription that
asked for it, and attempts the deliveries (and their retries) in the background. It
runs apart from the API so that slow receivers never hold a request, and any number
of workers can run side by side: they share the topic through their consumer group
and the deliveries through leases (see ``pepite_api.webhooks.dispatcher``). It also
refreshes the per-community and dead-letter gauges on its /metrics
(``pepite_api.community_gauges_refresher``): one process exports them, not every
service; with several workers, each exports the same values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pepite_api.community_gauges_refresher import GaugeRefresher
from pepite_api.community_gauges_repository import COMMUNITY_GAUGE_INDEXES
from pepite_api.moderation import MODERATION_INDEXES, ModerationQueueHandler, ModerationRepository
from pepite_api.settings import Settings
from pepite_api.webhooks.crypto import SECRETS_KEY_SETTING, SecretBox
from pepite_api.webhooks.dispatcher import DeliveryDispatcher
from pepite_api.webhooks.handlers import NotificationHandler
from pepite_api.webhooks.repository import (
    WEBHOOK_INDEXES,
    DeliveryRepository,
    SubscriptionRepository,
)
from pepite_contracts import Topic
from pepite_kit import ConsumerLoop, Runtime, WorkerSpec, event_loop_for, run_worker

SERVICE_NAME = "api-worker"


class WebhookWorker:
    """The worker's parts, built once per process: one dispatcher, one consumer loop.

    Args:
        settings: The API's settings; ``secrets_key`` must be set.

    Raises:
        ValueError: ``secrets_key`` is not set, so no delivery could be signed.
    """

    def __init__(self, settings: Settings) -> None:
        box = SecretBox.from_settings(settings)
        if box is None:
            raise ValueError(
                f"set {SECRETS_KEY_SETTING} (the API's): webhook secrets cannot be read without it"
            )
        self.settings = settings
        self._box = box
        self._dispatcher: DeliveryDispatcher | None = None

    def dispatcher(self, runtime: Runtime) -> DeliveryDispatcher:
        if self._dispatcher is None:
            self._dispatcher = DeliveryDispatcher(runtime.db, self.settings, self._box)
        return self._dispatcher

    def build_loops(self, runtime: Runtime) -> Sequence[ConsumerLoop[Any]]:
        settings = self.settings
        handler = NotificationHandler(
            SubscriptionRepository(runtime.db),
            DeliveryRepository(runtime.db),
            wake=self.dispatcher(runtime).wake,
        )
        moderation = ModerationQueueHandler(
            ModerationRepository(runtime.db),
            runtime.publisher,
            threshold=settings.moderation_threshold,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
        )
        return [
            event_loop_for(
                name="webhook-notifications",
                settings=settings,
                group_id=settings.webhook_consumer_group,
                handlers={settings.topic_name(Topic.NOTIFICATIONS): handler},
                publisher=runtime.publisher,
            ),
            # The moderation queue follows analyses, and forgets erased authors.
            event_loop_for(
                name="moderation-queue",
                settings=settings,
                group_id=f"{settings.webhook_consumer_group}-moderation",
                handlers={
                    settings.topic_name(Topic.MESSAGES_ANALYZED): moderation,
                    settings.topic_name(Topic.MEMBERS_EVENTS): moderation,
                },
                publisher=runtime.publisher,
            ),
        ]

    def build_background(self, runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        gauges = GaugeRefresher(runtime.db, self.settings)
        return [self.dispatcher(runtime).run_forever, gauges.run_forever]

    def spec(self) -> WorkerSpec:
        return WorkerSpec(
            name=SERVICE_NAME,
            indexes=[*WEBHOOK_INDEXES, *MODERATION_INDEXES, *COMMUNITY_GAUGE_INDEXES],
            build_loops=self.build_loops,
            build_background=self.build_background,
        )


def main() -> None:
    settings = Settings()
    try:
        worker = WebhookWorker(settings)
    except ValueError as exc:
        raise SystemExit(f"{SERVICE_NAME}: {exc}") from None
    # The worker serves /healthz and /metrics on its own port, beside the API's.
    run_worker(worker.spec(), settings.model_copy(update={"http_port": settings.api_worker_port}))


if __name__ == "__main__":
    main()
