"""Contracts: decoding, compatibility and the invariants every service relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MemberJoined,
    MembershipChange,
    MessageIngested,
    MessageType,
    NormalizedMessage,
    Platform,
    Topic,
    all_topics,
    dead_letter_topic,
    decode_event,
    deterministic_event_id,
    encode_event,
    partition_key,
    stable_id,
)

FIXTURES = Path(__file__).parent / "fixtures"


def a_message(**overrides: object) -> NormalizedMessage:
    fields: dict[str, object] = {
        "id": stable_id("discord", "acme", "1"),
        "platform": Platform.DISCORD,
        "community_id": "acme",
        "native_id": "1",
        "channel": ChannelRef(id="c1", name="general"),
        "author": Member(id="discord:acme:u1", native_id="u1", name="ann"),
        "text": "hi",
        "created_at": datetime(2024, 5, 1, 12, tzinfo=UTC),
    }
    fields.update(overrides)
    return NormalizedMessage.model_validate(fields)


def test_an_old_fixture_still_parses() -> None:
    event = decode_event((FIXTURES / "message_ingested_v1.json").read_bytes())
    assert isinstance(event, MessageIngested)
    assert event.payload.type is MessageType.REPLY
    assert event.payload.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert event.payload.created_at.utcoffset() == timedelta(0)
    assert event.payload.raw == {"embeds": [{"title": "t"}]}


def test_round_trip_keeps_everything() -> None:
    event = MessageIngested(community_id="acme", payload=a_message(text="émoji 🎉\nligne 2"))
    assert decode_event(encode_event(event)) == event


def test_fields_added_by_a_newer_producer_are_tolerated() -> None:
    data = encode_event(MessageIngested(community_id="acme", payload=a_message()))
    newer = data.replace(b'"payload":{', b'"future_field":1,"payload":{"also_new":true,', 1)
    assert isinstance(decode_event(newer), MessageIngested)


def test_times_are_normalized_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    message = a_message(created_at=datetime(2024, 5, 1, 14, tzinfo=paris))
    assert message.created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert message.created_at.tzinfo == UTC


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="created_at"):
        a_message(created_at=datetime(2024, 5, 1, 12))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"type": "message.exploded", "community_id": "acme", "payload": {}}',
        b'{"type": "message.ingested", "community_id": "acme", "payload": {"id": 1}}',
        b'{"type": "message.ingested", "community_id": "a:b", "payload": {}}',
    ],
)
def test_bad_records_fail_to_decode(data: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_event(data)


def test_community_ids_cannot_break_stable_ids() -> None:
    with pytest.raises(ValidationError, match="community_id"):
        a_message(community_id="a:b")


def test_member_events_decode_to_their_type() -> None:
    change = MembershipChange(
        member=Member(id="discord:acme:u2", native_id="u2", name="bob"),
        platform=Platform.DISCORD,
        community_id="acme",
        at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    event = MemberJoined(community_id="acme", payload=change)
    assert isinstance(decode_event(encode_event(event)), MemberJoined)


def test_topics_each_have_a_dead_letter_twin() -> None:
    names = all_topics()
    for topic in Topic:
        assert topic.value in names
        assert dead_letter_topic(topic.value) in names
        assert topic.dlq == f"{topic.value}.dlq"


def test_keys_and_ids_are_stable() -> None:
    assert partition_key("acme", "c1") == b"acme:c1"
    assert stable_id("slack", "acme", "123.456") == "slack:acme:123.456"
    assert deterministic_event_id("a", "b") == deterministic_event_id("a", "b")
    assert deterministic_event_id("a", "b") != deterministic_event_id("ab")
