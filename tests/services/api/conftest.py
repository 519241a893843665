"""An API app on the real MongoDB and broker, and keys to call it with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import Stack

from pepite_api.app import create_app
from pepite_api.deps import ApiState
from pepite_api.keys import KeyRepository, Scope
from pepite_api.settings import Settings
from pepite_kit import KafkaSettings

SECRETS_KEY = "test-secrets-key-0123456789abcdef0123456789"


@pytest.fixture
def api_settings(stack: Stack, db_name: str, kafka_settings: KafkaSettings) -> Settings:
    return Settings(
        mongodb_uri=stack.mongodb_uri,
        mongodb_db=db_name,
        kafka_bootstrap=kafka_settings.kafka_bootstrap,
        kafka_topic_prefix=kafka_settings.kafka_topic_prefix,
        kafka_partitions=kafka_settings.kafka_partitions,
        secrets_key=SECRETS_KEY,
        webhook_allowed_targets=["127.0.0.1"],
        insights_cache_seconds=0,
        key_cache_seconds=0,
        # In-process apps share one process: the tests that ask load the model then.
        knowledge_warm_up=False,
    )


@dataclass
class Api:
    """A running app, an unauthenticated client, and a way to make keys."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def state(self) -> ApiState:
        state: ApiState = self.app.state.api
        return state

    async def key(
        self,
        community_id: str | None,
        *scopes: Scope,
        rate_limit_per_minute: int | None = None,
    ) -> str:
        created = await KeyRepository(self.state.db).create(
            name="test",
            community_id=community_id,
            scopes=list(scopes) or [Scope.READ],
            rate_limit_per_minute=rate_limit_per_minute,
        )
        return created.key

    async def client_for(
        self, community_id: str | None, *scopes: Scope, rate_limit_per_minute: int | None = None
    ) -> httpx.AsyncClient:
        """A client that sends a new key of ``community_id`` with ``scopes``."""
        key = await self.key(community_id, *scopes, rate_limit_per_minute=rate_limit_per_minute)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {key}"},
        )


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[Api]:
    app = create_app(api_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield Api(app=app, client=client, settings=api_settings)
