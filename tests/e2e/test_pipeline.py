"""The first flow, for real: export file -> Kafka -> classifier -> MongoDB."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pepite_contracts import Topic
from tests.e2e.conftest import Env, ServiceProcess, processed, read_truth, wait_for

pytestmark = pytest.mark.slow

COMMUNITY = "sample"


def stored_ids(db: Any) -> list[str]:
    return [doc["_id"] for doc in db["messages"].find({"community_id": COMMUNITY}, {"_id": 1})]


def test_every_message_lands_exactly_once_and_reimport_adds_nothing(
    env: Env, classifier: ServiceProcess, sample_community: Path, sync_db: Any
) -> None:
    truth = read_truth(sample_community, COMMUNITY)
    raw_topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + Topic.MESSAGES_RAW

    first = env.pepite("import", str(sample_community), "--community", COMMUNITY, "--no-progress")
    assert first.stdout.count("imported ") == truth.channels
    wait_for(
        lambda: processed(classifier, raw_topic) >= len(truth.message_ids),
        within_s=180,
        what="the classifier to process the import",
    )
    ids = stored_ids(sync_db)
    assert len(ids) == len(truth.message_ids)
    assert set(ids) == truth.message_ids

    env.pepite("import", str(sample_community), "--community", COMMUNITY, "--no-progress")
    wait_for(
        lambda: processed(classifier, raw_topic) >= 2 * len(truth.message_ids),
        within_s=180,
        what="the classifier to process the second import",
    )
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
    env: Env, sample_community: Path, sync_db: Any
) -> None:
    truth = read_truth(sample_community, COMMUNITY)
    raw_topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + Topic.MESSAGES_RAW
    # Publish first, so the classifier is surely in the middle of the stream when killed.
    env.pepite("import", str(sample_community), "--community", COMMUNITY, "--no-progress")

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
            within_s=240,
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


async def test_a_poison_record_goes_to_the_dlq_and_the_classifier_keeps_going(
    env: Env, classifier: ServiceProcess, sample_community: Path, sync_db: Any
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
        "import", str(sample_community / "rust.json"), "--community", COMMUNITY, "--no-progress"
    )
    expected = len(read_truth_single(sample_community / "rust.json"))
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
