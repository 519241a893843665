"""Tenant isolation, checked on every route of the OpenAPI spec.

A key of community ``acme`` tries every operation on community ``other``, then every
operation on its own community with ``other``'s ids in the path. Nothing of ``other``
may be read or changed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.services.api.conftest import Api
from tests.services.api.seed import Seeded, seed_community

from pepite_api.keys import KeyRepository, Scope
from pepite_kit import Database

pytestmark = pytest.mark.asyncio

#: Routes that hold no community's data.
PUBLIC = {"/healthz", "/readyz"}


async def _snapshot(db: Database, community_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every document of the community, in every collection."""
    snapshot = {}
    for name in sorted(await db.list_collection_names()):
        docs = await db[name].find({"community_id": community_id}).sort("_id", 1).to_list()
        for doc in docs:
            doc.pop("last_used_at", None)
        snapshot[name] = docs
    return snapshot


def _operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (path, method.upper())
        for path, methods in spec["paths"].items()
        if path not in PUBLIC
        for method in methods
    ]


def _fill(path: str, community_id: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return community_id if name == "community_id" else ids.get(name, "x0000000000")

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.fixture
async def tenants(api: Api) -> tuple[Seeded, Seeded]:
    db = api.state.db
    return await seed_community(db, "acme"), await seed_community(db, "other")


async def _other_ids(api: Api, other: Seeded) -> dict[str, str]:
    other_key = await KeyRepository(api.state.db).create(
        name="other's", community_id="other", scopes=[Scope.ADMIN]
    )
    return {
        "member_id": other.member_ids[0],
        "message_id": other.message_ids[0],
        "topic_id": other.topic_ids[0],
        "key_id": other_key.key_id,
    }


async def test_a_key_of_one_community_is_refused_on_every_route_of_another(
    api: Api, tenants: tuple[Seeded, Seeded]
) -> None:
    _, other = tenants
    ids = await _other_ids(api, other)
    spec = (await api.client.get("/openapi.json")).json()
    operations = _operations(spec)
    scoped = [(p, m) for p, m in operations if "{community_id}" in p]
    assert len(scoped) >= 20, "the walk must cover the community routes"
    before = await _snapshot(api.state.db, "other")

    async with await api.client_for("acme", Scope.ADMIN) as client:
        for path, method in scoped:
            url = _fill(path, "other", ids)
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            response = await client.request(method, url, json=body)
            assert response.status_code == 403, (method, url, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert other.secret_word not in response.text

        # Routes of no community: operators only, or filtered to the key's community.
        for path, method in operations:
            if "{community_id}" in path:
                continue
            url = _fill(path, "other", ids)
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            response = await client.request(method, url, json=body)
            if path == "/v1/communities" and method == "GET":
                assert response.status_code == 200
                assert [c["community_id"] for c in response.json()["items"]] in ([], ["acme"])
            else:
                assert response.status_code == 403, (method, url, response.text)

    assert await _snapshot(api.state.db, "other") == before


async def test_ids_of_another_community_are_not_found_under_ones_own(
    api: Api, tenants: tuple[Seeded, Seeded]
) -> None:
    _, other = tenants
    ids = await _other_ids(api, other)
    spec = (await api.client.get("/openapi.json")).json()
    with_ids = [
        (p, m)
        for p, m in _operations(spec)
        if "{community_id}" in p and re.search(r"\{(?!community_id)\w+\}", p)
    ]
    assert len(with_ids) >= 10
    before = await _snapshot(api.state.db, "other")

    async with await api.client_for("acme", Scope.ADMIN) as client:
        for path, method in with_ids:
            url = _fill(path, "acme", ids)
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            response = await client.request(method, url, json=body)
            assert response.status_code in {404, 422}, (method, url, response.text)
            assert other.secret_word not in response.text
            # The error may echo the id that was asked for; nothing else of ``other``.
            shown = response.text
            for asked in ids.values():
                shown = shown.replace(asked, "")
            for their_id in [*other.member_ids, *other.message_ids, *other.topic_ids]:
                assert their_id not in shown, (method, url, response.text)

        # Filters naming another community's things find nothing.
        for query in (
            f"author_id={other.member_ids[0]}",
            f"channel_id={other.channel_ids[0]}",
            f"q={other.secret_word}",
        ):
            response = await client.get(f"/v1/communities/acme/messages?{query}")
            assert response.status_code == 200
            assert response.json()["items"] == []

    assert await _snapshot(api.state.db, "other") == before
