"""First-response histograms, join listings and the heatmap's time zones, on hand-built
data with known answers, against a real MongoDB."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import Stack
from tests.services.leaderboard import test_kpi_rollups as rollups
from tests.services.leaderboard.test_kpi_rollups import SOCIAL, A, C, Q, msg, report
from typer.testing import CliRunner, Result

from pepite_contracts import Member, MemberJoined, MembershipChange, Platform
from pepite_kit import Database
from pepite_leaderboard.kpi_cli import app
from pepite_leaderboard.kpi_handlers import KpiEventsHandler, KpiUpdater
from pepite_leaderboard.kpi_repository import KpiRepository
from pepite_leaderboard.kpi_rollups import JoinListing, KpiMessage, joins_moves
from pepite_reports.kpis import (
    KPI_JOINS,
    KPI_RESPONSES,
    RESPONSE_BUCKET_GROWTH,
    ResponseHistogram,
    heatmap,
    percentile,
    response_bucket,
)

ERROR = RESPONSE_BUCKET_GROWTH - 1

# The scenario builders and fixtures of the rollup tests, shared.
db = rollups.db
updater = rollups.updater


def histogram(waits: list[float]) -> ResponseHistogram:
    """What the stored documents of these waits merge into (built by hand)."""
    merged = ResponseHistogram()
    for wait in waits:
        ms = round(wait * 1000)
        bucket = str(response_bucket(ms))
        merged.add(0, {bucket: 1}, {bucket: ms})
    return merged


def test_buckets_grow_by_the_fixed_ratio() -> None:
    assert response_bucket(0) == response_bucket(999) == 0
    assert response_bucket(1000) == 1
    # Bucket k holds G**(k-1) .. G**k seconds: an hour sits where the logarithm says.
    hour = response_bucket(3_600_000)
    assert hour == 1 + math.floor(math.log(3600) / math.log(RESPONSE_BUCKET_GROWTH))
    assert RESPONSE_BUCKET_GROWTH ** (hour - 1) <= 3600 < RESPONSE_BUCKET_GROWTH**hour


def test_histogram_percentiles_are_exact_with_one_wait_per_bucket() -> None:
    merged = histogram([600.0, 3000.0])
    assert merged.answered == 2
    assert merged.percentile(0.5) == 1800.0
    assert merged.percentile(0.9) == pytest.approx(2760.0)
    assert ResponseHistogram().percentile(0.5) is None


def test_histogram_percentiles_stay_within_the_bucket_error() -> None:
    # Forty waits packed into a few buckets (61..64 s share buckets), then spread ones.
    packed = [61.0, 61.5, 62.0, 62.4, 63.0, 63.9] * 5 + [1.5, 90.0, 95.0, 300.0, 7200.0]
    spread = [random.Random(3).lognormvariate(6, 1.5) for _ in range(2_000)]
    for waits in (packed, spread):
        merged = histogram(waits)
        for q in (0.1, 0.5, 0.9, 0.99):
            exact = percentile(waits, q)
            assert exact is not None
            estimate = merged.percentile(q)
            assert estimate == pytest.approx(exact, rel=ERROR), (q, exact, estimate)
    # The median of the packed waits falls inside one bucket: its mean, not the wait.
    median = histogram(packed).percentile(0.5)
    assert median is not None
    assert median != percentile(packed, 0.5)


def test_emptied_buckets_are_skipped() -> None:
    merged = ResponseHistogram()
    merged.add(3, {"5": 0, "300": 1}, {"5": 0, "300": 360_000})
    merged.add(1, {"300": 1, "301": 1}, {"300": 370_000, "301": 380_000})
    merged.add(0, {"301": -1}, {"301": -380_000})
    assert (merged.asked, merged.answered) == (4, 2)
    assert merged.percentile(0.5) == 365.0


async def test_a_year_merges_month_and_day_histograms(db: Database, updater: KpiUpdater) -> None:
    rng = random.Random(11)
    batch: list[KpiMessage] = []
    #: Per question: its channel, the day it was asked and its wait (None: unanswered).
    asked: list[tuple[str, date, float | None]] = []
    for n in range(240):
        at = datetime(2024, 1, 1, 8, tzinfo=UTC) + timedelta(days=n * 1.52, minutes=n)
        channel = f"c{n % 3}"
        batch.append(msg(f"q{n}", f"asker{n % 7}", at, Q, channel=channel))
        wait = None if n % 5 == 4 else round(rng.lognormvariate(7, 1.2), 3)
        asked.append((channel, at.date(), wait))
        if wait is not None:
            response = at + timedelta(seconds=wait)
            batch.append(msg(f"r{n}", "helper", response, channel=channel, reply_to=f"q{n}"))
    # In two batches, cut in the middle of the year.
    batch.sort(key=lambda m: m.order)
    await updater.apply(batch[: len(batch) // 2])
    await updater.apply(batch[len(batch) // 2 :])
    # A period with whole months and leftover days at both ends.
    first, last = date(2024, 1, 10), date(2024, 12, 20)
    for scope in (None, "c1"):
        inside = [
            wait for where, day, wait in asked if first <= day <= last and scope in (None, where)
        ]
        waits = [wait for wait in inside if wait is not None]
        questions = (await report(db, first, last, channel_id=scope)).questions
        assert (questions.asked, questions.answered) == (len(inside), len(waits)), scope
        assert 0 < len(waits) < len(inside)
        for q, estimate in (
            (0.5, questions.first_response_median_s),
            (0.9, questions.first_response_p90_s),
        ):
            assert estimate == pytest.approx(percentile(waits, q), rel=ERROR), (scope, q)


async def test_an_earlier_response_or_a_reanalysis_moves_the_histograms(
    db: Database, updater: KpiUpdater
) -> None:
    t0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
    await updater.apply(
        [msg("q1", "ann", t0, Q), msg("r1", "bob", t0 + timedelta(minutes=50), reply_to="q1")]
    )
    await updater.apply([msg("q2", "cat", t0 + timedelta(hours=1), Q)])
    day = t0.date()
    first = (await report(db, day, day)).questions
    assert (first.asked, first.answered, first.first_response_median_s) == (2, 1, 3000.0)
    # A reply written earlier, consumed later (another partition was slower).
    await updater.apply([msg("r0", "dan", t0 + timedelta(minutes=10), reply_to="q1")])
    moved = (await report(db, day, day)).questions
    assert (moved.asked, moved.answered, moved.first_response_median_s) == (2, 1, 600.0)
    # q2 re-analyzed as small talk: no longer a question anywhere.
    await updater.apply([msg("q2", "cat", t0 + timedelta(hours=1), SOCIAL)])
    month = (await report(db, date(2024, 5, 1), date(2024, 5, 31))).questions
    assert (month.asked, month.answered, month.unanswered) == (1, 1, 0)
    # Every response document holds what its questions say; nothing is left behind.
    docs = await db[KPI_RESPONSES].find({}).to_list()
    assert len(docs) == 4  # day and month, whole community and #general
    for doc in docs:
        assert doc["community_id"] == C
        assert doc["asked"] == 1
        assert sum(doc["n"].values()) == 1
        assert sum(doc["ms"].values()) == 600_000


async def test_replays_leave_the_histograms_alone(db: Database, updater: KpiUpdater) -> None:
    t0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
    batch = [
        msg("q1", "ann", t0, Q),
        msg("a1", "bob", t0 + timedelta(minutes=3), A),
        msg("q2", "cat", t0 + timedelta(minutes=30), Q),
        msg("r2", "ann", t0 + timedelta(minutes=41), reply_to="q2"),
    ]
    await updater.apply(batch)
    before = await db[KPI_RESPONSES].find({}, sort=[("_id", 1)]).to_list()
    await updater.apply(list(reversed(batch)))
    await updater.apply(batch[2:])
    assert await db[KPI_RESPONSES].find({}, sort=[("_id", 1)]).to_list() == before
    assert (await report(db, t0.date(), t0.date())).questions.first_response_p90_s == pytest.approx(
        180 + (660 - 180) * 0.9
    )


async def test_other_communities_histograms_are_not_read(db: Database, updater: KpiUpdater) -> None:
    t0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
    other = KpiMessage(
        message_id="discord:globex:q1",
        community_id="globex",
        channel_id="general",
        thread_id=None,
        reply_to_id=None,
        author_id="discord:globex:zed",
        is_bot=False,
        created_at=t0,
        kind=Q,
    )
    await updater.apply([other, msg("q1", "ann", t0, Q)])
    assert (await report(db, t0.date(), t0.date())).questions.asked == 1
    assert await db[KPI_RESPONSES].count_documents({"community_id": "globex"}) == 4


async def joins_listed(db: Database) -> dict[str, list[int]]:
    return {
        doc["_id"]: sorted(doc.get("members", []))
        async for doc in db[KPI_JOINS].find({"members.0": {"$exists": True}})
    }


def test_joins_moves_list_members_under_their_month_once() -> None:
    may, march = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    moves = joins_moves(
        C,
        [
            JoinListing(1, datetime(2024, 5, 9, tzinfo=UTC), None),  # new
            JoinListing(2, datetime(2024, 3, 30, tzinfo=UTC), may),  # joined earlier
            JoinListing(3, datetime(2024, 5, 31, 23, tzinfo=UTC), may),  # already there
            JoinListing(4, None, None),  # nothing known yet
        ],
    )
    assert moves.listed == {1: may, 2: march}
    changes = {(u.month, tuple(u.added), tuple(u.removed)) for u in moves.updates}
    assert changes == {(date(2024, 5, 1), (1,), (2,)), (date(2024, 3, 1), (2,), ())}
    may_change = next(u for u in moves.updates if u.month == date(2024, 5, 1))
    # Adding and taking away go in separate updates (one may not do both to an array).
    assert [sorted(update) for update in may_change.updates()] == [
        ["$addToSet", "$setOnInsert"],
        ["$pull"],
    ]


async def test_a_join_event_older_than_the_first_message_moves_the_member(
    db: Database, updater: KpiUpdater
) -> None:
    await updater.apply(
        [
            msg("m1", "ann", datetime(2024, 5, 10, tzinfo=UTC)),
            msg("m2", "bob", datetime(2024, 5, 11, tzinfo=UTC)),
        ]
    )
    assert await joins_listed(db) == {f"{C}|2024-05-01": [0, 1]}
    handler = KpiEventsHandler(updater, KpiRepository(db))
    joined = MemberJoined(
        community_id=C,
        payload=MembershipChange(
            member=Member(id=f"discord:{C}:ann", native_id="ann", name="ann"),
            platform=Platform.DISCORD,
            community_id=C,
            at=datetime(2024, 3, 20, tzinfo=UTC),
        ),
    )
    await handler([joined])
    await handler([joined])  # a replay moves nothing
    assert await joins_listed(db) == {f"{C}|2024-03-01": [0], f"{C}|2024-05-01": [1]}
    kpis = await report(db, date(2024, 5, 1), date(2024, 5, 31), cohort_months=3)
    assert [(c.month, c.members, c.active) for c in kpis.retention.cohorts] == [
        ("2024-03", 1, [0, 0, 1]),
        ("2024-05", 1, [1]),
    ]
    assert kpis.members.new == 1
    march = await report(db, date(2024, 3, 15), date(2024, 4, 30))
    assert march.members.new == 1  # on a leftover day of March


async def test_a_replay_lists_members_a_crash_left_unlisted(
    db: Database, updater: KpiUpdater
) -> None:
    batch = [
        msg("m1", "ann", datetime(2024, 5, 10, tzinfo=UTC)),
        msg("m2", "bob", datetime(2024, 6, 11, tzinfo=UTC)),
    ]
    await updater.apply(batch)
    listed = await joins_listed(db)
    # As if the service stopped between writing the members and listing them.
    await db[KPI_JOINS].delete_many({})
    await db["kpi_members"].update_many({}, {"$unset": {"joins_month": ""}})
    await updater.apply(batch)
    assert await joins_listed(db) == listed == {f"{C}|2024-05-01": [0], f"{C}|2024-06-01": [1]}


def invoke(db: Database, stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("MONGODB_URI", stack.mongodb_uri)
    monkeypatch.setenv("PEPITE_MONGODB_DB", db.name)
    return CliRunner().invoke(app, list(args))


async def test_rebuild_recounts_the_histograms_from_stored_messages(
    db: Database, updater: KpiUpdater, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
    messages = [
        msg("q1", "ann", t0, Q),
        msg("r1", "bob", t0 + timedelta(minutes=7), reply_to="q1"),
        msg("q2", "cat", t0 + timedelta(days=40), Q, channel="help"),
        msg("a2", "dan", t0 + timedelta(days=40, minutes=12), A, channel="help"),
        msg("q3", "eve", t0 + timedelta(days=41), Q),
    ]
    await db["messages"].insert_many(
        [
            {
                "_id": m.message_id,
                "community_id": C,
                "channel": {"id": m.channel_id, "name": m.channel_id},
                "reply_to_id": m.reply_to_id,
                "author": {"id": m.author_id, "is_bot": False},
                "created_at": m.created_at,
                "analysis": {"kind": m.kind.value},
            }
            for m in messages
        ]
    )
    await updater.apply(messages)
    live_joins = await joins_listed(db)
    assert sum(map(len, live_joins.values())) == 5
    # Listings drifted too: the rebuild lists members again.
    await db[KPI_JOINS].delete_many({})
    live = await db[KPI_RESPONSES].find({}, {"_id": 1, "asked": 1, "n": 1, "ms": 1}).to_list()
    # Histograms drifted (a lost write): the rebuild recounts them from the messages.
    await db[KPI_RESPONSES].update_many({}, {"$inc": {"asked": 5}})

    result = await asyncio.to_thread(invoke, db, stack, monkeypatch, "rebuild", "-c", C)

    assert result.exit_code == 0, result.output
    rebuilt = await db[KPI_RESPONSES].find({}, {"_id": 1, "asked": 1, "n": 1, "ms": 1}).to_list()
    key = lambda doc: doc["_id"]  # noqa: E731
    assert sorted(rebuilt, key=key) == sorted(live, key=key)
    assert live_joins == await joins_listed(db)
    kpis = await report(db, date(2024, 5, 1), date(2024, 6, 30))
    assert (kpis.questions.asked, kpis.questions.answered) == (3, 2)
    assert kpis.questions.first_response_median_s == pytest.approx((7 * 60 + 12 * 60) / 2)


@pytest.mark.parametrize("numbers_from", [0, 199_998])
async def test_new_members_over_a_period_longer_than_the_cohorts(
    db: Database, updater: KpiUpdater, numbers_from: int
) -> None:
    # From 199,998, member numbers straddle two parts of the joins read.
    await db["kpi_counters"].insert_one({"_id": C, "next": numbers_from})
    # One member joins on each of these days; the period ends on 15 March. Cohorts are
    # whole calendar months: the one joining on 16 March is in March's.
    days = [date(2023, 12, 31), date(2024, 1, 1), date(2024, 2, 10), date(2024, 3, 15)]
    days.append(date(2024, 3, 16))
    await updater.apply(
        [
            msg(f"m{n}", f"member{n}", datetime.combine(day, time(23, 59), tzinfo=UTC))
            for n, day in enumerate(days)
        ]
    )
    kpis = await report(db, date(2024, 1, 1), date(2024, 3, 15), cohort_months=1)
    assert kpis.members.new == 3
    assert [(c.month, c.members) for c in kpis.retention.cohorts] == [("2024-03", 2)]
    three = await report(db, date(2024, 1, 1), date(2024, 3, 15), cohort_months=3)
    assert [(c.month, c.members, c.active) for c in three.retention.cohorts] == [
        ("2024-01", 1, [1, 0, 0]),
        ("2024-02", 1, [1, 0]),
        ("2024-03", 2, [2]),
    ]


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
)
def test_heatmap_matches_hour_by_hour_conversion(zone: str) -> None:
    # Every UTC hour of a year that crosses summer time both ways, with varied counts.
    rng = random.Random(zone)
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(366)]
    hours = [(day, {str(h): rng.randint(0, 3) for h in range(24)}) for day in days]
    expected = [[0] * 24 for _ in range(7)]
    for day, counts in hours:
        for hour, count in counts.items():
            local = datetime.combine(day, time(int(hour)), tzinfo=UTC).astimezone(ZoneInfo(zone))
            expected[local.weekday()][local.hour] += count
    assert heatmap(hours, zone).counts == expected
