"""Leaderboards per month and KPIs per week on the whole sample community, checked
against what its stored messages say when counted directly."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ClassifiedSample
from tests.e2e.test_digest import sample_weeks

# Whichever test comes first waits for the sample to be analyzed (about four minutes).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COMMUNITY = "sample"
MONTHS = ("2024-04", "2024-05", "2024-06")


def human_messages(db: Any, first: date, last: date) -> list[dict[str, Any]]:
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    return list(
        db["messages"].find(
            {
                "community_id": COMMUNITY,
                "created_at": {"$gte": start, "$lt": end},
                "author.is_bot": {"$ne": True},
            },
            {"author.id": 1, "created_at": 1, "channel.id": 1, "analysis.kind": 1},
        )
    )


def test_weekly_kpis_say_what_the_messages_say(classified_sample: ClassifiedSample) -> None:
    env, db = classified_sample.env, classified_sample.db
    env.pepite("kpis", "rebuild", "--community", COMMUNITY)
    for monday, sunday in sample_weeks(classified_sample):
        report = json.loads(
            env.pepite(
                "kpis", "--community", COMMUNITY, "--from", str(monday), "--to", str(sunday),
                "--format", "json",
            ).stdout
        )  # fmt: skip
        messages = human_messages(db, monday, sunday)
        per_member = Counter(m["author"]["id"] for m in messages)
        week = f"week of {monday}"
        assert report["messages"] == len(messages), week
        assert report["members"]["active"] == report["members"]["wau"] == len(per_member), week
        for day in report["daily"]:
            on_day = [
                m for m in messages if m["created_at"].date() == date.fromisoformat(day["day"])
            ]
            assert day["messages"] == len(on_day), (week, day)
            assert day["active_members"] == len({m["author"]["id"] for m in on_day}), (week, day)
        assert sum(map(sum, report["heatmap"]["counts"])) == len(messages), week
        by_channel = Counter(m["channel"]["id"] for m in messages)
        assert {c["channel_id"]: c["messages"] for c in report["busiest_channels"]} == dict(
            by_channel.most_common(len(report["busiest_channels"]))
        ), week
        ranked = sorted(per_member.values(), reverse=True)
        for share in report["top_shares"]:
            top = max(1, math.ceil(len(ranked) * share["top_percent"] / 100))
            assert share["members"] == top, week
            assert share["messages"] == sum(ranked[:top]), week
        asked = sum(1 for m in messages if m.get("analysis", {}).get("kind") == "question")
        questions = report["questions"]
        assert questions["asked"] == asked > 0, week
        assert questions["answered"] + questions["unanswered"] == asked, week
        assert 0 < questions["first_response_median_s"] <= questions["first_response_p90_s"]


def test_monthly_leaderboards_rank_real_members_of_that_month(
    classified_sample: ClassifiedSample,
) -> None:
    env, db = classified_sample.env, classified_sample.db
    env.pepite("leaderboard", "rebuild", "--community", COMMUNITY)
    bots = set(db["messages"].distinct("author.id", {"author.is_bot": True}))
    for month in MONTHS:
        first = date.fromisoformat(f"{month}-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        authors = {m["author"]["id"] for m in human_messages(db, first, last)}
        for theme in ("helpfulness", "activity", "kindness"):
            board = json.loads(
                env.pepite(
                    "leaderboard", "--community", COMMUNITY, "--theme", theme, "--period", month,
                    "--limit", "50", "--format", "json",
                ).stdout
            )  # fmt: skip
            entries = board["entries"]
            where = f"{theme} {month}"
            if month != "2024-06" or theme == "activity":
                assert entries, f"nobody on the {where} leaderboard"
            assert board["members"] <= len(authors), where
            points = [e["points"] for e in entries]
            assert points == sorted(points, reverse=True), where
            assert all(p > 0 for p in points), where
            ranks = [e["rank"] for e in entries]
            assert ranks == sorted(ranks), where
            assert not ranks or ranks[0] == 1, where
            for entry in entries:
                # Only members who wrote in that month, never a bot.
                assert entry["member_id"] in authors, (where, entry)
                assert entry["member_id"] not in bots, (where, entry)
    # The busiest month's most active member is among its most prolific writers.
    in_may = human_messages(db, date(2024, 5, 1), date(2024, 5, 31))
    may = Counter(m["author"]["id"] for m in in_may)
    activity = json.loads(
        env.pepite(
            "leaderboard", "--community", COMMUNITY, "--theme", "activity", "--period", "2024-05",
            "--limit", "1", "--format", "json",
        ).stdout
    )  # fmt: skip
    top_writers = {member for member, _ in may.most_common(10)}
    assert activity["entries"][0]["member_id"] in top_writers
