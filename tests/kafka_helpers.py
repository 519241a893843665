"""Reading back what was published, from the real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from pepite_kit import KafkaSettings


async def read_topic(
    settings: KafkaSettings, topic: str, *, timeout_s: float = 30.0, quiet_s: float = 2.0
) -> list[bytes]:
    """Every record value of ``topic``, read from the start.

    Reads until no record has arrived for ``quiet_s`` after at least one came (or,
    when the topic stays empty, until ``timeout_s``): a test asserting "nothing was
    published" therefore waits the whole timeout, so give those a short one.

    The reader takes every partition itself instead of joining a consumer group: it
    commits nothing, and a group join waits on the broker for half a session timeout
    (5 s with the client's default) before the first record comes.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # While the topic does not exist yet, its partitions show up at the next refresh.
        metadata_max_age_ms=300,
    )
    await consumer.start()
    values: list[bytes] = []
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and loop.time() < deadline:
            await asyncio.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return values
        consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
        last_seen: float | None = None
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records = [record for part in batch.values() for record in part]
            if records:
                values.extend(record.value or b"" for record in records)
                last_seen = loop.time()
            elif last_seen is not None and loop.time() - last_seen >= quiet_s:
                break
    finally:
        await consumer.stop()
    return values
