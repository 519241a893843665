"""The settings every service inherits; each service adds its own fields in one subclass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KafkaCompression = Literal["lz4", "gzip", "zstd", "snappy"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka-API broker and how producers and consumers behave."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "PEPITE_KAFKA_BOOTSTRAP"),
        description="Comma-separated host:port list of the brokers.",
    )
    kafka_client_id: str = "pepite"
    #: Prepended to every topic name, so several environments can share one cluster.
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    #: Off by default because the local broker cannot do it; real Kafka can (compose turns it on).
    kafka_idempotence: bool = False
    #: zstd: aiokafka compresses lz4 at level 9 (~90 MB/s here, a fifth of an import's
    #: CPU), zstd at level 3 (~300 MB/s) and twice as small.
    kafka_compression: KafkaCompression = "zstd"
    kafka_linger_ms: int = Field(default=5, ge=0)
    kafka_max_batch_bytes: int = Field(default=512 * 1024, gt=0)
    kafka_max_request_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    kafka_request_timeout_ms: int = Field(default=30_000, gt=0)
    kafka_partitions: int = Field(default=6, ge=1, description="Partitions of topics we create.")
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_max_poll_records: int = Field(default=2000, ge=1)
    kafka_poll_timeout_ms: int = Field(default=500, ge=1)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    #: Attempts of a failing handler before the records are isolated and dead-lettered.
    kafka_handler_attempts: int = Field(default=3, ge=1)
    kafka_retry_backoff_s: float = Field(default=0.2, gt=0)
    kafka_retry_backoff_max_s: float = Field(default=10.0, gt=0)

    def topic_name(self, topic: str) -> str:
        """The name of ``topic`` on the broker, with this environment's prefix."""
        return self.kafka_topic_prefix + topic

    def topic_names(self, topics: Iterable[str]) -> list[str]:
        """:meth:`topic_name` of each topic."""
        return [self.topic_name(topic) for topic in topics]


class MongoSettings(BaseSettings):
    """How to reach MongoDB."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    mongodb_uri: str = Field(
        default="mongodb://127.0.0.1:27017/?replicaSet=rs0",
        validation_alias=AliasChoices("MONGODB_URI", "PEPITE_MONGODB_URI"),
    )
    mongodb_db: str = "pepite"
    mongodb_timeout_ms: int = Field(default=10_000, gt=0)


class ServiceSettings(KafkaSettings, MongoSettings):
    """Base of every service's one ``Settings`` class."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "pepite"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
