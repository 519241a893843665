"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from pepite_api.identities import INDEXES
from pepite_api.routes import communities, health, people
from pepite_api.settings import Settings
from pepite_kit.http import MetricsMiddleware
from pepite_kit.mongo import mongo_database


def create_app(settings: Settings) -> FastAPI:
    """Build the app; clients are created in its lifespan, not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mongo_database(settings, app_name=settings.service_name, indexes=INDEXES) as db:
            app.state.db = db
            yield

    app = FastAPI(
        title="Pépite API",
        version="0.1.0",
        description="Community insights from every message.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(communities.router)
    app.include_router(people.router)
    app.mount("/metrics", make_asgi_app())
    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    return app
