"""How many records topics hold, read from the broker's offsets."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pepite_kit.settings import KafkaSettings


class TopicSizes:
    """Counts the records each topic holds: end offset minus start offset, per partition.

    An admin client (partitions) and a consumer without a group (offsets) are kept for
    the object's life, so a periodic reader does not reconnect to the broker each time;
    the consumer never joins a group nor commits.
    Retention and ``delete_records`` move the start offset, so what was removed is not
    counted. Kafka's offsets count records exactly; the local broker (Tansu) reports the
    end of a partition as its last batch's first offset plus one, which is exact for
    topics written one record per batch, as dead-letter topics are.

    Args:
        settings: Where the brokers are.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.kafka_client_id}-offsets-admin",
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.kafka_client_id}-offsets",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )

    async def start(self) -> None:
        await self._admin.start()
        try:
            await self._consumer.start()
        except BaseException:
            await self._admin.close()
            raise

    async def stop(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

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

    async def records(self, topics: Sequence[str]) -> dict[str, int]:
        """Records held by each of ``topics``; a topic the broker does not know holds 0.

        Raises:
            aiokafka.errors.KafkaError: The broker could not be asked.
        """
        partitions = await self._partitions(topics)
        if not partitions:
            return dict.fromkeys(topics, 0)
        starts = await self._consumer.beginning_offsets(partitions)
        ends = await self._consumer.end_offsets(partitions)
        counts = dict.fromkeys(topics, 0)
        for tp in partitions:
            counts[tp.topic] += max(ends[tp] - starts[tp], 0)
        return counts

    async def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        """The partitions of those of ``topics`` the broker describes without an error."""
        described = await self._admin.describe_topics(list(topics))
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            if topic["error_code"] == 0 and topic["topic"] in topics
            for partition in topic["partitions"]
        ]
