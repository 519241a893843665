"""The member export carries what every service stores about the member, and only theirs:
personalized digests, FAQ entries mined from their messages, leaderboard months, seasons
and contributions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.services.api.conftest import Api

from pepite_api.keys import Scope

pytestmark = pytest.mark.asyncio

ANN, BOB = "discord:acme:ann", "discord:acme:bob"
OTHER_ANN = "discord:other:ann"
AT = datetime(2024, 5, 6, 10, tzinfo=UTC)


def _member_docs(community_id: str, member_id: str, tag: str) -> dict[str, list[dict[str, Any]]]:
    """One document per member part, marked with ``tag`` to tell whose it is."""
    return {
        "personal_digests": [
            {"_id": f"pd-{tag}", "community_id": community_id, "member_id": member_id}
        ],
        "knowledge_entries": [
            {
                "_id": f"k-asked-{tag}",
                "community_id": community_id,
                "origin": "mined",
                "question": f"how do I {tag}?",
                "question_author_id": member_id,
                "answer_author_id": "discord:acme:helper",
                "vector": [0.1, 0.2],
                "answer_vector": [0.3, 0.4],
                "content_digest": "abc",
            },
            {
                "_id": f"k-answered-{tag}",
                "community_id": community_id,
                "origin": "mined",
                "question": "why?",
                "question_author_id": "discord:acme:asker",
                "answer_author_id": member_id,
            },
        ],
        "leaderboard_monthly": [
            {
                "_id": f"m-{tag}",
                "community_id": community_id,
                "member_id": member_id,
                "month": "2024-05",
                "points": {"helpfulness": 12.0},
            }
        ],
        "leaderboard_seasonal": [
            {
                "_id": f"s-{tag}",
                "community_id": community_id,
                "member_id": member_id,
                "season": "2024-Q2",
                "points": {"helpfulness": 12.0},
            }
        ],
        "leaderboard_contributions": [
            {
                "_id": f"c{n}-{tag}",
                "community_id": community_id,
                "member_id": member_id,
                "message_id": f"discord:{community_id}:{tag}{n}",
                "day": "2024-05-06",
                "at": AT,
                "points": {"helpfulness": 6.0},
            }
            for n in range(2)
        ],
    }


async def test_export_carries_every_part_and_nobody_else_s(api: Api) -> None:
    db = api.state.db
    await db["members"].insert_many(
        [
            {"_id": ANN, "community_id": "acme", "name": "ann", "platform": "discord"},
            {"_id": BOB, "community_id": "acme", "name": "bob", "platform": "discord"},
        ]
    )
    for community_id, member_id, tag in (
        ("acme", ANN, "ann"),
        ("acme", BOB, "bob"),
        # The same person's id under another tenant never leaks into Acme's export.
        ("other", OTHER_ANN, "other"),
        ("other", ANN, "misfiled"),
    ):
        for collection, docs in _member_docs(community_id, member_id, tag).items():
            await db[collection].insert_many(docs)

    async with await api.client_for("acme", Scope.ADMIN) as admin:
        response = await admin.get(f"/v1/communities/acme/members/{ANN}/export")
    assert response.status_code == 200
    document = response.json()

    def ids(key: str) -> list[str]:
        return [doc["_id"] for doc in document[key]]

    assert ids("personal_digests") == ["pd-ann"]
    assert ids("knowledge_entries") == ["k-answered-ann", "k-asked-ann"]
    assert ids("leaderboard_months") == ["m-ann"]
    assert ids("leaderboard_seasons") == ["s-ann"]
    assert ids("leaderboard_contributions") == ["c0-ann", "c1-ann"]
    asked = next(d for d in document["knowledge_entries"] if d["_id"] == "k-asked-ann")
    # Derived vectors and digests are not the member's data in any readable sense.
    assert {"vector", "answer_vector", "content_digest"}.isdisjoint(asked)
    assert asked["question"] == "how do I ann?"
    # The parts the export had before are still there.
    assert document["identity"]["name"] == "ann"
    assert document["messages"] == []
    assert document["journals"] == []


async def test_export_of_a_member_with_nothing_stored_has_empty_parts(api: Api) -> None:
    await api.state.db["members"].insert_one(
        {"_id": BOB, "community_id": "acme", "name": "bob", "platform": "discord"}
    )
    async with await api.client_for("acme", Scope.ADMIN) as admin:
        document = (await admin.get(f"/v1/communities/acme/members/{BOB}/export")).json()
    for key in (
        "personal_digests",
        "knowledge_entries",
        "leaderboard_months",
        "leaderboard_seasons",
        "leaderboard_contributions",
    ):
        assert document[key] == [], key
