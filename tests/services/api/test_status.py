"""The API's status route against a real MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from tests.conftest import SyncDb
from tests.services.api.conftest import Api

from pepite_api.keys import Scope

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def client(api: Api, sync_db: SyncDb) -> AsyncIterator[httpx.AsyncClient]:
    async with await api.client_for(None, Scope.READ) as client:
        yield client


async def test_status_counts_what_is_stored(client: httpx.AsyncClient, sync_db: SyncDb) -> None:
    def message(community: str, n: int, day: datetime) -> dict[str, object]:
        return {"_id": f"discord:{community}:{n}", "community_id": community, "created_at": day}

    sync_db["messages"].insert_many(
        [
            message("acme", 1, datetime(2024, 5, 1, tzinfo=UTC)),
            message("acme", 2, datetime(2024, 5, 3, tzinfo=UTC)),
            message("other", 1, datetime(2020, 1, 1, tzinfo=UTC)),
        ]
    )
    # An insight still waiting for its topic, in each community.
    sync_db["messages"].update_many(
        {"_id": {"$in": ["discord:acme:2", "discord:other:1"]}}, {"$set": {"topic_pending": True}}
    )
    sync_db["members"].insert_one({"_id": "discord:acme:u1", "community_id": "acme"})
    sync_db["channels"].insert_one({"_id": "acme:c1", "community_id": "acme"})
    # The classifier's daily counters say how many were analyzed.
    sync_db["activity_rollups"].insert_many(
        [
            {"_id": "a", "community_id": "acme", "messages": 1},
            {"_id": "b", "community_id": "acme", "messages": 0},
            {"_id": "c", "community_id": "other", "messages": 1},
        ]
    )

    response = await client.get("/v1/communities/acme/status")
    assert response.status_code == 200
    assert response.json() == {
        "community_id": "acme",
        "messages": 2,
        "analyzed": 1,
        "awaiting_topic": 1,
        "members": 1,
        "channels": 1,
        "first_message_at": "2024-05-01T00:00:00Z",
        "last_message_at": "2024-05-03T00:00:00Z",
    }


async def test_an_unknown_community_is_empty_not_an_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/communities/nobody/status")
    assert response.status_code == 200
    assert response.json()["messages"] == 0


async def test_a_malformed_community_id_is_a_client_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/communities/a:b/status")
    assert response.status_code == 422


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
    await client.get("/v1/communities/acme/status")
    metrics = (await client.get("/metrics/")).text
    assert 'route="/v1/communities/{community_id}/status"' in metrics
    assert "acme" not in metrics  # labels carry route templates, never ids
