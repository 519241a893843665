"""KPI rollups on hand-built scenarios with known answers, against a real MongoDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pepite_contracts import (
    Analysis,
    AnalyzedMessage,
    ChannelRef,
    Member,
    MemberErased,
    MemberErasure,
    MemberJoined,
    MembershipChange,
    MessageAnalyzed,
    MessageKind,
    Platform,
    ThreadRef,
)
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_leaderboard.kpi_handlers import KpiEventsHandler, KpiUpdater
from pepite_leaderboard.kpi_repository import KPI_INDEXES, KpiRepository
from pepite_leaderboard.kpi_rollups import KpiMessage
from pepite_reports.kpis import (
    KPI_ACTIVITY,
    KPI_MEMBERS,
    KpiQuery,
    KpiReport,
    KpiService,
    percentile,
    segments,
)

C = "acme"
Q, A, SOCIAL = MessageKind.QUESTION, MessageKind.ANSWER, MessageKind.SOCIAL
T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday


def msg(
    message_id: str,
    author: str,
    at: datetime,
    kind: MessageKind = SOCIAL,
    *,
    channel: str = "general",
    reply_to: str | None = None,
    thread: str | None = None,
    bot: bool = False,
    community: str = C,
) -> KpiMessage:
    return KpiMessage(
        message_id=f"discord:{community}:{message_id}",
        community_id=community,
        channel_id=channel,
        thread_id=thread,
        reply_to_id=f"discord:{community}:{reply_to}" if reply_to else None,
        author_id=f"discord:{community}:{author}",
        is_bot=bot,
        created_at=at,
        kind=kind,
    )


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await ensure_indexes(mongo_db, KPI_INDEXES)
    return mongo_db


@pytest.fixture
def updater(db: Database) -> KpiUpdater:
    return KpiUpdater(KpiRepository(db))


async def report(db: Database, first: date, last: date, **kwargs: Any) -> KpiReport:
    return await KpiService(db).report(KpiQuery(C, first, last, **kwargs))


def test_segments_use_whole_months_and_leftover_days() -> None:
    cover = segments(date(2024, 4, 29), date(2024, 6, 2))
    assert cover.months == (date(2024, 5, 1),)
    assert cover.days == (
        date(2024, 4, 29),
        date(2024, 4, 30),
        date(2024, 6, 1),
        date(2024, 6, 2),
    )
    assert segments(date(2024, 5, 2), date(2024, 5, 31)).months == ()


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([600.0, 3000.0], 0.5) == 1800.0
    assert percentile([600.0, 3000.0], 0.9) == pytest.approx(2760.0)
    assert percentile([], 0.5) is None


async def test_first_response_median_and_p90_and_unanswered_share(
    db: Database, updater: KpiUpdater
) -> None:
    await updater.apply(
        [
            msg("q1", "ann", T0, Q),
            msg("r1", "bob", T0 + timedelta(minutes=10), reply_to="q1"),
            msg("q2", "cat", T0 + timedelta(hours=3), Q),
            msg("r2", "dan", T0 + timedelta(hours=3, minutes=50), reply_to="q2"),
            # Asked, then only the asker and a bot reply: unanswered.
            msg("q3", "eve", T0 + timedelta(hours=6), Q),
            msg("r3", "eve", T0 + timedelta(hours=6, minutes=5), reply_to="q3"),
            msg("b3", "helper-bot", T0 + timedelta(hours=6, minutes=1), reply_to="q3", bot=True),
        ]
    )
    questions = (await report(db, T0.date(), T0.date())).questions
    assert (questions.asked, questions.answered, questions.unanswered) == (3, 2, 1)
    assert questions.first_response_median_s == 30 * 60
    assert questions.first_response_p90_s == pytest.approx(46 * 60)
    assert questions.unanswered_share == pytest.approx(1 / 3)


async def test_thread_and_answer_rules_and_a_reply_seen_before_its_question(
    db: Database, updater: KpiUpdater
) -> None:
    # Rule 2: a later message of another member in the question's thread.
    await updater.apply(
        [
            msg("q1", "ann", T0, Q, thread="th"),
            msg("t1", "ann", T0 + timedelta(minutes=1), thread="th"),
            msg("t2", "bob", T0 + timedelta(minutes=4), thread="th"),
        ]
    )
    # Rule 3: an answer in the channel goes to the latest open question of another member.
    await updater.apply([msg("q2", "cat", T0 + timedelta(hours=1), Q, channel="help")])
    await updater.apply([msg("q3", "dan", T0 + timedelta(hours=1, minutes=5), Q, channel="help")])
    await updater.apply([msg("a1", "eve", T0 + timedelta(hours=1, minutes=7), A, channel="help")])
    # Past the two-hour window, an answer responds to nothing.
    await updater.apply([msg("q4", "fay", T0 + timedelta(hours=5), Q, channel="late")])
    await updater.apply([msg("a2", "gus", T0 + timedelta(hours=7, minutes=1), A, channel="late")])
    # A reply consumed before its question (another partition was faster).
    await updater.apply([msg("r5", "bob", T0 + timedelta(hours=9, minutes=20), reply_to="q5")])
    await updater.apply([msg("q5", "hal", T0 + timedelta(hours=9), Q)])
    questions = await db["kpi_questions"].find({"is_question": True}).to_list()
    waits = {doc["_id"].rsplit(":", 1)[1]: doc["response_s"] for doc in questions}
    assert waits == {"q1": 240.0, "q2": None, "q3": 120.0, "q4": None, "q5": 1200.0}
    kpis = (await report(db, T0.date(), T0.date(), channel_id="help")).questions
    assert (kpis.asked, kpis.answered) == (2, 1)


async def test_replaying_a_batch_changes_nothing(db: Database, updater: KpiUpdater) -> None:
    batch = [
        msg("q1", "ann", T0, Q),
        msg("a1", "bob", T0 + timedelta(minutes=3), A),
        msg("m1", "bob", T0 + timedelta(minutes=5)),
    ]
    first = await updater.apply(batch)
    before = await report(db, T0.date(), T0.date())
    again = await updater.apply(list(reversed(batch)))
    after = await report(db, T0.date(), T0.date())
    assert (first.counted, again.counted) == (3, 0)
    assert after == before
    assert after.messages == 3
    assert after.questions.first_response_median_s == 180


async def test_bots_count_nowhere(db: Database, updater: KpiUpdater) -> None:
    await updater.apply(
        [
            msg("m1", "ann", T0),
            msg("b1", "bot", T0 + timedelta(minutes=1), bot=True),
            msg("b2", "bot", T0 + timedelta(minutes=2), Q, bot=True),
        ]
    )
    kpis = await report(db, T0.date(), T0.date())
    assert (kpis.messages, kpis.members.active, kpis.questions.asked) == (1, 1, 0)
    assert await db[KPI_MEMBERS].count_documents({}) == 1


async def test_active_members_new_churned_and_shares(db: Database, updater: KpiUpdater) -> None:
    day = timedelta(days=1)
    last = date(2024, 5, 31)
    batch = [
        # "old" wrote last 31 days before the last day: churned with churn_days=30.
        msg("o1", "old", datetime(2024, 4, 30, 12, tzinfo=UTC)),
        # "quiet" wrote 29 days before it: not yet.
        msg("q1", "quiet", datetime(2024, 5, 2, 12, tzinfo=UTC)),
    ]
    # "big" writes 18 messages on the last day, nine others one each on 25..31 May.
    batch += [msg(f"b{n}", "big", datetime(2024, 5, 31, 8, n, tzinfo=UTC)) for n in range(18)]
    batch += [
        msg(f"s{n}", f"small{n}", datetime(2024, 5, 25, 10, tzinfo=UTC) + n % 7 * day)
        for n in range(9)
    ]
    await updater.apply(batch)
    kpis = await report(db, date(2024, 5, 25), last)
    assert kpis.members.active == 10
    assert kpis.members.wau == 10
    assert kpis.members.mau == 11  # "quiet" too
    assert kpis.members.churned == 1
    assert kpis.members.new == 10
    assert (await report(db, date(2024, 5, 25), last, churn_days=45)).members.churned == 0
    top5, top10 = kpis.top_shares
    assert (top5.members, top5.messages, top5.share) == (1, 18, 18 / 27)
    assert (top10.members, top10.messages) == (1, 18)
    assert kpis.messages == 27
    assert kpis.daily[-1].active_members == 2  # big and small6
    assert kpis.members.dau == pytest.approx(sum(d.active_members for d in kpis.daily) / 7)


async def test_heatmap_in_the_community_time_zone_and_busiest_channels(
    db: Database, updater: KpiUpdater
) -> None:
    await db["communities"].insert_one({"_id": C, "timezone": "Europe/Paris"})
    await db["channels"].insert_one({"community_id": C, "channel_id": "help", "name": "Help"})
    await updater.apply(
        [
            # Sunday 23:30 UTC is Monday 01:30 in Paris (summer time).
            msg("m1", "ann", datetime(2024, 5, 5, 23, 30, tzinfo=UTC), channel="help"),
            msg("m2", "bob", datetime(2024, 5, 6, 7, 0, tzinfo=UTC), channel="help"),
            msg("m3", "bob", datetime(2024, 5, 6, 7, 5, tzinfo=UTC), channel="random"),
        ]
    )
    kpis = await report(db, date(2024, 5, 5), date(2024, 5, 6))
    assert kpis.heatmap.timezone == "Europe/Paris"
    assert kpis.heatmap.counts[0][1] == 1
    assert kpis.heatmap.counts[0][9] == 2
    assert sum(map(sum, kpis.heatmap.counts)) == 3
    utc = await report(db, date(2024, 5, 5), date(2024, 5, 6), timezone="UTC")
    assert utc.heatmap.counts[6][23] == 1
    assert [(c.channel_id, c.name, c.messages) for c in kpis.busiest_channels] == [
        ("help", "Help", 2),
        ("random", "random", 1),
    ]


async def test_retention_by_join_month_and_joins_without_messages(
    db: Database, updater: KpiUpdater
) -> None:
    def at(month: int, member: str) -> KpiMessage:
        return msg(f"{member}-{month}", member, datetime(2024, month, 10, tzinfo=UTC))

    # March cohort: a, b, c; a is back in April and May, b in May only.
    await updater.apply(
        [at(3, "a"), at(3, "b"), at(3, "c"), at(4, "a"), at(5, "a"), at(5, "b"), at(4, "d")]
    )
    handler = KpiEventsHandler(updater, KpiRepository(db))
    joined = MemberJoined(
        community_id=C,
        payload=MembershipChange(
            member=Member(id="discord:acme:e", native_id="e", name="e"),
            platform=Platform.DISCORD,
            community_id=C,
            at=datetime(2024, 4, 2, tzinfo=UTC),
        ),
    )
    await handler([joined])
    kpis = await report(db, date(2024, 5, 1), date(2024, 5, 31), cohort_months=3)
    rows = {row.month: (row.members, row.active) for row in kpis.retention.cohorts}
    assert rows == {"2024-03": (3, [3, 1, 2]), "2024-04": (2, [1, 0])}
    assert kpis.retention.cohorts[0].retention == [1.0, 0.3333, 0.6667]
    april = await report(db, date(2024, 4, 1), date(2024, 4, 30))
    assert april.members.new == 2  # d wrote, e only joined


async def test_an_erased_member_keeps_counts_but_no_id(db: Database, updater: KpiUpdater) -> None:
    await updater.apply([msg("m1", "ann", T0), msg("m2", "bob", T0)])
    before = await report(db, T0.date(), T0.date())
    handler = KpiEventsHandler(updater, KpiRepository(db))
    erased = MemberErased(
        community_id=C,
        payload=MemberErasure(
            member_id="discord:acme:ann",
            community_id=C,
            pseudonym="erased:7f3a",
            requested_at=T0,
        ),
    )
    await handler([erased])
    await handler([erased])
    assert await report(db, T0.date(), T0.date()) == before
    ids = [str(doc.get("member_id")) async for doc in db[KPI_MEMBERS].find({})]
    assert sorted(ids) == ["discord:acme:bob", "erased:7f3a"]
    for collection in (
        KPI_ACTIVITY,
        "kpi_questions",
        "kpi_messages",
        "kpi_counters",
        "kpi_responses",
    ):
        assert "discord:acme:ann" not in str(await db[collection].find({}).to_list())


async def test_events_from_kafka_payloads_and_per_community_isolation(
    db: Database, updater: KpiUpdater
) -> None:
    handler = KpiEventsHandler(updater, KpiRepository(db))

    def analyzed(community: str, native: str) -> MessageAnalyzed:
        return MessageAnalyzed(
            community_id=community,
            payload=AnalyzedMessage(
                message_id=f"discord:{community}:{native}",
                platform=Platform.DISCORD,
                community_id=community,
                channel=ChannelRef(id="general", name="general"),
                thread=ThreadRef(id="th1"),
                author=Member(id=f"discord:{community}:ann", native_id="ann", name="ann"),
                created_at=T0,
                analysis=Analysis(kind=Q),
                analyzed_at=T0,
            ),
        )

    await handler([analyzed(C, "1"), analyzed("other", "1"), analyzed("other", "2")])
    assert (await report(db, T0.date(), T0.date())).messages == 1
    other = await KpiService(db).report(KpiQuery("other", T0.date(), T0.date()))
    assert (other.messages, other.questions.asked) == (2, 2)


async def test_invalid_queries_name_the_field(db: Database) -> None:
    with pytest.raises(ValueError, match=r"^to:"):
        await report(db, date(2024, 5, 2), date(2024, 5, 1))
    with pytest.raises(ValueError, match=r"^churn_days:"):
        await report(db, T0.date(), T0.date(), churn_days=0)
    with pytest.raises(ValueError, match=r"^timezone:"):
        await report(db, T0.date(), T0.date(), timezone="Mars/Olympus")
