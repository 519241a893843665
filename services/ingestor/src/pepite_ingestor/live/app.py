"""The live adapters the ingestor service runs, chosen by which secrets are set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI

from pepite_ingestor.live.discord_gateway import build_discord_gateway
from pepite_ingestor.live.sink import EventSink, ReplayGuard
from pepite_ingestor.live.slack_events import build_slack_events_router
from pepite_ingestor.live.webhook import build_webhook_router
from pepite_ingestor.settings import Settings


def create_live_app(settings: Settings, sink: EventSink, guard: ReplayGuard) -> FastAPI | None:
    """The HTTP endpoints platforms push to; None when no adapter is configured."""
    routers = [
        router
        for router in (
            build_slack_events_router(settings, sink, guard),
            build_webhook_router(settings, sink, guard),
        )
        if router is not None
    ]
    if not routers:
        return None
    app = FastAPI(
        title="Pépite ingestor",
        description="Endpoints community platforms deliver events to.",
        docs_url=None,
        redoc_url=None,
    )
    for router in routers:
        app.include_router(router)
    return app


def live_background_jobs(
    settings: Settings, sink: EventSink
) -> Sequence[Callable[[], Awaitable[None]]]:
    """Long-running gateway clients to run beside the HTTP endpoints."""
    gateway = build_discord_gateway(settings, sink)
    return [gateway] if gateway is not None else []
