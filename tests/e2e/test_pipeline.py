"""The first flow, for real: export file -> Kafka -> classifier -> MongoDB."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pepite_contracts import MessageAnalyzed, Topic, decode_event
from pepite_kit import KafkaSettings
from tests.e2e.conftest import (
    Env,
    ServiceProcess,
    metric_value,
    processed,
    read_truth,
    wait_classified,
    wait_for,
)
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.slow

COMMUNITY = "sample"


def stored_ids(db: Any) -> list[str]:
    return [doc["_id"] for doc in db["messages"].find({"community_id": COMMUNITY}, {"_id": 1})]


def analyzed_events(env: Env) -> list[MessageAnalyzed]:
    """Every ``message.analyzed`` event published in this environment."""
    settings = KafkaSettings(
        kafka_bootstrap=env.vars["KAFKA_BOOTSTRAP"],
        kafka_topic_prefix=env.vars["PEPITE_KAFKA_TOPIC_PREFIX"],
    )
    values = asyncio.run(
        read_topic(settings, settings.topic_name(Topic.MESSAGES_ANALYZED), quiet_s=3.0)
    )
    return [event for value in values if isinstance(event := decode_event(value), MessageAnalyzed)]


def analyzed(service: ServiceProcess) -> float:
    return metric_value(service.metrics(), "pepite_messages_analyzed_total")


def counted_in_rollups(db: Any) -> int:
    return sum(doc["messages"] for doc in db["activity_rollups"].find({"community_id": COMMUNITY}))


def kinds_in_rollups(db: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for doc in db["kind_rollups"].find({"community_id": COMMUNITY}):
        counts[doc["kind"]] += doc["count"]
    return +counts


def kinds_stored(db: Any) -> Counter[str]:
    pipeline = [
        {"$match": {"community_id": COMMUNITY, "analysis": {"$exists": True}}},
        {"$group": {"_id": "$analysis.kind", "n": {"$sum": 1}}},
    ]
    return Counter({doc["_id"]: doc["n"] for doc in db["messages"].aggregate(pipeline)})


def test_every_message_lands_exactly_once_and_reimport_adds_nothing(
    env: Env, classifier: ServiceProcess, small_community: Path, sync_db: Any
) -> None:
    truth = read_truth(small_community, COMMUNITY)
    raw_topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + Topic.MESSAGES_RAW

    first = env.pepite("import", str(small_community), "--community", COMMUNITY, "--no-progress")
    assert first.stdout.count("imported ") == truth.channels
    # The rollups move with topic placement, so they are compared with the analyses after.
    wait_classified(env, classifier, sync_db, len(truth.message_ids), within_s=420)
    ids = stored_ids(sync_db)
    assert len(ids) == len(truth.message_ids)
    assert set(ids) == truth.message_ids
    # Every message analyzed once, and the rollups say exactly what the analyses say.
    assert analyzed(classifier) == len(truth.message_ids)
    assert counted_in_rollups(sync_db) == len(truth.message_ids)
    stored_kinds = kinds_stored(sync_db)
    assert sum(stored_kinds.values()) == len(truth.message_ids)
    assert kinds_in_rollups(sync_db) == stored_kinds
    # A developer community asks questions and reports problems.
    assert stored_kinds["question"] > 0.05 * len(truth.message_ids)
    assert stored_kinds["problem"] > 0
    # One event per message, and one more for each insight once it is placed (with its
    # refined analysis): the last event of a message says what is stored.
    events = analyzed_events(env)
    assert len({event.event_id for event in events}) == len(events)
    per_message = Counter(event.payload.message_id for event in events)
    assert set(per_message) == truth.message_ids
    assert max(per_message.values()) <= 2
    latest = {event.payload.message_id: event.payload for event in events}
    stored = {
        doc["_id"]: doc["analysis"]["kind"]
        for doc in sync_db["messages"].find({"community_id": COMMUNITY}, {"analysis.kind": 1})
    }
    assert {message_id: p.analysis.kind.value for message_id, p in latest.items()} == stored

    env.pepite("import", str(small_community), "--community", COMMUNITY, "--no-progress")
    wait_for(
        lambda: processed(classifier, raw_topic) >= 2 * len(truth.message_ids),
        within_s=420,
        what="the classifier to process the second import",
    )
    # A re-import is a replay: nothing is analyzed (nor paid for) twice, nothing recounted.
    assert analyzed(classifier) == len(truth.message_ids)
    assert counted_in_rollups(sync_db) == len(truth.message_ids)

    env.pepite("topics", "rebuild", "--community", COMMUNITY)
    report = json.loads(
        env.pepite("insights", "--community", COMMUNITY, "--months", "1", "--format", "json").stdout
    )
    start = datetime.fromisoformat(report["window"]["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(report["window"]["end"]).replace(tzinfo=UTC) + timedelta(days=1)
    in_window = sync_db["messages"].count_documents(
        {"community_id": COMMUNITY, "created_at": {"$gte": start, "$lt": end}}
    )
    assert report["messages"] == in_window > 0
    assert sum(line["count"] for line in report["kinds"]) == in_window
    assert sum(line["percent_of_messages"] for line in report["kinds"]) == pytest.approx(
        100, abs=0.5
    )
    questions = next(line for line in report["kinds"] if line["kind"] == "question")
    assert questions["topics"], "questions are grouped into categories"
    assert sum(topic["count"] for topic in questions["topics"]) == questions["count"]
    assert sync_db["messages"].count_documents({"community_id": COMMUNITY}) == len(
        truth.message_ids
    )

    status = json.loads(env.pepite("status", "--community", COMMUNITY).stdout)
    assert status["messages"] == len(truth.message_ids)
    assert status["channels"] == truth.channels
    assert status["members"] == len(truth.authors)
    assert datetime.fromisoformat(status["first_message_at"]) == datetime.fromisoformat(truth.first)
    assert datetime.fromisoformat(status["last_message_at"]) == datetime.fromisoformat(truth.last)


def test_a_classifier_killed_mid_stream_recovers_without_loss_or_duplicates(
    env: Env, small_community: Path, sync_db: Any
) -> None:
    truth = read_truth(small_community, COMMUNITY)
    raw_topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + Topic.MESSAGES_RAW
    # Publish first, so the classifier is surely in the middle of the stream when killed.
    env.pepite("import", str(small_community), "--community", COMMUNITY, "--no-progress")

    victim = env.service("classifier").start()
    victim.wait_healthy()
    wait_for(
        lambda: sync_db["messages"].count_documents({}) >= 5000,
        within_s=120,
        what="the classifier to store a first part",
    )
    victim.kill()
    partial = sync_db["messages"].count_documents({})
    assert 0 < partial < len(truth.message_ids), "the kill must land mid-stream"

    survivor = env.service("classifier").start()
    try:
        survivor.wait_healthy()
        wait_for(
            lambda: sync_db["messages"].count_documents({}) == len(truth.message_ids),
            within_s=420,
            what="the restarted classifier to finish",
        )
        # The rest of the backlog, replayed records included, must not add anything.
        wait_for(
            lambda: processed(survivor, raw_topic) >= len(truth.message_ids) - partial,
            within_s=60,
            what="the restarted classifier to drain the topic",
        )
    finally:
        assert survivor.stop() == 0
    ids = stored_ids(sync_db)
    assert len(ids) == len(truth.message_ids)
    assert set(ids) == truth.message_ids
    # Killed between any two writes, the restarted classifier still counts each message
    # exactly once: analyses and rollup changes are written in one transaction.
    assert counted_in_rollups(sync_db) == len(truth.message_ids)
    assert kinds_in_rollups(sync_db) == kinds_stored(sync_db)


async def test_a_poison_record_goes_to_the_dlq_and_the_classifier_keeps_going(
    env: Env, classifier: ServiceProcess, small_community: Path, sync_db: Any
) -> None:
    prefix = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"]
    bootstrap = env.vars["KAFKA_BOOTSTRAP"]
    poison = b'{"type": "message.ingested", "community_id": "sample", "payload": {"text": 1}}'
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(prefix + Topic.MESSAGES_RAW, poison, key=b"sample:x")
    finally:
        await producer.stop()

    # A real import after the poison record still gets through.
    env.pepite(
        "import", str(small_community / "rust.json"), "--community", COMMUNITY, "--no-progress"
    )
    expected = len(read_truth_single(small_community / "rust.json"))
    wait_for(
        lambda: sync_db["messages"].count_documents({}) == expected,
        within_s=120,
        what="the import after the poison record",
    )

    consumer = AIOKafkaConsumer(
        prefix + Topic.MESSAGES_RAW.dlq,
        bootstrap_servers=bootstrap,
        group_id=prefix + "dlq-check",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    records = [record for records in batch.values() for record in records]
    assert [r.value for r in records] == [poison]
    headers = dict(records[0].headers)
    assert headers["pepite-dlq-stage"] == b"decode"
    assert headers["pepite-dlq-group"] == b"classifier"
    assert classifier.healthy()


def read_truth_single(path: Path) -> list[str]:
    export = json.loads(path.read_text())
    return [m["id"] for m in export["messages"] if m["type"] != "GuildMemberJoin"]
