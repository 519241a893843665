"""Settings read the environment names the stack and tests rely on."""

from __future__ import annotations

import pytest

from pepite_kit import ServiceSettings


def test_bootstrap_and_uri_come_from_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "broker:9999")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db:1/?replicaSet=rs9")
    monkeypatch.setenv("PEPITE_KAFKA_IDEMPOTENCE", "true")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap == "broker:9999"
    assert settings.mongodb_uri == "mongodb://db:1/?replicaSet=rs9"
    assert settings.kafka_idempotence is True


def test_topic_prefix_applies_to_every_topic() -> None:
    settings = ServiceSettings(kafka_topic_prefix="staging.")
    assert settings.topic_name("messages.raw") == "staging.messages.raw"
    assert settings.topic_names(["a", "b.dlq"]) == ["staging.a", "staging.b.dlq"]


def test_a_bad_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="kafka_topic_prefix"):
        ServiceSettings(kafka_topic_prefix="no spaces")


def test_partitioning_matches_kafkas_default() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from pepite_kit.producer import KeyHashPartitioner

    ours = KeyHashPartitioner()
    partitions = list(range(6))
    for key in [b"acme:c1", b"acme:c2", b"sample:123456789", "é".encode()]:
        for _ in range(2):  # the second call is served from the memo
            assert ours(key, partitions, partitions) == DefaultPartitioner()(
                key, partitions, partitions
            )
