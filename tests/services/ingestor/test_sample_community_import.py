"""Import the real sample community (DiscordChatExporter JSON) end to end, without Kafka."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tests.services.ingestor.dce_helpers import shared_dir

from pepite_contracts import MemberJoined, MessageIngested, MessageType, decode_event, encode_event
from pepite_ingestor.importers import detect_format, iter_export

SAMPLE = shared_dir() / "datasets" / "sample-community"


@pytest.mark.parametrize("name", ["rust.json", "ubuntu-meeting.json"])
def test_sample_channel_streams_completely(name: str) -> None:
    path = SAMPLE / name
    if not path.exists():
        pytest.skip(f"sample dataset not found at {path} (set PEPITE_SHARED_DIR)")
    source = json.loads(path.read_text(encoding="utf-8"))["messages"]
    source_types = Counter(message["type"] for message in source)

    assert detect_format(path) == "discord"
    events = list(iter_export(path, "ubuntu-friends"))

    assert len(events) == len(source)
    joins = [event for event in events if isinstance(event, MemberJoined)]
    messages = [event for event in events if isinstance(event, MessageIngested)]
    assert len(joins) == source_types["GuildMemberJoin"]
    assert len(messages) == len(source) - len(joins)
    replies = [event for event in messages if event.payload.type is MessageType.REPLY]
    assert len(replies) == source_types["Reply"]
    assert all(event.payload.reply_to_id for event in replies)
    assert [event.payload.native_id for event in messages] == [
        message["id"] for message in source if message["type"] != "GuildMemberJoin"
    ]
    # The sample has nothing the contracts do not model: events stay small.
    assert all(event.payload.raw == {} for event in messages)
    assert len({event.event_id for event in events}) == len(events)
    for event in events:
        assert decode_event(encode_event(event)) == event


def test_sample_dir_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEPITE_SHARED_DIR", str(tmp_path))

    assert shared_dir() == tmp_path
