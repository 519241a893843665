"""GET /v1/communities/{id}/kpis over rollups written by the leaderboard's real update."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.services.api.conftest import Api

from pepite_api.keys import Scope
from pepite_contracts import MessageKind
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.kpi_handlers import KpiUpdater
from pepite_leaderboard.kpi_repository import KPI_INDEXES, KpiRepository
from pepite_leaderboard.kpi_rollups import KpiMessage

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def msg(
    community: str, native: str, author: str, minutes: float, kind: MessageKind, **kw: str
) -> KpiMessage:
    return KpiMessage(
        message_id=f"discord:{community}:{native}",
        community_id=community,
        channel_id=kw.get("channel", "general"),
        thread_id=None,
        reply_to_id=f"discord:{community}:{kw['reply_to']}" if "reply_to" in kw else None,
        author_id=f"discord:{community}:{author}",
        is_bot=False,
        created_at=T0 + timedelta(minutes=minutes),
        kind=kind,
    )


async def seed(api: Api) -> None:
    db = api.state.db
    await ensure_indexes(db, KPI_INDEXES)
    q, social = MessageKind.QUESTION, MessageKind.SOCIAL
    await KpiUpdater(KpiRepository(db)).apply(
        [
            msg("acme", "q1", "ann", 0, q),
            msg("acme", "r1", "bob", 10, social, reply_to="q1"),
            msg("acme", "q2", "ann", 60, q, channel="help"),
            msg("acme", "r2", "cat", 110, social, channel="help", reply_to="q2"),
            msg("globex", "g1", "zed", 0, social),
        ]
    )


async def test_kpis_of_a_period(api: Api) -> None:
    await seed(api)
    async with await api.client_for("acme", Scope.READ) as client:
        response = await client.get(
            "/v1/communities/acme/kpis", params={"from": "2024-05-06", "to": "2024-05-12"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["messages"] == 4
        assert body["members"]["active"] == 3
        assert body["questions"]["first_response_median_s"] == 30 * 60
        assert len(body["heatmap"]["counts"]) == 7
        assert [c["channel_id"] for c in body["busiest_channels"]] == ["general", "help"]
        help_only = await client.get(
            "/v1/communities/acme/kpis",
            params={"from": "2024-05-06", "to": "2024-05-12", "channel": "help"},
        )
        assert help_only.json()["questions"]["first_response_median_s"] == 50 * 60


async def test_bad_input_names_the_field_and_other_communities_are_refused(api: Api) -> None:
    await seed(api)
    async with await api.client_for("acme", Scope.READ) as client:
        backwards = await client.get(
            "/v1/communities/acme/kpis", params={"from": "2024-05-12", "to": "2024-05-06"}
        )
        assert backwards.status_code == 422
        assert backwards.headers["content-type"].startswith("application/problem+json")
        assert "to:" in backwards.json()["detail"]
        churn = await client.get(
            "/v1/communities/acme/kpis",
            params={"from": "2024-05-06", "to": "2024-05-12", "churn_days": 0},
        )
        assert churn.status_code == 422
        assert "churn_days" in churn.text
        zone = await client.get(
            "/v1/communities/acme/kpis",
            params={"from": "2024-05-06", "to": "2024-05-12", "timezone": "Mars/Olympus"},
        )
        assert zone.status_code == 422
        assert "timezone" in zone.json()["detail"]
        other = await client.get(
            "/v1/communities/globex/kpis", params={"from": "2024-05-06", "to": "2024-05-12"}
        )
        assert other.status_code == 403
    response = await api.client.get(
        "/v1/communities/acme/kpis", params={"from": "2024-05-06", "to": "2024-05-12"}
    )
    assert response.status_code == 401
