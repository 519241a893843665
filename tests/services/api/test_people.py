"""Linking platform identities of one person, through the API and the CLI, on a real MongoDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.conftest import Stack, SyncDb
from tests.services.api.conftest import Api

from pepite_api.keys import Scope

pytestmark = pytest.mark.asyncio

PEPITE = str(Path(sys.executable).parent / "pepite")
SEEN = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
async def client(api: Api, sync_db: SyncDb) -> AsyncIterator[httpx.AsyncClient]:
    sync_db["members"].insert_many(
        [
            member("discord:acme:111", "discord", "Marie_Curie", "Marie"),
            member("slack:acme:U1", "slack", "marie.curie", None),
            member("telegram:acme:5", "telegram", "Marie Curie", None),
            member("discord:acme:222", "discord", "bob", None),
            member("slack:acme:UBOT", "slack", "bob", None, is_bot=True),
            member("discord:other:111", "discord", "Marie_Curie", None, community="other"),
        ]
    )
    async with await api.client_for("acme", Scope.WRITE) as client:
        yield client


def member(
    member_id: str,
    platform: str,
    name: str,
    display_name: str | None,
    *,
    is_bot: bool = False,
    community: str = "acme",
) -> dict[str, object]:
    return {
        "_id": member_id,
        "community_id": community,
        "platform": platform,
        "native_id": member_id.rsplit(":", 1)[1],
        "name": name,
        "display_name": display_name,
        "is_bot": is_bot,
        "first_seen_at": SEEN,
        "last_seen_at": SEEN,
    }


async def test_linking_makes_one_person_visible_from_each_identity(
    client: httpx.AsyncClient, sync_db: SyncDb
) -> None:
    response = await client.post(
        "/v1/communities/acme/people",
        json={"member_ids": ["discord:acme:111", "slack:acme:U1"], "display_name": "Marie"},
    )
    assert response.status_code == 200, response.text
    person = response.json()
    assert person["display_name"] == "Marie"
    assert [i["member_id"] for i in person["identities"]] == ["discord:acme:111", "slack:acme:U1"]

    profile = (await client.get("/v1/communities/acme/members/slack:acme:U1")).json()
    assert profile["identity"]["platform"] == "slack"
    assert profile["person"]["person_id"] == person["person_id"]
    assert (
        sync_db["members"].find_one({"_id": "discord:acme:111"})["person_id"]
        == (person["person_id"])
    )

    # Linking a third identity to one of them merges into the same person.
    response = await client.post(
        "/v1/communities/acme/people", json={"member_ids": ["telegram:acme:5", "slack:acme:U1"]}
    )
    merged = response.json()
    assert merged["person_id"] == person["person_id"]
    assert merged["display_name"] == "Marie"
    assert len(merged["identities"]) == 3
    assert sync_db["people"].count_documents({}) == 1


async def test_two_people_merge_when_linked(client: httpx.AsyncClient, sync_db: SyncDb) -> None:
    first = (
        await client.post(
            "/v1/communities/acme/people",
            json={"member_ids": ["discord:acme:111", "slack:acme:U1"]},
        )
    ).json()
    await client.post(
        "/v1/communities/acme/people", json={"member_ids": ["telegram:acme:5", "discord:acme:222"]}
    )
    merged = (
        await client.post(
            "/v1/communities/acme/people", json={"member_ids": ["slack:acme:U1", "telegram:acme:5"]}
        )
    ).json()
    assert merged["person_id"] == first["person_id"]
    assert {i["member_id"] for i in merged["identities"]} == {
        "discord:acme:111",
        "slack:acme:U1",
        "telegram:acme:5",
        "discord:acme:222",
    }
    assert sync_db["people"].count_documents({}) == 1
    assert sync_db["members"].count_documents({"person_id": first["person_id"]}) == 4


async def test_unknown_or_foreign_members_are_refused_and_nothing_changes(
    client: httpx.AsyncClient, sync_db: SyncDb
) -> None:
    response = await client.post(
        "/v1/communities/acme/people",
        json={"member_ids": ["discord:acme:111", "discord:other:111", "slack:acme:nobody"]},
    )
    assert response.status_code == 422
    assert "discord:other:111" in response.json()["detail"]
    assert "slack:acme:nobody" in response.json()["detail"]
    assert sync_db["people"].count_documents({}) == 0
    assert sync_db["members"].count_documents({"person_id": {"$exists": True}}) == 0

    one = await client.post("/v1/communities/acme/people", json={"member_ids": ["slack:acme:U1"]})
    assert one.status_code == 422


async def test_unlinking_the_second_to_last_identity_dissolves_the_person(
    client: httpx.AsyncClient, sync_db: SyncDb
) -> None:
    await client.post(
        "/v1/communities/acme/people",
        json={"member_ids": ["discord:acme:111", "slack:acme:U1", "telegram:acme:5"]},
    )
    left = (await client.delete("/v1/communities/acme/people/links/telegram:acme:5")).json()
    assert {i["member_id"] for i in left["identities"]} == {"discord:acme:111", "slack:acme:U1"}
    assert "person_id" not in sync_db["members"].find_one({"_id": "telegram:acme:5"})

    gone = await client.delete("/v1/communities/acme/people/links/slack:acme:U1")
    assert gone.json() is None
    assert sync_db["people"].count_documents({}) == 0
    assert sync_db["members"].count_documents({"person_id": {"$exists": True}}) == 0


async def test_suggestions_pair_same_names_across_platforms_only(
    client: httpx.AsyncClient,
) -> None:
    suggestions = (await client.get("/v1/communities/acme/people/suggestions")).json()
    assert [s["key"] for s in suggestions] == ["mariecurie"]
    assert {i["member_id"] for i in suggestions[0]["identities"]} == {
        "discord:acme:111",
        "slack:acme:U1",
        "telegram:acme:5",
    }


async def test_an_unknown_member_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/communities/acme/members/discord:acme:999")
    assert response.status_code == 404


async def test_the_cli_links_and_shows(
    client: httpx.AsyncClient, stack: Stack, db_name: str
) -> None:
    env = {**os.environ, "MONGODB_URI": stack.mongodb_uri, "PEPITE_MONGODB_DB": db_name}

    def pepite(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PEPITE, "members", *args, "--community", "acme"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    linked = pepite("link", "discord:acme:111", "slack:acme:U1", "--name", "Marie")
    assert linked.returncode == 0, linked.stderr
    person = json.loads(linked.stdout)
    shown = json.loads(pepite("show", "slack:acme:U1").stdout)
    assert shown["person"]["person_id"] == person["person_id"]

    refused = pepite("link", "discord:acme:111", "slack:acme:ghost")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "pepite: not members of community 'acme': slack:acme:ghost"
