"""The one Kafka producer setup: acks=all, compression, idempotence as a setting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from pepite_contracts import EventEnvelope, encode_event
from pepite_kit.metrics import PRODUCER_ERRORS, PRODUCER_RECORDS
from pepite_kit.settings import KafkaSettings

logger = logging.getLogger(__name__)

_PARTITIONER_CACHE_SIZE = 100_000

Headers = Sequence[tuple[str, bytes]]


class KeyHashPartitioner:
    """Kafka's default key partitioning (murmur2, as the Java client), memoized per key.

    Keys are channels, so a few keys carry most records; the pure-Python hash would
    otherwise cost more than the rest of a send.
    """

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= _PARTITIONER_CACHE_SIZE:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class EventPublisher:
    """Publishes events and raw records; ``flush`` waits until the broker acknowledged all."""

    def __init__(self, settings: KafkaSettings, *, client_id: str | None = None) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=client_id or settings.kafka_client_id,
            acks="all",
            enable_idempotence=settings.kafka_idempotence,
            compression_type=settings.kafka_compression,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.kafka_max_batch_bytes,
            max_request_size=settings.kafka_max_request_bytes,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            partitioner=KeyHashPartitioner(),
        )
        self._pending: list[asyncio.Future[object]] = []
        self._pending_topics: list[str] = []

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record; its acknowledgement is awaited by :meth:`flush`."""
        future = await self._producer.send(
            topic, value=value, key=key, headers=list(headers) if headers else None
        )
        self._pending.append(future)
        self._pending_topics.append(topic)

    async def publish(
        self,
        topic: str,
        event: EventEnvelope,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one event, serialized as its JSON contract."""
        await self.send(topic, encode_event(event), key=key, headers=headers)

    @property
    def pending(self) -> int:
        """Records queued and not yet confirmed by :meth:`flush`."""
        return len(self._pending)

    async def flush(self) -> None:
        """Wait for every queued record; raise the first delivery error after counting all."""
        if not self._pending:
            return
        pending, topics = self._pending, self._pending_topics
        self._pending, self._pending_topics = [], []
        results = await asyncio.gather(*pending, return_exceptions=True)
        first_error: BaseException | None = None
        acknowledged: dict[str, int] = {}
        for topic, result in zip(topics, results, strict=True):
            if isinstance(result, BaseException):
                PRODUCER_ERRORS.labels(topic).inc()
                first_error = first_error or result
            else:
                acknowledged[topic] = acknowledged.get(topic, 0) + 1
        for topic, count in acknowledged.items():
            PRODUCER_RECORDS.labels(topic).inc(count)
        if first_error is not None:
            raise first_error


async def ensure_topics(settings: KafkaSettings, topics: Iterable[str]) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Services call this at start-up with their topics and dead-letter twins, so the
    broker never needs auto-creation.
    """
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.kafka_client_id}-admin",
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        new_topics = [
            NewTopic(
                name,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
            for name in missing
        ]
        response = await admin.create_topics(new_topics)
        failures = [
            f"{name}: error {code} {message or ''}".strip()
            for name, code, *rest in response.topic_errors
            for message in (rest[0] if rest else None,)
            # Another service may have created it between our listing and our request.
            if code not in (0, TopicAlreadyExistsError.errno)
        ]
        if failures:
            raise RuntimeError("could not create topics: " + "; ".join(failures))
        logger.info("created topics", extra={"topics": missing})
        return missing
    finally:
        await admin.close()
