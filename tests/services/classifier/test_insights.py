"""The insights report on a hand-built community whose numbers are known, and its command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tests.conftest import Stack
from typer.testing import CliRunner

from pepite_classifier.rollups import rollup_changes, state_from_document
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_classifier.topics.model import Topic
from pepite_classifier.topics.repository import TopicRepository, TopicWrite
from pepite_contracts import Analysis, MessageKind, Sentiment
from pepite_kit import Database
from pepite_kit.cli import build_app
from pepite_kit.mongo import ensure_indexes
from pepite_reports.insights import (
    Change,
    InsightsService,
    NoDataError,
    add_months,
    report_windows,
)

Q, P, F = MessageKind.QUESTION, MessageKind.PROBLEM, MessageKind.FEATURE_REQUEST
SOCIAL, ANSWER = MessageKind.SOCIAL, MessageKind.ANSWER
NEG, NEU, POS = Sentiment.NEGATIVE, Sentiment.NEUTRAL, Sentiment.POSITIVE
UNTIL = date(2024, 5, 30)
CURRENT = datetime(2024, 5, 27, 12, tzinfo=UTC)
PREVIOUS = datetime(2024, 5, 20, 12, tzinfo=UTC)
A, B = "acme:aaaa", "acme:bbbb"

#: (when, channel, kind, sentiment, topic) of each message.
MESSAGES: list[tuple[datetime, str, MessageKind, Sentiment, str | None]] = [
    # The window (2024-05-24 .. 2024-05-30): 10 messages, 7 of them insights.
    (CURRENT, "c1", Q, NEU, A),
    (CURRENT, "c1", Q, NEU, A),
    (CURRENT, "c1", Q, NEG, A),
    (CURRENT, "c2", Q, NEU, B),
    (CURRENT, "c2", P, NEG, A),
    (CURRENT, "c2", P, NEG, A),
    (CURRENT, "c1", F, POS, None),
    (CURRENT, "c1", SOCIAL, POS, None),
    (CURRENT, "c1", SOCIAL, POS, None),
    (CURRENT, "c2", ANSWER, NEU, None),
    # The previous window (2024-05-17 .. 2024-05-23): 4 messages, 3 insights.
    (PREVIOUS, "c1", Q, NEU, A),
    (PREVIOUS, "c1", Q, NEG, A),
    (PREVIOUS, "c2", P, NEG, A),
    (PREVIOUS, "c1", SOCIAL, POS, None),
    # Just outside both windows.
    (datetime(2024, 5, 16, 23, 59, tzinfo=UTC), "c1", Q, NEU, A),
    (datetime(2024, 5, 31, 0, 0, tzinfo=UTC), "c1", Q, NEU, A),
]


def message_document(n: int, row: tuple[datetime, str, MessageKind, Sentiment, str | None]) -> Any:
    at, channel, kind, sentiment, topic = row
    return {
        "_id": f"discord:acme:{n}",
        "community_id": "acme",
        "channel": {"id": channel, "name": {"c1": "general", "c2": "help"}[channel]},
        "created_at": at,
        "text": f"message {n}",
        "analysis": Analysis(kind=kind, sentiment=sentiment).model_dump(),
        "topic_id": topic,
    }


async def seed(db: Database) -> None:
    """Store the messages, count them as the classifier does, name channels and topics."""
    await ensure_indexes(db, ROLLUP_INDEXES)
    docs = [message_document(n, row) for n, row in enumerate(MESSAGES)]
    # A deleted message counts nowhere.
    deleted = message_document(99, (CURRENT, "c1", Q, NEU, A))
    deleted["deleted_at"] = CURRENT
    await db["messages"].insert_many([*docs, deleted])
    await RollupRepository(db).apply(
        rollup_changes((None, state_from_document(doc)) for doc in [*docs, deleted])
    )
    await db["channels"].insert_many(
        [
            {"_id": "acme:c1", "community_id": "acme", "channel_id": "c1", "name": "general"},
            {"_id": "acme:c2", "community_id": "acme", "channel_id": "c2", "name": "help"},
        ]
    )
    now = datetime(2024, 6, 1, tzinfo=UTC)
    await TopicRepository(db).save_topics(
        "acme",
        [
            TopicWrite(
                Topic(
                    id=topic_id,
                    community_id="acme",
                    name=name,
                    keywords=name.split(", "),
                    created_at=now,
                    updated_at=now,
                )
            )
            for topic_id, name in ((A, "login, error 500"), (B, "nginx, reverse proxy"))
        ],
        [],
    )


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await seed(mongo_db)
    return mongo_db


def test_windows_in_days_and_months() -> None:
    window, previous = report_windows(UNTIL, days=7)
    assert (window.start, window.end, window.days) == (date(2024, 5, 24), UNTIL, 7)
    assert (previous.start, previous.end, previous.days) == (
        date(2024, 5, 17),
        date(2024, 5, 23),
        7,
    )
    assert window.label == "last 7 days"
    window, previous = report_windows(date(2024, 5, 31), months=3)
    assert (window.start, window.end) == (date(2024, 3, 1), date(2024, 5, 31))
    assert (previous.start, previous.end) == (date(2023, 12, 1), date(2024, 2, 29))
    assert window.label == "last 3 months"
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    with pytest.raises(ValueError, match="not both"):
        report_windows(UNTIL, days=7, months=1)
    with pytest.raises(ValueError, match="at least 1"):
        report_windows(UNTIL, days=0)


def test_change_against_the_previous_window() -> None:
    assert Change.of(3, 2) == Change(previous=2, delta=1, percent=50.0)
    assert Change.of(0, 4) == Change(previous=4, delta=-4, percent=-100.0)
    assert Change.of(1, 0).percent is None


async def test_report_counts_shares_and_changes(db: Database) -> None:
    report = await InsightsService(db).report("acme", days=7, until=UNTIL)
    assert (report.window.start, report.window.end) == (date(2024, 5, 24), UNTIL)
    assert (report.messages, report.insights, report.percent_insights) == (10, 7, 70.0)
    assert report.messages_change == Change(previous=4, delta=6, percent=150.0)
    assert report.insights_change == Change(previous=3, delta=4, percent=133.33)

    kinds = {line.kind: line for line in report.kinds}
    # Insight kinds first, largest first; then the others.
    assert [line.kind for line in report.kinds] == [Q, P, F, SOCIAL, ANSWER]
    question = kinds[Q]
    assert (question.count, question.percent_of_messages) == (4, 40.0)
    assert question.percent_of_insights == 57.14
    assert question.change == Change(previous=2, delta=2, percent=100.0)
    assert [(t.topic_id, t.name, t.count, t.percent_of_kind) for t in question.topics] == [
        (A, "login, error 500", 3, 75.0),
        (B, "nginx, reverse proxy", 1, 25.0),
    ]
    assert question.topics[0].change == Change(previous=2, delta=1, percent=50.0)
    assert question.topics[1].change.percent is None
    assert kinds[P].count == 2
    assert kinds[P].change == Change(previous=1, delta=1, percent=100.0)
    feature = kinds[F]
    assert [(t.topic_id, t.name, t.count) for t in feature.topics] == [
        (None, "not yet categorized", 1)
    ]
    assert (kinds[SOCIAL].percent_of_insights, kinds[SOCIAL].topics) == (None, [])
    assert kinds[SOCIAL].change == Change(previous=1, delta=1, percent=100.0)

    channels = {line.channel_id: line for line in report.channels}
    assert [line.channel_id for line in report.channels] == ["c1", "c2"]
    assert (channels["c1"].name, channels["c1"].messages, channels["c1"].insights) == (
        "general",
        6,
        4,
    )
    assert channels["c1"].percent_of_messages == 60.0
    assert channels["c1"].kinds == {Q: 3, F: 1}
    assert channels["c2"].change == Change(previous=1, delta=3, percent=300.0)

    sentiments = {line.sentiment: line for line in report.sentiments}
    assert (sentiments[NEG].count, sentiments[NEG].percent) == (3, 30.0)
    assert (sentiments[POS].count, sentiments[NEU].count) == (3, 4)
    assert sentiments[NEG].change == Change(previous=2, delta=1, percent=50.0)


async def test_channel_and_kind_filters(db: Database) -> None:
    service = InsightsService(db)
    help_channel = await service.report("acme", days=7, until=UNTIL, channel_id="c2")
    assert (help_channel.messages, help_channel.insights) == (4, 3)
    assert help_channel.filters.channel_name == "help"
    assert {line.kind: line.count for line in help_channel.kinds} == {Q: 1, P: 2, ANSWER: 1}
    assert [line.channel_id for line in help_channel.channels] == ["c2"]

    problems = await service.report("acme", days=7, until=UNTIL, kind=P)
    assert [line.kind for line in problems.kinds] == [P]
    # Shares stay shares of all messages: the filter chooses what is shown.
    assert problems.kinds[0].percent_of_messages == 20.0
    assert problems.kinds[0].percent_of_insights == 28.57
    assert {line.channel_id: line.kinds for line in problems.channels} == {
        "c1": {},
        "c2": {P: 2},
    }


async def test_default_window_ends_at_the_last_activity_of_an_archive(db: Database) -> None:
    service = InsightsService(db)
    archive = await service.report("acme", days=7, today=date(2025, 1, 1))
    assert archive.window.end == date(2024, 5, 31)
    live = await service.report("acme", days=7, today=date(2024, 5, 30))
    assert live.window.end == date(2024, 5, 30)
    months = await service.report("acme", months=1, today=date(2025, 1, 1))
    assert (months.window.start, months.messages) == (date(2024, 5, 1), 17 - 1)


async def test_unknown_community_or_channel(db: Database) -> None:
    with pytest.raises(NoDataError, match="community 'nobody'"):
        await InsightsService(db).report("nobody", days=7)
    with pytest.raises(NoDataError, match="channel 'c9'"):
        await InsightsService(db).report("acme", days=7, channel_id="c9")


# ----- the command -----


@pytest.fixture
def seeded_env(stack: Stack, db_name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A database with the hand-built community, named by the variables the CLI reads."""

    async def run() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            stack.mongodb_uri, tz_aware=True
        )
        try:
            await seed(client[db_name])
        finally:
            await client.close()

    asyncio.run(run())
    monkeypatch.setenv("MONGODB_URI", stack.mongodb_uri)
    monkeypatch.setenv("PEPITE_MONGODB_DB", db_name)
    yield

    async def drop() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
        await client.drop_database(db_name)
        await client.close()

    asyncio.run(drop())


