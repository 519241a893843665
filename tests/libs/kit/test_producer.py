"""EventPublisher shared by several coroutines, against the real broker."""

from __future__ import annotations

import asyncio

import pytest
from tests.kafka_helpers import read_topic

from pepite_contracts import Topic, partition_key
from pepite_kit import EventPublisher, KafkaSettings, ensure_topics

pytestmark = pytest.mark.asyncio


async def test_concurrent_publishers_lose_nothing_and_flush_waits_for_every_record(
    kafka_settings: KafkaSettings,
) -> None:
    # Small batches, so that batches fill up and are handed over while the other
    # coroutine is appending to the same partition.
    settings = kafka_settings.model_copy(update={"kafka_max_batch_bytes": 2048})
    topic = settings.topic_name(Topic.MESSAGES_RAW)
    await ensure_topics(settings, [topic])
    key = partition_key("acme", "c1")

    async with EventPublisher(settings) as publisher:

        async def publish(name: str, count: int) -> None:
            for n in range(count):
                await publisher.send(topic, f"{name}-{n}".encode(), key=key)
                if n % 50 == 49:
                    await publisher.flush()
                await asyncio.sleep(0)

        await asyncio.gather(publish("stage", 600), publish("placer", 400))
        await publisher.flush()
        assert publisher.pending == 0

    values = sorted(v.decode() for v in await read_topic(settings, topic))
    expected = sorted([f"stage-{n}" for n in range(600)] + [f"placer-{n}" for n in range(400)])
    assert values == expected
