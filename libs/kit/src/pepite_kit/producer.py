"""The one Kafka producer setup: acks=all, compression, idempotence as a setting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

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
    """Publishes events and raw records in batches; ``flush`` waits for the broker's acks.

    Records are appended to one open batch per partition and a batch is handed to the
    producer when it is full or on :meth:`flush`: appending to a batch costs a fraction
    of a per-record ``send``, which matters when an import publishes a million
    records. Callers flush when they need durability (before committing offsets,
    at the end of an import chunk); :meth:`stop` flushes too.

    Several coroutines may share one publisher (a consumer and a background job): a
    flush returns only once every record queued before it is acknowledged, whoever
    queued it and whoever else is flushing.
    """

    def __init__(self, settings: KafkaSettings, *, client_id: str | None = None) -> None:
        self._settings = settings
        self._partitioner = KeyHashPartitioner()
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
            partitioner=self._partitioner,
        )
        self._partitions: dict[str, list[int]] = {}
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._in_flight: list[tuple[asyncio.Future[object], str, int]] = []
        # Guards the open batches across the awaits of handing one to the producer.
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def broker_reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether a broker answers a metadata request now (for readiness checks)."""
        try:
            metadata = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)
        except Exception:
            return False
        return bool(metadata.brokers())

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
        """Queue one record; it is sent with its batch, and acknowledged by :meth:`flush`."""
        async with self._lock:
            partitions = self._partitions.get(topic)
            if partitions is None:
                partitions = sorted(await self._producer.partitions_for(topic))
                self._partitions[topic] = partitions
            slot = (topic, self._partitioner(key, partitions, partitions))
            record_headers = list(headers) if headers else []
            batch = self._open.get(slot)
            if batch is None:
                batch = self._open[slot] = _OpenBatch(self._producer.create_batch())
            if batch.builder.append(key=key, value=value, timestamp=None, headers=record_headers):
                batch.records += 1
                return
            # Full: hand it over and start the next one (a first record always fits).
            await self._submit(slot)
            batch = self._open[slot] = _OpenBatch(self._producer.create_batch())
            batch.builder.append(key=key, value=value, timestamp=None, headers=record_headers)
            batch.records += 1

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """Queue ``(topic, key, value)`` records in order, as :meth:`send` would.

        For bulk producers (imports): records that fit their partition's open batch
        are appended without a coroutine call each, a third of the cost of ``send``.
        """
        partitioner = self._partitioner
        open_batches = self._open
        for topic, key, value in records:
            partitions = self._partitions.get(topic)
            if partitions is None:
                await self.send(topic, value, key=key)
                continue
            slot = (topic, partitioner(key, partitions, partitions))
            batch = open_batches.get(slot)
            if batch is not None and batch.builder.append(
                key=key, value=value, timestamp=None, headers=[]
            ):
                batch.records += 1
            else:
                await self.send(topic, value, key=key)

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
        return sum(batch.records for batch in self._open.values()) + sum(
            count for _, _, count in self._in_flight
        )

    async def _submit(self, slot: tuple[str, int]) -> None:
        batch = self._open.pop(slot)
        topic, partition = slot
        future = await self._producer.send_batch(batch.builder, topic, partition=partition)
        self._in_flight.append((future, topic, batch.records))

    async def flush(self) -> None:
        """Send every open batch and wait for all; raise the first delivery error."""
        async with self._lock:
            for slot in list(self._open):
                await self._submit(slot)
            waiting = list(self._in_flight)
        if not waiting:
            return
        results = await asyncio.gather(*(f for f, _, _ in waiting), return_exceptions=True)
        # A concurrent flush may have settled (and counted) some of them already.
        still_listed = {id(entry) for entry in self._in_flight}
        settled = {id(entry) for entry in waiting}
        self._in_flight = [entry for entry in self._in_flight if id(entry) not in settled]
        first_error: BaseException | None = None
        for entry, result in zip(waiting, results, strict=True):
            if isinstance(result, BaseException):
                first_error = first_error or result
            if id(entry) not in still_listed:
                continue
            _, topic, count = entry
            if isinstance(result, BaseException):
                PRODUCER_ERRORS.labels(topic).inc(count)
            else:
                PRODUCER_RECORDS.labels(topic).inc(count)
        if first_error is not None:
            raise first_error


@dataclass
class _OpenBatch:
    builder: BatchBuilder
    records: int = 0


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
