"""Ranking pages read from the indexes give what ranking everyone and slicing gives.

Random rollups with many ties (points are small whole numbers) for two communities,
written as the scores service writes them; for a month, a season, a range across
months and an event on some channels, every page of every theme and every member's
standing are compared with the full ranking (:meth:`LeaderboardReader.scores` and
:func:`competition_ranks`), with the members counted by the scores service and without.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pepite_contracts import MemberErasure
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.scores_repository import ScoresRepository
from pepite_leaderboard.scores_service import DEFAULT_DAILY_CAPS, ScoreUpdater, ScoringPolicy
from pepite_reports.leaderboards import (
    DAILY,
    LEADERBOARD_INDEXES,
    MONTHLY,
    SEASONAL,
    LeaderboardReader,
    Period,
    Theme,
    competition_ranks,
    month_period,
    range_period,
    season_label,
    season_period,
)

pytestmark = pytest.mark.asyncio

COMMUNITY = "acme"
OTHER = "other"
FIRST = date(2024, 4, 1)
DAYS = 91
CHANNELS = ("c0", "c1", "c2")


async def store_rollups(db: Database, community: str, members: int, seed: int) -> None:
    """Day rollups at random, and the month and season rollups summed from them."""
    rng = random.Random(seed)
    daily: list[dict[str, Any]] = []
    months: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for n in range(members):
        member = f"discord:{community}:m{n:03d}"
        for _ in range(rng.randint(1, 12)):
            day = FIRST + timedelta(days=rng.randrange(DAYS))
            channel = rng.choice(CHANNELS)
            points = {t.value: float(rng.randint(0, 3)) for t in Theme if rng.random() < 0.5}
            points = {k: v for k, v in points.items() if v}
            key = f"{community}|{member}|{day.isoformat()}|{channel}"
            if not points or any(d["_id"] == key for d in daily[-12:]):
                continue
            daily.append(
                {
                    "_id": key,
                    "community_id": community,
                    "member_id": member,
                    "day": day.isoformat(),
                    "month": day.isoformat()[:7],
                    "channel_id": channel,
                    "points": points,
                    "metrics": {},
                }
            )
            for theme, value in points.items():
                months[(member, day.isoformat()[:7])][theme] += value
    await db[DAILY].insert_many(daily)
    seasons: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    monthly = []
    for (member, month), points in months.items():
        monthly.append(
            {
                "_id": f"{community}|{member}|{month}",
                "community_id": community,
                "member_id": member,
                "month": month,
                "points": dict(points),
                "metrics": {},
            }
        )
        season = season_label(date.fromisoformat(month + "-01"))
        for theme, value in points.items():
            seasons[(member, season)][theme] += value
    await db[MONTHLY].insert_many(monthly)
    await db[SEASONAL].insert_many(
        [
            {
                "_id": f"{community}|{member}|{season}",
                "community_id": community,
                "member_id": member,
                "season": season,
                "points": dict(points),
                "metrics": {},
            }
            for (member, season), points in seasons.items()
        ]
    )


CASES: list[tuple[Period, bool]] = [
    # Months and seasons: members counted by the scores service, or (rollups written
    # before it counted them) on the index.
    (month_period("2024-05"), True),
    (month_period("2024-05"), False),
    (season_period("2024-Q2"), True),
    (season_period("2024-Q2"), False),
    # Two whole months: two documents per member, summed.
    (range_period(date(2024, 4, 1), date(2024, 5, 31)), True),
    # A season and a month.
    (range_period(date(2024, 4, 1), date(2024, 7, 31)), True),
    # Days, a month, days.
    (range_period(date(2024, 4, 15), date(2024, 6, 14)), True),
    (range_period(date(2024, 5, 6), date(2024, 5, 19), ["c0", "c2"]), True),
]


@pytest.mark.parametrize(
    ("period", "counted"),
    CASES,
    ids=[f"{p.label}{'' if counted else '-uncounted'}" for p, counted in CASES],
)
async def test_every_page_and_standing_matches_the_full_ranking(
    mongo_db: Database, period: Period, counted: bool
) -> None:
    await ensure_indexes(mongo_db, LEADERBOARD_INDEXES)
    await store_rollups(mongo_db, COMMUNITY, members=120, seed=3)
    await store_rollups(mongo_db, OTHER, members=60, seed=4)
    if counted:
        await ScoresRepository(mongo_db).recount_all(COMMUNITY)
        await ScoresRepository(mongo_db).recount_all(OTHER)
    reader = LeaderboardReader(mongo_db)
    for theme in Theme:
        full = competition_ranks(await reader.scores(COMMUNITY, theme, period))
        assert len(full) > 20
        # Ties across page boundaries are what the ranks of a later page must get right.
        assert len({points for _, _, points in full}) < len(full)
        for offset in range(0, len(full) + 7, 7):
            page, members = await reader.ranking(COMMUNITY, theme, period, limit=7, offset=offset)
            assert (page, members) == (full[offset : offset + 7], len(full))
        board, more = await reader.leaderboard(COMMUNITY, theme, period, limit=10, offset=10)
        assert [(e.rank, e.member_id, e.points) for e in board.entries] == full[10:20]
        assert (board.members, more) == (len(full), len(full) > 20)

        ranks = {member_id: (rank, points) for rank, member_id, points in full}
        sample = [f"discord:{COMMUNITY}:m{n:03d}" for n in range(0, 120, 9)]
        for member_id in [*sample, f"discord:{OTHER}:m001"]:
            standing, _ = await reader.standing(COMMUNITY, member_id, theme, period, limit=1)
            assert (standing.rank, standing.points) == ranks.get(member_id, (None, 0.0))
            assert standing.members == len(full)


async def test_an_erased_member_leaves_the_counts_of_every_month_and_season(
    mongo_db: Database,
) -> None:
    await ensure_indexes(mongo_db, LEADERBOARD_INDEXES)
    await store_rollups(mongo_db, COMMUNITY, members=40, seed=5)
    repository = ScoresRepository(mongo_db)
    await repository.recount_all(COMMUNITY)
    reader = LeaderboardReader(mongo_db)
    periods = [month_period("2024-04"), month_period("2024-06"), season_period("2024-Q2")]
    before = {p.label: len(await reader.scores(COMMUNITY, Theme.ACTIVITY, p)) for p in periods}
    (leader, *_), _ = await reader.ranking(
        COMMUNITY, Theme.ACTIVITY, season_period("2024-Q2"), limit=1
    )
    updater = ScoreUpdater(repository, ScoringPolicy(daily_caps=DEFAULT_DAILY_CAPS))
    await updater.erase(
        MemberErasure(
            member_id=leader[1],
            community_id=COMMUNITY,
            pseudonym="erased:1",
            requested_at=datetime(2024, 7, 1, tzinfo=UTC),
        )
    )
    for period in periods:
        full = await reader.scores(COMMUNITY, Theme.ACTIVITY, period)
        assert leader[1] not in {member_id for member_id, _ in full}
        _, members = await reader.ranking(COMMUNITY, Theme.ACTIVITY, period, limit=5)
        assert members == len(full) < before[period.label]
