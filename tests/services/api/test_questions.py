"""The unanswered questions of a community, the longest waiting first, page by page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.services.api.conftest import Api

from pepite_api.keys import Scope

pytestmark = pytest.mark.asyncio

ASKED = datetime(2024, 5, 6, 10, tzinfo=UTC)


def listed(community_id: str, n: int, asked_at: datetime) -> dict[str, object]:
    """An entry as the digest service's watcher stores it."""
    return {
        "_id": f"discord:{community_id}:{n}",
        "community_id": community_id,
        "channel_id": "help",
        "channel_name": "help",
        "author_id": f"discord:{community_id}:ann",
        "author_name": "ann",
        "asked_at": asked_at,
        "excerpt": f"question {n} of {community_id}?",
        "listed_at": asked_at + timedelta(hours=24),
        "alerted_at": asked_at + timedelta(hours=24),
    }


async def test_unanswered_questions_oldest_first_and_only_ones_own(api: Api) -> None:
    await api.state.db["unanswered_questions"].insert_many(
        [
            listed("acme", 3, ASKED + timedelta(hours=2)),
            listed("acme", 1, ASKED),
            listed("acme", 2, ASKED),  # asked at the same time: by id
            listed("other", 9, ASKED - timedelta(days=1)),
        ]
    )
    async with await api.client_for("acme", Scope.READ) as client:
        url = "/v1/communities/acme/questions/unanswered"
        first = (await client.get(url, params={"limit": 2})).json()
        assert [q["question_id"] for q in first["items"]] == [
            "discord:acme:1",
            "discord:acme:2",
        ]
        assert first["items"][0] == {
            "question_id": "discord:acme:1",
            "channel_id": "help",
            "channel_name": "help",
            "author_id": "discord:acme:ann",
            "author_name": "ann",
            "asked_at": "2024-05-06T10:00:00Z",
            "excerpt": "question 1 of acme?",
            "alerted_at": "2024-05-07T10:00:00Z",
        }
        second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [q["question_id"] for q in second["items"]] == ["discord:acme:3"]
        assert second["next_cursor"] is None

        theirs = await client.get("/v1/communities/other/questions/unanswered")
        assert theirs.status_code == 403
        assert theirs.headers["content-type"] == "application/problem+json"
        bad = await client.get(url, params={"limit": 0})
        assert bad.status_code == 422
        assert [e["location"] for e in bad.json()["errors"]] == ["query.limit"]
