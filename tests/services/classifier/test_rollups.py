"""Daily rollups: what a message change moves, and the counters against a real MongoDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from pepite_classifier.rollups import (
    ActivityKey,
    KindKey,
    RollupState,
    rollup_changes,
    state_from_document,
)
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_contracts import Analysis, MessageKind, Sentiment
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_reports.rollups import ACTIVITY_ROLLUPS, KIND_ROLLUPS, RollupReader

Q = MessageKind.QUESTION
P = MessageKind.PROBLEM
SOCIAL = MessageKind.SOCIAL
NEG, NEU, POS = Sentiment.NEGATIVE, Sentiment.NEUTRAL, Sentiment.POSITIVE
DAY = date(2024, 5, 1)


def state(
    kind: MessageKind = Q,
    sentiment: Sentiment = NEU,
    topic_id: str | None = None,
    *,
    day: date = DAY,
    channel: str = "c1",
) -> RollupState:
    return RollupState("acme", channel, day, kind, sentiment, topic_id)


def test_a_new_message_counts_once_for_its_kind_and_its_day() -> None:
    changes = rollup_changes([(None, state(Q, NEG, "t1"))])
    assert changes.kinds == {KindKey("acme", DAY, "c1", Q, "t1"): 1}
    [(key, delta)] = changes.activity.items()
    assert key == ActivityKey("acme", DAY, "c1")
    assert (delta.messages, delta.sentiments) == (1, {NEG: 1})


def test_a_replay_changes_nothing() -> None:
    assert not rollup_changes([(state(Q, NEG, "t1"), state(Q, NEG, "t1"))])


def test_an_edit_that_changes_the_kind_moves_one_count() -> None:
    changes = rollup_changes([(state(Q, NEU, "t1"), state(P, NEU, "t2"))])
    assert changes.kinds == {
        KindKey("acme", DAY, "c1", Q, "t1"): -1,
        KindKey("acme", DAY, "c1", P, "t2"): 1,
    }
    # Same sentiment, same day: the activity counter does not move.
    assert changes.activity == {}


def test_a_sentiment_change_moves_sentiments_not_totals() -> None:
    changes = rollup_changes([(state(Q, NEG), state(Q, POS))])
    assert changes.kinds == {}
    [delta] = changes.activity.values()
    assert (delta.messages, delta.sentiments) == (0, {NEG: -1, POS: 1})


def test_a_deletion_decrements_and_a_second_deletion_does_nothing() -> None:
    changes = rollup_changes([(state(P, NEG, "t1"), None), (None, None)])
    assert changes.kinds == {KindKey("acme", DAY, "c1", P, "t1"): -1}
    [delta] = changes.activity.values()
    assert (delta.messages, delta.sentiments) == (-1, {NEG: -1})


def test_changes_that_cancel_within_a_batch_are_dropped() -> None:
    a, b = state(Q), state(P)
    assert not rollup_changes([(None, a), (a, b), (b, None)])


def test_only_insight_kinds_keep_a_topic() -> None:
    assert state(SOCIAL, topic_id="t1").topic_id is None
    assert state(Q, topic_id="t1").topic_id == "t1"


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "discord:acme:1",
        "community_id": "acme",
        "channel": {"id": "c1", "name": "general"},
        "created_at": datetime(2024, 5, 1, 23, 59, tzinfo=UTC),
        "analysis": Analysis(kind=Q, sentiment=NEG).model_dump(),
        "topic_id": "t1",
    }
    doc.update(overrides)
    return doc


def test_state_of_a_stored_message() -> None:
    assert state_from_document(document()) == state(Q, NEG, "t1")
    assert state_from_document(document(analysis=None)) is None
    assert state_from_document(document(deleted_at=datetime(2024, 5, 2, tzinfo=UTC))) is None
    assert state_from_document(None) is None
    # The day is the UTC day, whatever the offset of the stored time.
    paris = datetime(2024, 5, 2, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert state_from_document(document(created_at=paris)) == state(Q, NEG, "t1", day=DAY)


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await ensure_indexes(mongo_db, ROLLUP_INDEXES)
    return mongo_db


async def counters(db: Database) -> tuple[dict[str, int], dict[str, Any]]:
    kinds = {d["_id"]: d["count"] async for d in db[KIND_ROLLUPS].find() if d["count"]}
    activity = {
        d["_id"]: (d["messages"], {k: v for k, v in d.get("sentiment", {}).items() if v})
        async for d in db[ACTIVITY_ROLLUPS].find()
        if d["messages"]
    }
    return kinds, activity


async def test_applied_changes_add_up_and_replays_write_nothing(db: Database) -> None:
    repo = RollupRepository(db)
    first = [(None, state(Q, NEG, "t1")), (None, state(Q, POS, "t1")), (None, state(P, NEG))]
    await repo.apply(rollup_changes(first))
    # The second batch re-reads what the first wrote: a replay, one edit, one deletion.
    second = [
        (state(Q, NEG, "t1"), state(Q, NEG, "t1")),
        (state(Q, POS, "t1"), state(P, POS, "t2")),
        (state(P, NEG), None),
    ]
    await repo.apply(rollup_changes(second))

    reader = RollupReader(db)
    counts = await reader.kind_counts("acme", DAY, DAY)
    assert sorted((c.kind, c.topic_id, c.count) for c in counts) == [(P, "t2", 1), (Q, "t1", 1)]
    [activity] = await reader.activity_counts("acme", DAY, DAY)
    assert (activity.channel_id, activity.messages) == ("c1", 2)
    assert activity.sentiments == {NEG: 1, POS: 1}
    assert await reader.latest_day("acme") == DAY
    assert await reader.latest_day("other") is None


async def test_every_rollup_write_moves_the_communitys_version(db: Database) -> None:
    repo = RollupRepository(db)
    reader = RollupReader(db)
    assert await reader.version("acme") == 0
    await repo.apply(rollup_changes([(None, state(Q))]))
    assert await reader.version("acme") == 1
    # A replay changes no counter, and so no version.
    await repo.apply(rollup_changes([(state(Q), state(Q))]))
    assert await reader.version("acme") == 1
    await repo.apply(rollup_changes([(state(Q), state(P))]))
    assert await reader.version("acme") == 2
    await db["messages"].insert_one(document(_id="m1"))
    await repo.rebuild("acme")
    assert await reader.version("acme") == 3
    assert await reader.version("other") == 0


async def test_windows_and_channel_filters(db: Database) -> None:
    repo = RollupRepository(db)
    transitions: list[tuple[RollupState | None, RollupState | None]] = [
        (None, state(Q, day=DAY + timedelta(days=n), channel=f"c{n % 2}")) for n in range(10)
    ]
    await repo.apply(rollup_changes(transitions))
    reader = RollupReader(db)
    window = await reader.kind_counts("acme", DAY + timedelta(days=2), DAY + timedelta(days=5))
    assert sum(c.count for c in window) == 4
    odd = await reader.activity_counts("acme", DAY, DAY + timedelta(days=9), channel_id="c1")
    assert [(a.channel_id, a.messages) for a in odd] == [("c1", 5)]
    assert await reader.latest_day("acme", channel_id="c0") == DAY + timedelta(days=8)


async def test_rebuild_from_messages_matches_incremental_counts(db: Database) -> None:
    repo = RollupRepository(db)
    docs = [
        document(_id="m1"),
        document(_id="m2", analysis=Analysis(kind=P, sentiment=POS).model_dump(), topic_id=None),
        document(_id="m3", channel={"id": "c2"}, created_at=datetime(2024, 5, 2, tzinfo=UTC)),
        document(_id="m4", deleted_at=datetime(2024, 5, 3, tzinfo=UTC)),
        document(_id="m5", analysis=None),
        # A topic on a kind that has none is not counted as a topic.
        document(_id="m6", analysis=Analysis(kind=SOCIAL).model_dump(), topic_id="t9"),
    ]
    await db["messages"].insert_many(docs)
    await repo.apply(rollup_changes((None, state_from_document(d)) for d in docs))
    incremental = await counters(db)

    # Drift the counters, then rebuild: the rebuild restores exactly the same counts.
    await repo.apply(rollup_changes([(None, state(P, day=date(2023, 1, 1)))]))
    await db[KIND_ROLLUPS].update_one({}, {"$inc": {"count": 5}})
    result = await repo.rebuild("acme")
    assert result.written >= 1
    assert result.removed >= 1
    assert await counters(db) == incremental
    assert (await repo.rebuild("acme")).written == 0
