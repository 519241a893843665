"""The Lore Keeper on the whole sample community: a digest for each of its weeks, every
statement citing messages that exist and lie inside the week."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Env, ServiceProcess, read_truth, wait_classified

pytestmark = pytest.mark.slow

COMMUNITY = "sample"


def weeks(first: date, last: date) -> list[tuple[date, date]]:
    """Monday-to-Sunday weeks covering ``first`` to ``last``."""
    monday = first - timedelta(days=first.weekday())
    spans = []
    while monday <= last:
        spans.append((monday, monday + timedelta(days=6)))
        monday += timedelta(days=7)
    return spans


def test_a_digest_for_every_week_cites_only_messages_of_that_week(
    env: Env, classifier: ServiceProcess, sample_community: Path, sync_db: Any, tmp_path: Path
) -> None:
    truth = read_truth(sample_community, COMMUNITY)
    env.pepite("import", str(sample_community), "--community", COMMUNITY, "--no-progress")
    wait_classified(env, classifier, sync_db, len(truth.message_ids), within_s=600)
    first = datetime.fromisoformat(truth.first).astimezone(UTC).date()
    last = datetime.fromisoformat(truth.last).astimezone(UTC).date()
    spans = weeks(first, last)
    assert len(spans) == 7
    sections_seen: set[str] = set()
    for monday, sunday in spans:
        out = tmp_path / f"{monday}.json"
        env.pepite(
            "digest",
            "--community",
            COMMUNITY,
            "--from",
            str(monday),
            "--to",
            str(sunday),
            "--format",
            "json",
            "--output",
            str(out),
        )
        digest = json.loads(out.read_text())
        start = datetime.fromisoformat(digest["period_start"])
        end = datetime.fromisoformat(digest["period_end"])
        assert (start, end) == (
            datetime.combine(monday, datetime.min.time(), UTC),
            datetime.combine(sunday + timedelta(days=1), datetime.min.time(), UTC),
        )
        cited = {
            message_id
            for section in digest["sections"]
            for statement in section["statements"]
            for message_id in statement["message_ids"]
        }
        assert cited, f"the week of {monday} cites nothing"
        assert all(
            statement["message_ids"]
            for section in digest["sections"]
            for statement in section["statements"]
        ), "a statement without a source"
        stored = {
            doc["_id"]: doc
            for doc in sync_db["messages"].find(
                {"_id": {"$in": sorted(cited)}}, {"created_at": 1, "author.is_bot": 1}
            )
        }
        assert set(stored) == cited, f"cited ids that do not exist: {cited - set(stored)}"
        for message_id, doc in stored.items():
            created = doc["created_at"].replace(tzinfo=UTC)
            assert start <= created < end, f"{message_id} is outside the week of {monday}"
        assert {s["message_id"] for s in digest["sources"]} == cited
        sections_seen.update(section["kind"] for section in digest["sections"])
        # The digest is stored for the API too.
        assert sync_db["digests"].find_one({"_id": digest["digest_id"]}) is not None
    # Over the seven weeks, every part of a digest had something to say.
    assert sections_seen >= {
        "highlights",
        "announcements",
        "trending_topics",
        "top_questions",
        "unanswered_questions",
        "new_members",
        "shout_outs",
    }
