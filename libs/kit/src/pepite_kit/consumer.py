"""The consumer loop every Pépite consumer runs.

Delivery is at-least-once: auto-commit is off and offsets are committed only after
the handler's writes succeeded, so handlers must write idempotently (upserts keyed
by stable ids). A record that keeps failing goes to the topic's ``.dlq`` twin with
the error in its headers and the loop moves on; a record that cannot be decoded goes
there at once. Failures of the infrastructure itself (MongoDB or Kafka unreachable)
are retried without limit instead: dead-lettering a whole stream because the
database restarted would lose nothing but would bury the DLQ in healthy records.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from pymongo.errors import ConnectionFailure

from pepite_contracts import Event, dead_letter_topic, decode_event
from pepite_kit.metrics import (
    CONSUMER_BATCH_SIZE,
    CONSUMER_HANDLER_SECONDS,
    CONSUMER_LAG,
    CONSUMER_RECORDS_CONSUMED,
    CONSUMER_RECORDS_DEAD_LETTERED,
    CONSUMER_RECORDS_FAILED,
    CONSUMER_RECORDS_PROCESSED,
    CONSUMER_RETRIES,
)
from pepite_kit.producer import EventPublisher
from pepite_kit.settings import KafkaSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

BatchHandler = Callable[[Sequence[T]], Awaitable[None]]
Decoder = Callable[[bytes], T]

#: Errors that mean "the infrastructure is not there right now", retried without limit.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    KafkaConnectionError,
    ConnectionError,
    TimeoutError,
)

_MAX_ERROR_HEADER_CHARS = 2000


class LoopState(enum.StrEnum):
    """Where a consumer loop is in its life."""

    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class DeadLetter:
    """Why a record was dead-lettered; written into the DLQ record's headers."""

    stage: str
    error: BaseException
    attempts: int


@dataclass
class _Decoded(Generic[T]):
    record: ConsumerRecord[bytes, bytes]
    event: T


@dataclass
class _Stats:
    positions: dict[TopicPartition, int] = field(default_factory=dict)


