"""Keys, scopes, rate limits and the shape of errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.services.api.conftest import Api
from tests.services.api.seed import seed_community

from pepite_api.app import create_app
from pepite_api.keys import KeyRepository, Scope, key_digest
from pepite_api.settings import Settings

pytestmark = pytest.mark.asyncio


async def test_no_key_a_malformed_key_or_an_unknown_key_is_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer pep_nope"}):
        response = await api.client.get("/v1/communities/acme/messages", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        problem = response.json()
        assert problem["status"] == 401
        assert problem["instance"] == "/v1/communities/acme/messages"


async def test_keys_are_stored_as_digests_and_revocation_takes_effect(api: Api) -> None:
    async with await api.client_for("acme", Scope.ADMIN) as admin:
        created = await admin.post(
            "/v1/communities/acme/keys", json={"name": "bot", "scopes": ["read"]}
        )
        assert created.status_code == 201
        key = created.json()["key"]
        stored = await api.state.db["api_keys"].find_one({"_id": created.json()["key_id"]})
        assert stored is not None
        assert key not in str(stored)
        assert stored["digest"] == key_digest(key)

        listed = await admin.get("/v1/communities/acme/keys")
        assert key not in listed.text
        assert created.json()["key_id"] in listed.text

        headers = {"Authorization": f"Bearer {key}"}
        assert (await api.client.get("/v1/communities/acme", headers=headers)).status_code in {
            200,
            404,
        }
        revoked = await admin.delete(f"/v1/communities/acme/keys/{created.json()['key_id']}")
        assert revoked.json()["revoked_at"] is not None
        assert (await api.client.get("/v1/communities/acme", headers=headers)).status_code == 401


async def test_scopes_read_write_admin_and_operator(api: Api) -> None:
    seeded = await seed_community(api.state.db, "acme")
    member = seeded.member_ids[0]
    consent = {"journal": True, "personalization": False, "ai_processing": True}
    decision = {"action": "keep"}
    async with (
        await api.client_for("acme", Scope.READ) as read,
        await api.client_for("acme", Scope.WRITE) as write,
        await api.client_for("acme", Scope.ADMIN) as admin,
    ):
        assert (await read.get("/v1/communities/acme/messages")).status_code == 200
        forbidden = await read.put(f"/v1/communities/acme/members/{member}/consent", json=consent)
        assert forbidden.status_code == 403
        assert "'write' scope" in forbidden.json()["detail"]
        assert (
            await write.put(f"/v1/communities/acme/members/{member}/consent", json=consent)
        ).status_code == 200
        assert (
            await read.post(
                f"/v1/communities/acme/moderation/{seeded.flagged_id}/decision", json=decision
            )
        ).status_code == 403
        assert (
            await write.post(
                f"/v1/communities/acme/moderation/{seeded.flagged_id}/decision", json=decision
            )
        ).status_code == 200
        # Admin things: keys, settings, export and erasure.
        for client, expected in ((read, 403), (write, 403), (admin, 200)):
            response = await client.patch("/v1/communities/acme", json={"language": "fr"})
            assert response.status_code in {expected, 404} if expected == 200 else {expected}
            response = await client.get(f"/v1/communities/acme/members/{member}/export")
            assert response.status_code == expected
        # Creating communities and operator keys needs an operator key.
        body = {"community_id": "newco"}
        assert (await admin.post("/v1/communities", json=body)).status_code == 403
        assert (
            await admin.post("/v1/keys", json={"name": "x", "scopes": ["admin"]})
        ).status_code == 403
    async with await api.client_for(None, Scope.ADMIN) as operator:
        created = await operator.post("/v1/communities", json={**body, "timezone": "Europe/Paris"})
        assert created.status_code == 201
        assert created.json()["timezone"] == "Europe/Paris"
        assert (await operator.post("/v1/communities", json=body)).status_code == 409


async def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    # 60 per minute with 10 s of burst: 10 requests pass, the 11th waits a second.
    async with await api.client_for("acme", Scope.READ, rate_limit_per_minute=60) as client:
        statuses = [(await client.get("/v1/communities/acme/status")) for _ in range(11)]
    assert [r.status_code for r in statuses[:10]] == [200] * 10
    assert statuses[0].headers["x-ratelimit-limit"] == "60"
    limited = statuses[10]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert "rate limit of 60 requests per minute" in limited.json()["detail"]
    # Another key has its own budget.
    async with await api.client_for("acme", Scope.READ, rate_limit_per_minute=60) as other:
        assert (await other.get("/v1/communities/acme/status")).status_code == 200


async def test_processes_serving_the_api_share_each_keys_rate_limit(
    api_settings: Settings,
) -> None:
    # Two processes on one database: two workers of a server, or two replicas.
    settings = api_settings.model_copy(update={"rate_limit_sync_seconds": 0.05})
    first_app, second_app = create_app(settings), create_app(settings)
    async with (
        first_app.router.lifespan_context(first_app),
        second_app.router.lifespan_context(second_app),
    ):
        created = await KeyRepository(first_app.state.api.db).create(
            name="shared", community_id="acme", scopes=[Scope.READ], rate_limit_per_minute=60
        )
        headers = {"Authorization": f"Bearer {created.key}"}
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
            )
            for app in (first_app, second_app)
        ]
        first, second = clients
        await asyncio.sleep(0.2)  # both have exchanged counts once
        # The whole burst (10 requests) is spent on the first process...
        spent = [(await first.get("/v1/communities/acme/status")).status_code for _ in range(10)]
        assert spent == [200] * 10
        await asyncio.sleep(0.3)
        # ...so the second, which has not served this key yet, has next to nothing left.
        later = [(await second.get("/v1/communities/acme/status")).status_code for _ in range(5)]
        for client in clients:
            await client.aclose()
    assert later.count(429) >= 4, later


async def test_bad_input_gets_a_problem_naming_the_field(api: Api) -> None:
    async with await api.client_for(None, Scope.ADMIN) as operator:
        unknown = await operator.post(
            "/v1/communities", json={"community_id": "acme", "colour": "blue"}
        )
        assert unknown.status_code == 422
        problem = unknown.json()
        assert problem["errors"][0]["location"] == "body.colour"
        assert "colour" in problem["detail"]
        zone = await operator.post(
            "/v1/communities", json={"community_id": "acme", "timezone": "Mars/Olympus"}
        )
        assert zone.status_code == 422
        assert "Mars/Olympus" in zone.json()["detail"]
        limit = await operator.get("/v1/communities/acme/messages?limit=100000")
        assert limit.status_code == 422
        assert limit.json()["errors"][0]["location"] == "query.limit"
        cursor = await operator.get("/v1/communities/acme/messages?cursor=not-a-cursor")
        assert cursor.status_code == 400
        assert "cursor" in cursor.json()["detail"]


async def test_oversized_bodies_are_refused_before_being_read(api: Api) -> None:
    big = b'{"name": "' + b"x" * (api.settings.max_request_bytes + 10) + b'"}'
    async with await api.client_for(None, Scope.ADMIN) as operator:
        response = await operator.post(
            "/v1/communities", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"

        # Without a declared length (chunked), the limit holds all the same.
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(20):
                yield b"x" * (api.settings.max_request_bytes // 10)

        response = await operator.post(
            "/v1/communities", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    async with await api.client_for("acme", Scope.READ) as client:
        await client.get("/v1/communities/acme/messages")
    metrics = (await api.client.get("/metrics/")).text
    assert 'route="/v1/communities/{community_id}/messages"' in metrics
    assert "pepite_http_request_seconds_bucket" in metrics
    assert 'community_id="acme"' not in metrics


async def test_readiness_checks_mongodb_and_kafka(api: Api) -> None:
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
