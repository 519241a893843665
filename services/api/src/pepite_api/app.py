"""The FastAPI application."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pepite_api.alerts import ALERT_REVIEW_INDEXES
from pepite_api.cache import SharedCache
from pepite_api.deps import ApiState
from pepite_api.identities import INDEXES as IDENTITY_INDEXES
from pepite_api.keys import KEY_INDEXES, KeyCache
from pepite_api.limits import BodySizeLimitMiddleware
from pepite_api.messages import MESSAGE_INDEXES, MESSAGES, OBSOLETE_MESSAGE_INDEXES
from pepite_api.moderation import MODERATION_INDEXES
from pepite_api.privacy import PRIVACY_INDEXES
from pepite_api.problems import Problem, install_problem_handlers
from pepite_api.ratelimit import (
    RATE_USAGE_INDEXES,
    RateLimiter,
    RateUsageRepository,
    share_rate_limits,
)
from pepite_api.routes import (
    alerts,
    communities,
    digests,
    health,
    insights,
    journals,
    keys,
    knowledge,
    kpis,
    leaderboards,
    members,
    messages,
    moderation,
    people,
    questions,
    topics,
)
from pepite_api.routes.knowledge import new_knowledge_base
from pepite_api.settings import Settings
from pepite_api.strikes import STRIKE_INDEXES
from pepite_api.webhooks.repository import WEBHOOK_INDEXES
from pepite_api.webhooks.routes import router as webhooks_router
from pepite_kit import EventPublisher, IndexSpec
from pepite_kit.http import MetricsMiddleware, metrics_app
from pepite_kit.mongo import drop_obsolete_indexes, mongo_database
from pepite_reports.leaderboards import LEADERBOARD_INDEXES

DESCRIPTION = """Community insights from every message.

Authenticate with an API key: `Authorization: Bearer pep_...`. A key belongs to one
community (or, for operators, to none) and has a scope: `read`, `write` or `admin`, each
including the ones before. Lists are paginated with cursors: pass `next_cursor` back as
`cursor` until it is null. Errors are `application/problem+json`.
"""


def api_indexes() -> Iterable[IndexSpec]:
    """Indexes the API's own collections and reads need."""
    return (
        *IDENTITY_INDEXES,
        *KEY_INDEXES,
        *RATE_USAGE_INDEXES,
        *WEBHOOK_INDEXES,
        *MESSAGE_INDEXES,
        *MODERATION_INDEXES,
        *STRIKE_INDEXES,
        *ALERT_REVIEW_INDEXES,
        *PRIVACY_INDEXES,
        *LEADERBOARD_INDEXES,
    )


def create_app(settings: Settings) -> FastAPI:
    """Build the app; clients are created in its lifespan, not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            mongo_database(settings, app_name=settings.service_name, indexes=api_indexes()) as db,
            EventPublisher(settings, client_id=f"{settings.kafka_client_id}-api") as publisher,
        ):
            await drop_obsolete_indexes(db, MESSAGES, OBSOLETE_MESSAGE_INDEXES)
            limiter = RateLimiter(
                default_per_minute=settings.rate_limit_per_minute,
                burst_s=settings.rate_limit_burst_seconds,
            )
            app.state.api = ApiState(
                settings=settings,
                db=db,
                publisher=publisher,
                keys=KeyCache(settings.key_cache_seconds),
                limiter=limiter,
                touched={},
                reports=SharedCache(settings.insights_cache_seconds),
            )
            # What start-up built lives as long as the process: kept out of the garbage
            # collector's full passes, which otherwise walk it again and again and pause
            # every request under way while they do.
            gc.collect()
            gc.freeze()
            # The FAQ's model takes seconds to load: load it beside serving, not on
            # the first question (whose asker would wait for it).
            app.state.knowledge = new_knowledge_base(app.state.api)
            warming = asyncio.create_task(
                app.state.knowledge.warm_up() if settings.knowledge_warm_up else asyncio.sleep(0),
                name="warm-up-faq",
            )
            sharing = asyncio.create_task(
                share_rate_limits(
                    limiter, RateUsageRepository(db), sync_s=settings.rate_limit_sync_seconds
                ),
                name="share-rate-limits",
            )
            try:
                yield
            finally:
                sharing.cancel()
                warming.cancel()
                await asyncio.gather(sharing, warming, return_exceptions=True)

    app = FastAPI(
        title="Pépite API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(communities.router)
    app.include_router(keys.router)
    app.include_router(members.router)
    app.include_router(journals.router)
    app.include_router(people.router)
    app.include_router(insights.router)
    app.include_router(kpis.router)
    app.include_router(messages.router)
    app.include_router(topics.router)
    app.include_router(moderation.router)
    app.include_router(alerts.router)
    app.include_router(knowledge.router)
    app.include_router(leaderboards.router)
    app.include_router(digests.router)
    app.include_router(questions.router)
    app.include_router(webhooks_router)
    app.mount("/metrics", metrics_app())
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, service=settings.service_name)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(
                Problem.model_json_schema(ref_template="#/components/schemas/{model}").pop(
                    "$defs", {}
                )
            )
            components["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components["Problem"].pop("$defs", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