class ConsumerLoop(Generic[T]):
    """Consume topics in a group, hand decoded batches to handlers, commit, dead-letter.

    Args:
        name: A short name for logs.
        settings: Kafka settings (bootstrap, batch sizes, retry policy).
        group_id: The consumer group; its committed offsets are where a restart resumes.
        handlers: One batch handler per subscribed topic.
        publisher: Used to write dead-lettered records.
        decode: Turns a record value into the handler's input; failures are dead-lettered.
        transient_errors: Exceptions retried without limit (and never dead-lettered).
    """

    def __init__(
        self,
        *,
        name: str,
        settings: KafkaSettings,
        group_id: str,
        handlers: Mapping[str, BatchHandler[T]],
        publisher: EventPublisher,
        decode: Decoder[T],
        transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    ) -> None:
        if not handlers:
            raise ValueError("a consumer loop needs at least one topic handler")
        self.name = name
        self.group_id = group_id
        self._settings = settings
        self._handlers = dict(handlers)
        self._publisher = publisher
        self._decode = decode
        self._transient = transient_errors
        self._stopping = asyncio.Event()
        self._stats = _Stats()
        self.state = LoopState.CREATED
        self.last_error: str | None = None

    @property
    def topics(self) -> list[str]:
        return list(self._handlers)

    def stop(self) -> None:
        """Ask the loop to finish its current batch, commit, and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop` is called; raises if the loop cannot go on."""
        consumer = AIOKafkaConsumer(
            *self._handlers,
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id=f"{self._settings.kafka_client_id}-{self.name}",
            group_id=self.group_id,
            enable_auto_commit=False,
            # Committed offsets win; a new group starts from the beginning, never the end,
            # because a consumer that starts after the producer must still see everything.
            auto_offset_reset="earliest",
            max_poll_records=self._settings.kafka_max_poll_records,
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(self._settings.kafka_session_timeout_ms // 3, 100),
            request_timeout_ms=max(
                self._settings.kafka_request_timeout_ms,
                self._settings.kafka_session_timeout_ms + 5000,
            ),
        )
        await consumer.start()
        self.state = LoopState.RUNNING
        logger.info("consumer started", extra={"group": self.group_id, "topics": self.topics})
        try:
            while not self._stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=self._settings.kafka_poll_timeout_ms,
                    max_records=self._settings.kafka_max_poll_records,
                )
                if fetched:
                    if not await self._process(fetched):
                        # Stopped while the infrastructure was down: release the batch
                        # uncommitted, the next owner of these partitions redoes it.
                        break
                    await self._commit(consumer, fetched)
                self._record_lag(consumer)
        except Exception as exc:
            self.state = LoopState.FAILED
            self.last_error = repr(exc)
            logger.exception("consumer loop failed", extra={"group": self.group_id})
            raise
        finally:
            # Leaves the group so partitions are reassigned at once, not after a timeout.
            await consumer.stop()
            if self.state is not LoopState.FAILED:
                self.state = LoopState.STOPPED
            logger.info("consumer stopped", extra={"group": self.group_id})

    async def _process(
        self, fetched: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> bool:
        by_topic: dict[str, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp, records in fetched.items():
            by_topic.setdefault(tp.topic, []).extend(records)
        for topic, records in by_topic.items():
            CONSUMER_RECORDS_CONSUMED.labels(topic, self.group_id).inc(len(records))
            decoded: list[_Decoded[T]] = []
            for record in records:
                try:
                    decoded.append(_Decoded(record, self._decode(record.value or b"")))
                except Exception as exc:
                    CONSUMER_RECORDS_FAILED.labels(topic, self.group_id, "decode").inc()
                    if not await self._dead_letter(record, DeadLetter("decode", exc, 1)):
                        return False
            if decoded and not await self._handle(topic, decoded):
                return False
        return True

    async def _handle(self, topic: str, batch: list[_Decoded[T]]) -> bool:
        """Run the handler on a batch; isolate and dead-letter records that keep failing."""
        error = await self._call_with_retries(topic, batch, self._settings.kafka_handler_attempts)
        if error is None:
            CONSUMER_RECORDS_PROCESSED.labels(topic, self.group_id).inc(len(batch))
            return True
        if isinstance(error, _StopRequestedError):
            return False
        if len(batch) == 1:
            CONSUMER_RECORDS_FAILED.labels(topic, self.group_id, "handler").inc()
            return await self._dead_letter(
                batch[0].record,
                DeadLetter("handler", error, self._settings.kafka_handler_attempts),
            )
        # One bad record must not sink its neighbours: retry them one by one.
        logger.warning(
            "batch failed, isolating records",
            extra={"group": self.group_id, "topic": topic, "records": len(batch)},
        )
        for item in batch:
            single_error = await self._call_with_retries(topic, [item], 1)
            if single_error is None:
                CONSUMER_RECORDS_PROCESSED.labels(topic, self.group_id).inc()
                continue
            if isinstance(single_error, _StopRequestedError):
                return False
            CONSUMER_RECORDS_FAILED.labels(topic, self.group_id, "handler").inc()
            if not await self._dead_letter(
                item.record,
                DeadLetter("handler", single_error, self._settings.kafka_handler_attempts + 1),
            ):
                return False
        return True

    async def _call_with_retries(
        self, topic: str, batch: list[_Decoded[T]], attempts: int
    ) -> BaseException | None:
        """Return ``None`` on success, else the last error (a stop request included)."""
        handler = self._handlers[topic]
        events = [item.event for item in batch]
        failures = 0
        transient_failures = 0
        while True:
            started = time.perf_counter()
            try:
                await handler(events)
            except self._transient as exc:
                transient_failures += 1
                CONSUMER_RETRIES.labels(topic, self.group_id, "transient").inc()
                logger.warning(
                    "infrastructure unavailable, retrying",
                    extra={"group": self.group_id, "topic": topic, "error": repr(exc)},
                )
                if not await self._backoff(transient_failures):
                    return _StopRequestedError()
                continue
            except Exception as exc:
                failures += 1
                self.last_error = repr(exc)
                if failures >= attempts:
                    return exc
                CONSUMER_RETRIES.labels(topic, self.group_id, "error").inc()
                if not await self._backoff(failures):
                    return _StopRequestedError()
                continue
            CONSUMER_HANDLER_SECONDS.labels(topic, self.group_id).observe(
                time.perf_counter() - started
            )
            CONSUMER_BATCH_SIZE.labels(topic, self.group_id).observe(len(events))
            return None

    async def _backoff(self, attempt: int) -> bool:
        """Sleep before a retry; return ``False`` if a stop was requested meanwhile."""
        delay = min(
            self._settings.kafka_retry_backoff_s * 2 ** (attempt - 1),
            self._settings.kafka_retry_backoff_max_s,
        )
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], why: DeadLetter) -> bool:
        """Publish the record to its DLQ twin and wait for the ack; retried while Kafka is down."""
        topic = dead_letter_topic(record.topic)
        headers = [
            *(record.headers or ()),
            ("pepite-dlq-stage", why.stage.encode()),
            ("pepite-dlq-error", _describe(why.error).encode()),
            ("pepite-dlq-error-type", type(why.error).__name__.encode()),
            ("pepite-dlq-attempts", str(why.attempts).encode()),
            ("pepite-dlq-source-topic", record.topic.encode()),
            ("pepite-dlq-source-partition", str(record.partition).encode()),
            ("pepite-dlq-source-offset", str(record.offset).encode()),
            ("pepite-dlq-group", self.group_id.encode()),
            ("pepite-dlq-failed-at", datetime.now(UTC).isoformat().encode()),
        ]
        attempt = 0
        while True:
            try:
                await self._publisher.send(
                    topic, record.value or b"", key=record.key, headers=headers
                )
                await self._publisher.flush()
            except KafkaError as exc:
                attempt += 1
                logger.warning("dead-letter publish failed, retrying", extra={"error": repr(exc)})
                if not await self._backoff(attempt):
                    return False
                continue
            CONSUMER_RECORDS_DEAD_LETTERED.labels(record.topic, self.group_id).inc()
            logger.error(
                "record dead-lettered",
                extra={
                    "group": self.group_id,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "stage": why.stage,
                    "error": _describe(why.error),
                },
            )
            return True

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        fetched: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced under us: the new owner replays these records, and
            # idempotent writes make that harmless.
            logger.warning("commit rejected after a rebalance", extra={"group": self.group_id})
            return
        self._stats.positions.update(offsets)

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag_by_topic: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._stats.positions.get(tp)
            if highwater is None or position is None:
                continue
            lag_by_topic[tp.topic] = lag_by_topic.get(tp.topic, 0) + max(highwater - position, 0)
        for topic, lag in lag_by_topic.items():
            CONSUMER_LAG.labels(topic, self.group_id).set(lag)


class _StopRequestedError(Exception):
    """Returned (not raised) when a retry loop gave up because of a stop request."""


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text[:_MAX_ERROR_HEADER_CHARS]


def event_loop_for(
    *,
    name: str,
    settings: KafkaSettings,
    group_id: str,
    handlers: Mapping[str, BatchHandler[Event]],
    publisher: EventPublisher,
) -> ConsumerLoop[Event]:
    """A consumer loop that decodes records as Pépite events (the usual case)."""
    return ConsumerLoop(
        name=name,
        settings=settings,
        group_id=group_id,
        handlers=handlers,
        publisher=publisher,
        decode=decode_event,
    )
