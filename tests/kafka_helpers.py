"""Reading back what was published, from the real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from pepite_kit import KafkaSettings


async def read_topic(
    settings: KafkaSettings, topic: str, *, timeout_s: float = 30.0, quiet_s: float = 2.0
) -> list[bytes]:
    """Every record value of ``topic``, read from the start.

    Reads until no record has arrived for ``quiet_s`` after at least one came (or,
    when the topic stays empty, until ``timeout_s``): a test asserting "nothing was
    published" therefore waits the whole timeout, so give those a short one.

    The reader has no consumer group (it takes every partition and commits nothing): a
    group join waits on the broker for half a session timeout, 5 s with the client's
    default, before the first record comes.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout_s
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
