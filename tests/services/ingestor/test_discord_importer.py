"""The DiscordChatExporter importer: mapping to the contracts, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.services.ingestor.dce_helpers import (
    CHANNEL_ID,
    FIXTURES,
    GUILD_ID,
    ExportWriter,
    dce_message,
    dce_user,
)

from pepite_contracts import (
    Attachment,
    ChannelRef,
    MemberJoined,
    Mention,
    MessageIngested,
    MessageType,
    Platform,
    Reaction,
    ThreadRef,
    decode_event,
    deterministic_event_id,
    encode_event,
)
from pepite_ingestor.importers import (
    ExportFormatError,
    ImportedEvent,
    UnknownFormatError,
    iter_discord_export,
    iter_export,
)
from pepite_ingestor.importers import discord as discord_importer

COMMUNITY = "test-community"


def sid(native_id: str) -> str:
    return f"discord:{COMMUNITY}:{native_id}"


def read_all(path: Path) -> list[ImportedEvent]:
    return list(iter_discord_export(path, COMMUNITY))


def messages_by_id(path: Path) -> dict[str, MessageIngested]:
    return {
        event.payload.native_id: event
        for event in read_all(path)
        if isinstance(event, MessageIngested)
    }


@pytest.fixture(scope="module")
def general() -> dict[str, MessageIngested]:
    return messages_by_id(FIXTURES / "general.json")


def test_default_message(general: dict[str, MessageIngested]) -> None:
    event = general["1230000000000000001"]
    message = event.payload

    assert message.id == sid("1230000000000000001")
    assert message.platform is Platform.DISCORD
    assert message.community_id == COMMUNITY
    assert message.channel == ChannelRef(
        id=CHANNEL_ID, name="general", category="Community", topic="Say hi and ask anything"
    )
    assert message.thread is None
    assert message.reply_to_id is None
    assert message.type is MessageType.DEFAULT
    assert message.text == "Hi all! How do I reset my password?"
    assert message.created_at == datetime(2024, 4, 18, 11, 54, tzinfo=UTC)
    assert message.edited_at is None
    assert not message.is_pinned
    assert message.author.id == sid("800000000000000001")
    assert message.author.native_id == "800000000000000001"
    assert message.author.name == "ada"
    assert message.author.display_name == "Ada L."
    assert not message.author.is_bot
    assert message.author.avatar_url == (
        "https://cdn.discordapp.com/avatars/800000000000000001/abc123.png?size=512"
    )
    assert message.attachments == []
    assert message.reactions == []
    assert message.mentions == []
    # Empty lists, nulls and the "0000" discriminator say nothing: nothing to keep.
    assert message.raw == {}

    assert event.event_id == deterministic_event_id("message.ingested", message.id, "")
    assert event.occurred_at == message.created_at
    assert event.community_id == COMMUNITY


def test_reply_points_to_its_parent(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000002"].payload

    assert message.type is MessageType.REPLY
    assert message.reply_to_id == sid("1230000000000000001")
    assert message.created_at == datetime(2024, 4, 18, 11, 55, 12, 345000, tzinfo=UTC)
    assert message.raw == {}


def test_reply_to_another_channel_keeps_that_channel(
    general: dict[str, MessageIngested],
) -> None:
    message = general["1230000000000000014"].payload

    assert message.reply_to_id == sid("1220000000000000001")
    assert message.raw == {"reference": {"channelId": "900000000000000011"}}


def test_reply_to_another_guild_is_not_linked(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000015"].payload

    assert message.type is MessageType.REPLY
    assert message.reply_to_id is None
    assert message.raw["reference"] == {
        "messageId": "1210000000000000001",
        "channelId": "900000000000000099",
        "guildId": "900000000000000999",
    }


def test_forward_is_not_a_reply(write_export: ExportWriter) -> None:
    reference = {"type": "Forward", "messageId": "1", "channelId": CHANNEL_ID, "guildId": GUILD_ID}
    path = write_export([dce_message("10", reference=reference)])

    (event,) = read_all(path)

    assert isinstance(event, MessageIngested)
    assert event.payload.reply_to_id is None
    assert event.payload.raw == {"reference": {"type": "Forward", "messageId": "1"}}


def test_thread_export_files_messages_under_the_parent_channel() -> None:
    events = read_all(FIXTURES / "thread.json")

    assert len(events) == 2
    for event in events:
        assert isinstance(event, MessageIngested)
        assert event.payload.channel == ChannelRef(id=CHANNEL_ID, name="general")
        assert event.payload.thread == ThreadRef(
            id="900000000000000020", name="Password reset help"
        )
    reply = events[1]
    assert isinstance(reply, MessageIngested)
    assert reply.payload.reply_to_id == sid("1230000000000000101")
    assert reply.payload.raw == {}


def test_thread_without_parent_uses_the_thread_as_channel(write_export: ExportWriter) -> None:
    thread = {"id": "77", "type": "GuildPrivateThread", "name": "secret", "topic": None}
    path = write_export([dce_message("10")], channel=thread)

    (event,) = read_all(path)

    assert isinstance(event, MessageIngested)
    assert event.payload.channel == ChannelRef(id="77", name="secret")
    assert event.payload.thread == ThreadRef(id="77", name="secret")


def test_thread_created_notice(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000013"].payload

    assert message.type is MessageType.THREAD_STARTER
    assert message.reply_to_id is None
    # The thread it opened is only known from the reference.
    assert message.raw == {"reference": {"channelId": "900000000000000020"}}


def test_pinned_notice(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000009"].payload

    assert message.type is MessageType.PINNED_NOTICE
    assert message.reply_to_id == sid("1230000000000000001")
    assert message.raw == {}


def test_pinned_message(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000012"].payload

    assert message.is_pinned
    assert message.author.is_bot
    assert message.raw == {
        "author": {
            "discriminator": "4821",
            "color": "#E67E22",
            "roles": [
                {"id": "700000000000000001", "name": "Moderator", "color": "#E67E22", "position": 3}
            ],
        }
    }


def test_member_join_becomes_member_joined() -> None:
    events = read_all(FIXTURES / "general.json")
    joins = [event for event in events if isinstance(event, MemberJoined)]

    assert len(joins) == 1
    (join,) = joins
    change = join.payload
    assert change.member.id == sid("800000000000000004")
    assert change.member.name == "carol"
    assert change.platform is Platform.DISCORD
    assert change.community_id == COMMUNITY
    assert change.at == datetime(2024, 4, 18, 12, 6, tzinfo=UTC)
    assert change.channel is not None
    assert change.channel.id == CHANNEL_ID
    assert change.source_id == sid("1230000000000000010")
    assert join.occurred_at == change.at
    assert join.event_id == deterministic_event_id("member.joined", sid("1230000000000000010"))
    assert not any(
        isinstance(event, MessageIngested) and event.payload.native_id == "1230000000000000010"
        for event in events
    )


def test_edited_message(general: dict[str, MessageIngested]) -> None:
    event = general["1230000000000000003"]
    message = event.payload

    # Offsets are converted: 13:56+02:00 is 11:56 UTC; 7 fraction digits are cut to 6.
    assert message.created_at == datetime(2024, 4, 18, 11, 56, tzinfo=UTC)
    assert message.edited_at == datetime(2024, 4, 18, 12, 5, 30, 123456, tzinfo=UTC)
    assert message.edited_at.utcoffset() is not None
    assert event.event_id == deterministic_event_id(
        "message.ingested", message.id, "2024-04-18T12:05:30.123456+00:00"
    )
    assert event.event_id != deterministic_event_id("message.ingested", message.id, "")


def test_reactions_with_counts(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000004"].payload

    assert message.created_at == datetime(2024, 4, 18, 12, 0, tzinfo=UTC)  # "Z" suffix
    assert message.reactions == [
        Reaction(emoji="👍", emoji_id=None, count=3),
        Reaction(emoji="pepe_party", emoji_id="600000000000000001", count=1),
    ]
    extras = message.raw["reactions"]
    assert extras[0]["users"][0]["name"] == "ada"
    assert extras[0]["emoji"]["code"] == "thumbsup"
    assert extras[1]["emoji"]["isAnimated"] is True


def test_attachments(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000005"].payload

    assert message.attachments == [
        Attachment(
            id="1230000000000000500",
            url="https://cdn.discordapp.com/attachments/900000000000000010/"
            "1230000000000000500/install.log",
            filename="install.log",
            size_bytes=48213,
        )
    ]
    assert message.raw == {}


def test_embeds_stickers_and_more_are_kept_in_raw(general: dict[str, MessageIngested]) -> None:
    source = json.loads((FIXTURES / "general.json").read_text(encoding="utf-8"))
    original = next(m for m in source["messages"] if m["id"] == "1230000000000000006")
    message = general["1230000000000000006"].payload

    assert message.text == ""
    assert message.raw["embeds"] == original["embeds"]
    assert message.raw["stickers"] == original["stickers"]
    assert message.raw["interaction"] == original["interaction"]
    assert message.raw["inlineEmojis"] == original["inlineEmojis"]
    assert message.raw["author"]["discriminator"] == "4821"
    assert "callEndedTimestamp" not in message.raw


def test_mentions(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000007"].payload

    assert message.mentions == [
        Mention(member_id=sid("800000000000000001"), name="ada"),
        Mention(member_id=sid("800000000000000003"), name="HelperBot"),
    ]
    # Kept in the same order as the mentions; the nickname only when it differs.
    ada, bot = message.raw["mentions"]
    assert ada["nickname"] == "Ada L."
    assert "nickname" not in bot
    assert bot["isBot"] is True


def test_unicode_emoji_and_rtl_text_survive_a_round_trip(
    general: dict[str, MessageIngested],
) -> None:
    event = general["1230000000000000008"]
    expected = "Ça marche 🎉👩‍💻 — مرحبا بالعالم — שלום עולם — 日本語のテキスト — e\u0301 — 🇫🇷"

    assert event.payload.text == expected
    decoded = decode_event(encode_event(event))
    assert isinstance(decoded, MessageIngested)
    assert decoded.payload.text == expected


def test_a_10000_character_message(write_export: ExportWriter) -> None:
    text = ("Ünïcode ✓ 🎉 " * 1000)[:10_000]
    path = write_export([dce_message("10", text)])

    (event,) = read_all(path)

    assert isinstance(event, MessageIngested)
    assert len(event.payload.text) == 10_000
    assert event.payload.text == text


def test_unknown_message_type_is_kept_as_system(general: dict[str, MessageIngested]) -> None:
    message = general["1230000000000000011"].payload

    assert message.type is MessageType.SYSTEM
    assert message.raw == {"type": "ChannelNameChange"}
    assert message.text == "Changed the channel name: general"


def test_missing_optional_fields() -> None:
    events = read_all(FIXTURES / "minimal.json")

    assert [event.payload.text for event in events if isinstance(event, MessageIngested)] == [
        "bare message",
        "",
    ]
    first = events[0]
    assert isinstance(first, MessageIngested)
    assert first.payload.type is MessageType.DEFAULT
    assert first.payload.author.display_name is None
    assert first.payload.author.avatar_url is None
    assert first.payload.channel == ChannelRef(id=CHANNEL_ID, name="general")
    assert first.payload.raw == {}


def test_empty_channel() -> None:
    assert read_all(FIXTURES / "empty.json") == []


def test_numbers_as_ids_are_accepted(write_export: ExportWriter) -> None:
    message = dce_message("1", author=dce_user("2", "bob"))
    message["id"] = 1234
    path = write_export([message])

    (event,) = read_all(path)

    assert isinstance(event, MessageIngested)
    assert event.payload.id == sid("1234")


def test_unknown_fields_are_kept_and_empty_ones_dropped(write_export: ExportWriter) -> None:
    poll = {"question": {"text": "Lunch?"}, "answers": [{"id": 1, "text": "Yes", "votes": 3}]}
    extra: dict[str, Any] = {
        "poll": poll,
        "components": [],
        "isTts": False,
        "forwardedMessage": None,
    }
    path = write_export([dce_message("10", **extra)])

    (event,) = read_all(path)

    assert isinstance(event, MessageIngested)
    assert event.payload.raw == {"poll": poll}


def test_an_author_who_changes_nickname_is_seen_changed(
    write_export: ExportWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny cache also exercises the path where it is emptied.
    monkeypatch.setattr(discord_importer, "_CACHE_SIZE", 1)
    path = write_export(
        [
            dce_message("10", author=dce_user("1", "ada", nickname="Ada")),
            dce_message("11", author=dce_user("2", "bob")),
            dce_message("12", author=dce_user("1", "ada", nickname="Ada L.")),
            dce_message("13", author=dce_user("1", "ada", nickname="Ada L.")),
        ]
    )

    names = [
        event.payload.author.display_name
        for event in read_all(path)
        if isinstance(event, MessageIngested)
    ]

    assert names == ["Ada", "bob", "Ada L.", "Ada L."]


def test_every_event_round_trips_through_the_contracts() -> None:
    events = read_all(FIXTURES / "general.json")

    assert len(events) == 15
    for event in events:
        assert decode_event(encode_event(event)) == event


def test_reimport_gives_the_same_event_ids() -> None:
    first = [event.event_id for event in read_all(FIXTURES / "general.json")]
    second = [event.event_id for event in read_all(FIXTURES / "general.json")]

    assert first == second
    assert len(set(first)) == len(first)


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "thread.json").read_bytes())

    assert len(list(iter_export(path, COMMUNITY))) == 2


# Errors


def test_truncated_file_names_file_and_position(tmp_path: Path) -> None:
    data = (FIXTURES / "general.json").read_bytes()
    cut = data.index(b'"id": "1230000000000000008"') + 40
    path = tmp_path / "truncated.json"
    path.write_bytes(data[:cut])

    events: list[ImportedEvent] = []
    with pytest.raises(ExportFormatError) as caught:
        events.extend(iter_discord_export(path, COMMUNITY))

    # Streaming: what came before the damage was delivered.
    assert len(events) == 7
    error = caught.value
    assert error.path == str(path)
    assert "truncated" in error.problem
    assert error.position == f"byte {cut} (end of file), after message #7 (id 1230000000000000007)"
    assert str(error).startswith(f"{path}: ")
    assert "\n" not in str(error)


def test_syntax_error_is_located(write_export: ExportWriter) -> None:
    # Enough messages that the damage is well past the parser's first 64 KiB chunk.
    messages = [dce_message(str(1000 + index), "x" * 200) for index in range(600)]
    messages[500]["isPinned"] = "__BROKEN__"
    path = write_export(messages)
    data = path.read_bytes().replace(b'"__BROKEN__"', b"tru")
    path.write_bytes(data)
    broken_at = data.index(b": tru,") + 2

    with pytest.raises(ExportFormatError) as caught:
        list(iter_discord_export(path, COMMUNITY))

    error = caught.value
    assert error.problem.startswith("invalid JSON")
    assert error.position is not None
    assert "after message #500 (id 1499)" in error.position
    position = error.position.split(",")[0]
    if position.startswith("byte "):  # exact with the C backend
        assert abs(int(position.removeprefix("byte ")) - broken_at) <= 4
    else:  # pragma: no cover - pure-Python ijson backend
        assert position.startswith("near byte ")


def test_missing_author_names_message_and_field() -> None:
    path = FIXTURES / "missing-author.json"
    iterator = iter_discord_export(path, COMMUNITY)

    first = next(iterator)
    with pytest.raises(ExportFormatError) as caught:
        next(iterator)

    assert isinstance(first, MessageIngested)
    error = caught.value
    assert error.problem == "missing required field 'author'"
    assert error.position == "message #2 (id 1230000000000000302)"
    assert str(error) == (
        f"{path}: missing required field 'author' at message #2 (id 1230000000000000302)"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"id": None}, "missing required field 'id'"),
        ({"timestamp": None}, "missing required field 'timestamp'"),
        ({"author": {"id": "1"}}, "missing required field 'author.name'"),
        ({"author": "ada"}, "field 'author' must be an object"),
        ({"timestamp": "yesterday"}, "field 'timestamp' is not a valid timestamp"),
        ({"timestamp": "2024-04-18T12:00:00"}, "field 'timestamp' is not a valid timestamp"),
        ({"timestampEdited": 5}, "field 'timestampEdited' must be an ISO 8601 string"),
        ({"content": 42}, "field 'content' must be a string"),
        ({"reactions": [{"emoji": {"name": "x"}}]}, "missing required field 'reactions[0].count'"),
        ({"mentions": [{"id": "5"}]}, "field 'mentions[0].name' must be a string"),
        ({"attachments": "none"}, "field 'attachments' must be a list of objects"),
        (
            {"attachments": [{"fileSizeBytes": -1}]},
            "invalid value for attachments.0.size_bytes",
        ),
    ],
)
def test_bad_message_fields_are_named(
    write_export: ExportWriter, change: dict[str, Any], problem: str
) -> None:
    path = write_export([dce_message("41"), dce_message("42", **change)])

    with pytest.raises(ExportFormatError) as caught:
        list(iter_discord_export(path, COMMUNITY))

    assert caught.value.problem.startswith(problem)
    assert caught.value.position is not None
    assert caught.value.position.startswith("message #2")


def test_a_message_that_is_not_an_object(write_export: ExportWriter) -> None:
    path = write_export([dce_message("41"), "oops"])

    with pytest.raises(ExportFormatError, match="message #2") as caught:
        list(iter_discord_export(path, COMMUNITY))

    assert caught.value.problem == "message is not a JSON object"


def test_messages_before_channel_is_refused() -> None:
    with pytest.raises(ExportFormatError) as caught:
        iter_discord_export(FIXTURES / "messages-first.json", COMMUNITY)

    assert "'messages' comes before 'channel'" in caught.value.problem


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"

    with pytest.raises(ExportFormatError) as caught:
        iter_discord_export(path, COMMUNITY)

    assert str(caught.value) == f"{path}: file not found"
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_export(path, COMMUNITY)


def test_non_json_file() -> None:
    path = FIXTURES / "not-json.json"

    with pytest.raises(UnknownFormatError) as caught:
        iter_export(path, COMMUNITY)
    assert "invalid JSON" in caught.value.problem
    assert "supported formats: discord, discourse" in caught.value.problem

    # Told it is Discord, the importer still names the file.
    with pytest.raises(ExportFormatError) as direct:
        iter_export(path, COMMUNITY, fmt="discord")
    assert direct.value.path == str(path)


def test_text_file_error_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text("Ada: hi\nBob: hello\n", encoding="utf-8")

    with pytest.raises(ExportFormatError) as caught:
        iter_discord_export(path, COMMUNITY)

    assert caught.value.problem.startswith("invalid JSON")
    assert caught.value.position is not None
    assert caught.value.position == "byte 1"


def test_json_of_another_shape() -> None:
    path = FIXTURES / "other-shape.json"

    with pytest.raises(UnknownFormatError) as caught:
        iter_export(path, COMMUNITY)
    assert "'name', 'type', 'id', 'messages'" in caught.value.problem

    with pytest.raises(ExportFormatError, match="not a DiscordChatExporter export"):
        iter_export(path, COMMUNITY, fmt="discord")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "file is empty"),
        ("\ufeff", "file is empty"),
        ('{"guild": {}, "channel": {"id": "1", "name": "x"}, "mess', "file is truncated"),
        ("[]", "top-level JSON value is an array"),
        ('{"guild": {}, "channel": {"id": "1", "name": "x"}}', "no 'messages' array"),
        ('{"channel": {"id": "1", "name": "x"}, "messages": {}}', "'messages' is an object"),
        ('{"channel": {"name": "x"}, "messages": []}', "missing required field 'channel.id'"),
        ('{"channel": "general", "messages": []}', "'channel' must be an object"),
        (
            '{"channel": {"id": "1", "name": "x", "topic": 5}, "messages": []}',
            "invalid value for channel.topic",
        ),
    ],
)
def test_bad_headers(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ExportFormatError, match=problem):
        iter_discord_export(path, COMMUNITY)


@pytest.mark.parametrize("community_id", ["", "has:colon", "-leading-dash", "x" * 65, "abc\n"])
def test_invalid_community_id(community_id: str) -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_discord_export(FIXTURES / "general.json", community_id)
    with pytest.raises(ValueError, match="invalid community id"):
        iter_export(FIXTURES / "general.json", community_id)


def test_error_is_one_line() -> None:
    error = ExportFormatError(Path("a.json"), "bad\nthing", "byte 3")

    assert str(error) == "a.json: bad thing at byte 3"
    assert str(ExportFormatError("a.json", "file not found")) == "a.json: file not found"