def invoke(*args: str) -> Any:
    return CliRunner().invoke(build_app(), list(args))


def test_command_prints_an_aligned_table(seeded_env: None) -> None:
    result = invoke("insights", "-c", "acme", "--days", "7", "--until", "2024-05-30")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "last 7 days, 2024-05-24 → 2024-05-30" in out
    assert "compared with 2024-05-17 → 2024-05-23 · all channels" in out
    lines = out.splitlines()
    question = next(line for line in lines if line.startswith("question "))
    assert question.split()[:6] == ["question", "4", "40.0%", "57.1%", "+2", "(+100.0%)"]
    category = lines[lines.index(question) + 1]
    assert category.startswith("  login, error 500 ")
    assert category.split()[-4:] == ["3", "75.0%", "+1", "(+50.0%)"]
    assert "(not yet categorized)" in out
    header = next(line for line in lines if line.startswith("KIND / CATEGORY"))
    # Numbers are right-aligned under their header.
    assert question.index(" 4 ") + 2 == header.index("COUNT") + len("COUNT")
    assert category.index("75.0%") + 5 == header.index("% KIND") + len("% KIND")
    assert "#general" in out
    assert "#help" in out


def test_command_prints_json(seeded_env: None) -> None:
    result = invoke(
        "insights", "-c", "acme", "--days", "7", "--until", "2024-05-30", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["window"] == {
        "start": "2024-05-24",
        "end": "2024-05-30",
        "length": 7,
        "period": "days",
        "days": 7,
        "label": "last 7 days",
    }
    assert report["messages"] == 10
    assert report["kinds"][0]["topics"][0]["percent_of_kind"] == 75.0


def test_command_filters(seeded_env: None) -> None:
    result = invoke(
        "insights",
        "-c",
        "acme",
        "-d",
        "7",
        "--until",
        "2024-05-30",
        "--channel",
        "c2",
        "--kind",
        "problem",
    )
    assert result.exit_code == 0, result.output
    assert "#help (c2) · kind problem" in result.output
    assert "question" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "nobody"], "no analyzed messages in community 'nobody'"),
        (["-c", "acme", "--channel", "c9"], "no analyzed messages in channel 'c9'"),
        (["-c", "acme", "--kind", "rant"], "--kind: unknown kind 'rant'"),
        (["-c", "acme", "--until", "31/05/2024"], "--until: '31/05/2024' is not a date"),
        (["-c", "acme", "--days", "7", "--months", "1"], "give --days or --months, not both"),
        (["-c", "bad id!"], "invalid community id"),
    ],
)
def test_command_errors_are_one_line(seeded_env: None, args: list[str], message: str) -> None:
    result = invoke("insights", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_topics_list_command(seeded_env: None) -> None:
    result = invoke("topics", "list", "-c", "acme")
    assert result.exit_code == 0, result.output
    assert "login, error 500" in result.output
    missing = invoke("topics", "list", "-c", "nobody")
    assert missing.exit_code == 1
    assert "no topics in community 'nobody'" in missing.output
