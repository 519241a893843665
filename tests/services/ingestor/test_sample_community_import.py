"""Import the real sample community (DiscordChatExporter JSON) end to end, without Kafka.

The dataset is found through the ``sample_community`` fixture: ``PEPITE_SHARED_DIR``,
else ``<repo>/../shared``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pepite_contracts import MemberJoined, MessageIngested, MessageType, decode_event, encode_event
from pepite_ingestor.importers import detect_format, iter_export


def expected_raw(source: dict[str, Any]) -> dict[str, Any]:
    # The sample's only field the contracts do not model is a mentioned user's isBot.
    if not any(mention["isBot"] for mention in source["mentions"]):
        return {}
    return {"mentions": [{"isBot": True} if m["isBot"] else {} for m in source["mentions"]]}


@pytest.mark.parametrize("name", ["rust.json", "ubuntu-meeting.json"])
def test_sample_channel_streams_completely(sample_community: Path, name: str) -> None:
    path = sample_community / name
    source = json.loads(path.read_text(encoding="utf-8"))["messages"]
    source_types = Counter(message["type"] for message in source)
    source_messages = [message for message in source if message["type"] != "GuildMemberJoin"]

    assert detect_format(path) == "discord"
    events = list(iter_export(path, "ubuntu-friends"))

    assert len(events) == len(source)
    joins = [event for event in events if isinstance(event, MemberJoined)]
    messages = [event for event in events if isinstance(event, MessageIngested)]
    assert len(joins) == source_types["GuildMemberJoin"]
    assert [event.payload.native_id for event in messages] == [m["id"] for m in source_messages]
    replies = [event for event in messages if event.payload.type is MessageType.REPLY]
    assert len(replies) == source_types["Reply"]
    assert all(event.payload.reply_to_id for event in replies)
    # Nothing is lost, and nothing that says nothing is kept: events stay small.
    assert [event.payload.raw for event in messages] == [expected_raw(m) for m in source_messages]
    assert len({event.event_id for event in events}) == len(events)
    for event in events:
        assert decode_event(encode_event(event)) == event
