"""The Telegram Desktop JSON importer: mapping to the contracts, streaming, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pepite_contracts import (
    Attachment,
    ChannelRef,
    MemberJoined,
    MemberLeft,
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
    detect_format,
    iter_export,
)
from pepite_ingestor.importers.detect import HEAD_SIZE
from pepite_ingestor.importers.telegram import iter_telegram_export, sniff_telegram

COMMUNITY = "test-community"
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "telegram"
DISCORD_FIXTURES = HERE / "fixtures" / "discord"
GROUP_ID = "1987654321"


def sid(native_id: str) -> str:
    return f"telegram:{COMMUNITY}:{native_id}"


def read_all(path: Path) -> list[ImportedEvent]:
    return list(iter_telegram_export(path, COMMUNITY))


def messages(path: Path) -> dict[str, MessageIngested]:
    return {
        event.payload.native_id: event
        for event in read_all(path)
        if isinstance(event, MessageIngested)
    }


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tg_message(message_id: int, text: Any = "hello", **fields: Any) -> dict[str, Any]:
    """A message object as Telegram Desktop writes it."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "date": "2024-03-01T10:00:00",
        "date_unixtime": "1709283600",
        "from": "Ada Lovelace",
        "from_id": "user1001",
        "text": text,
        "text_entities": [{"type": "plain", "text": text}] if isinstance(text, str) else [],
    }
    message.update(fields)
    return message


def write_chat(
    directory: Path, messages: list[Any], name: str = "result.json", **header: Any
) -> Path:
    """Write a single-chat export laid out like Telegram Desktop's (1-space indent, raw UTF-8)."""
    chat = {"name": "Test Group", "type": "private_supergroup", "id": 555, **header}
    chat["messages"] = messages
    path = directory / name
    path.write_text(json.dumps(chat, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def group() -> dict[str, MessageIngested]:
    return messages(FIXTURES / "group.json")


@pytest.fixture(scope="module")
def group_events() -> list[ImportedEvent]:
    return read_all(FIXTURES / "group.json")


# --------------------------------------------------------------------------- messages


def test_plain_message(group: dict[str, MessageIngested]) -> None:
    event = group[f"{GROUP_ID}:4"]
    message = event.payload

    assert message.id == sid(f"{GROUP_ID}:4")
    assert message.platform is Platform.TELEGRAM
    assert message.community_id == COMMUNITY
    assert message.channel == ChannelRef(id=GROUP_ID, name="Pépite Testers")
    assert message.thread is None
    assert message.reply_to_id is None
    assert message.type is MessageType.DEFAULT
    assert message.text == "Bonjour à tous ! How do I reset my password?"
    # date is 09:05 in the exporter's zone (UTC+1); date_unixtime says the instant.
    assert message.created_at == utc("2024-03-01T08:05:00")
    assert message.edited_at is None
    assert message.author.id == sid("user1001")
    assert message.author.native_id == "user1001"
    assert message.author.name == "Ada Lovelace"
    assert not message.author.is_bot
    assert message.attachments == message.reactions == message.mentions == []
    # A plain text's single "plain" entity and the modeled fields say nothing more.
    assert message.raw == {}

    assert event.event_id == deterministic_event_id("message.ingested", message.id, "")
    assert event.occurred_at == message.created_at
    assert event.community_id == COMMUNITY


def test_formatted_text_is_flattened_and_entities_kept(
    group: dict[str, MessageIngested],
) -> None:
    message = group[f"{GROUP_ID}:5"].payload

    assert message.text == "Try Settings → this page, Ada Lovelace (cc @chloe_m) 👍"
    entities = message.raw["text_entities"]
    assert [entity["type"] for entity in entities] == [
        "plain",
        "bold",
        "plain",
        "text_link",
        "plain",
        "mention_name",
        "plain",
        "mention",
        "plain",
        "custom_emoji",
    ]
    assert entities[3]["href"] == "https://example.org/reset"
    assert entities[9]["document_id"] == "5368324170671202286"
    # Only mention_name carries a user id; an @username cannot be tied to a member.
    assert message.mentions == [Mention(member_id=sid("user1001"), name="Ada Lovelace")]
    assert "".join(entity["text"] for entity in entities) == message.text


def test_reply(group: dict[str, MessageIngested]) -> None:
    message = group[f"{GROUP_ID}:5"].payload

    assert message.type is MessageType.REPLY
    assert message.reply_to_id == sid(f"{GROUP_ID}:4")


def test_edited_message_with_reactions(group: dict[str, MessageIngested]) -> None:
    event = group[f"{GROUP_ID}:6"]
    message = event.payload

    assert message.text == "Thanks, it worked 🎉🙏"
    assert message.edited_at == utc("2024-03-01T08:08:00")
    assert event.event_id == deterministic_event_id(
        "message.ingested", message.id, "2024-03-01T08:08:00+00:00"
    )
    assert message.reactions == [
        Reaction(emoji="❤", count=2),
        Reaction(emoji="<custom emoji>", emoji_id="5368324170671202286", count=1),
    ]
    # Who reacted, and that the second is a custom emoji: same order as reactions.
    recent = message.raw["reactions"][0]["recent"]
    assert [item["from_id"] for item in recent] == ["user1002", "user1003"]
    assert message.raw["reactions"][1] == {"type": "custom_emoji"}
    assert set(message.raw) == {"reactions"}


def test_photo(group: dict[str, MessageIngested]) -> None:
    message = group[f"{GROUP_ID}:7"].payload

    assert message.text == "Here is the screenshot"
    assert message.attachments == [
        Attachment(filename="photo_1@01-03-2024_09-12-00.jpg", size_bytes=48213)
    ]
    assert message.raw == {
        "width": 1280,
        "height": 720,
        "attachments": [{"kind": "photo", "path": "photos/photo_1@01-03-2024_09-12-00.jpg"}],
    }


def test_file_not_included_in_the_export(group: dict[str, MessageIngested]) -> None:
    message = group[f"{GROUP_ID}:8"].payload

    assert message.text == ""
    assert message.attachments == [
        Attachment(filename="guide.pdf", size_bytes=1048576, content_type="application/pdf")
    ]
    assert message.raw["attachments"] == [
        {
            "kind": "file",
            "not_included": "(File not included. Change data exporting settings to download.)",
        }
    ]


def test_sticker_and_voice_message(group: dict[str, MessageIngested]) -> None:
    sticker = group[f"{GROUP_ID}:9"].payload
    voice = group[f"{GROUP_ID}:15"].payload

    assert sticker.attachments == [Attachment(filename="sticker.webp")]
    assert sticker.raw["media_type"] == "sticker"
    assert sticker.raw["sticker_emoji"] == "😂"
    assert sticker.raw["thumbnail"] == "stickers/sticker.webp_thumb.jpg"
    assert voice.attachments == [
        Attachment(
            filename="audio_1@01-03-2024_09-22-00.ogg", size_bytes=8012, content_type="audio/ogg"
        )
    ]
    assert voice.raw["media_type"] == "voice_message"
    assert voice.raw["duration_seconds"] == 4


def test_right_to_left_text(group: dict[str, MessageIngested]) -> None:
    hebrew = group[f"{GROUP_ID}:10"].payload
    arabic = group[f"{GROUP_ID}:11"].payload

    assert hebrew.text == "שלום לכולם, מה שלומכם?"
    assert hebrew.author.name == "דוד כהן"
    assert arabic.text == "مرحبا بالجميع! كيف يمكنني المساعدة؟"
    assert arabic.author.name == "فاطمة"


def test_platform_fields_go_to_raw(group: dict[str, MessageIngested]) -> None:
    assert group[f"{GROUP_ID}:12"].payload.raw == {"forwarded_from": "Rust News"}
    assert group[f"{GROUP_ID}:16"].payload.raw["poll"]["question"] == "Meetup on Friday?"
    bot_message = group[f"{GROUP_ID}:22"].payload
    assert bot_message.raw == {"via_bot": "@weatherbot"}
    assert bot_message.text == "Weather: ☀️ 21°C"


def test_deleted_account_keeps_its_id(group: dict[str, MessageIngested]) -> None:
    author = group[f"{GROUP_ID}:21"].payload.author

    assert author.native_id == "user1009"
    assert author.name == "Deleted Account"


# --------------------------------------------------------------------------- service messages


def membership(events: list[ImportedEvent], source: str) -> list[tuple[str, str, str]]:
    return [
        (event.type, event.payload.member.native_id, event.payload.member.name)
        for event in events
        if isinstance(event, MemberJoined | MemberLeft) and event.payload.source_id == sid(source)
    ]


def test_group_creation_is_a_system_message_and_joins(group_events: list[ImportedEvent]) -> None:
    created = group_events[0]
    assert isinstance(created, MessageIngested)
    assert created.payload.type is MessageType.SYSTEM
    assert created.payload.author.native_id == "user1001"
    assert created.payload.raw == {
        "type": "service",
        "action": "create_group",
        "title": "Pépite Testers",
        "members": ["Bob", "Chloé Martin"],
    }
    # Founding members are listed by name, before they ever wrote: their id is a name hash.
    joined = membership(group_events, f"{GROUP_ID}:1")
    assert [(kind, name) for kind, _native, name in joined] == [
        ("member.joined", "Bob"),
        ("member.joined", "Chloé Martin"),
    ]
    assert all(native.startswith("name:") for _kind, native, _name in joined)


def test_join_by_link(group_events: list[ImportedEvent]) -> None:
    joins = [
        event
        for event in group_events
        if isinstance(event, MemberJoined) and event.payload.source_id == sid(f"{GROUP_ID}:2")
    ]

    assert len(joins) == 1
    change = joins[0].payload
    assert change.member.id == sid("user1004")
    assert change.member.name == "דוד כהן"
    assert change.platform is Platform.TELEGRAM
    assert change.at == utc("2024-03-01T08:01:00")
    assert change.channel == ChannelRef(id=GROUP_ID, name="Pépite Testers")
    assert joins[0].event_id == deterministic_event_id(
        "member.joined", sid(f"{GROUP_ID}:2"), sid("user1004")
    )


def test_invite_makes_one_join_per_member(group_events: list[ImportedEvent]) -> None:
    joined = membership(group_events, f"{GROUP_ID}:3")

    # Fatima wrote later, Gaston never did; a deleted account (null) cannot be identified.
    assert [name for _kind, _native, name in joined] == ["فاطمة", "Gaston"]
    event_ids = {
        event.event_id
        for event in group_events
        if isinstance(event, MemberJoined) and event.payload.source_id == sid(f"{GROUP_ID}:3")
    }
    assert len(event_ids) == 2


def test_leaving_and_being_removed(group_events: list[ImportedEvent]) -> None:
    # Bob removed himself: the member is the actor, with his real id.
    assert membership(group_events, f"{GROUP_ID}:19") == [("member.left", "user1002", "Bob")]
    gaston = membership(group_events, f"{GROUP_ID}:20")
    assert [(kind, name) for kind, _native, name in gaston] == [("member.left", "Gaston")]
    # The same name gets the same id when it joins and when it leaves.
    assert gaston[0][1] == membership(group_events, f"{GROUP_ID}:3")[1][1]


def test_pin_notice_points_to_the_pinned_message(group: dict[str, MessageIngested]) -> None:
    message = group[f"{GROUP_ID}:13"].payload

    assert message.type is MessageType.PINNED_NOTICE
    assert message.reply_to_id == sid(f"{GROUP_ID}:4")
    assert message.raw == {"action": "pin_message"}


def test_other_service_actions_are_system_messages(group: dict[str, MessageIngested]) -> None:
    title = group[f"{GROUP_ID}:14"].payload
    call = group[f"{GROUP_ID}:23"].payload

    assert title.type is MessageType.SYSTEM
    assert title.raw == {
        "type": "service",
        "action": "edit_group_title",
        "title": "Pépite Testers 🧪",
    }
    assert call.type is MessageType.SYSTEM
    assert call.raw["action"] == "phone_call"
    assert call.raw["duration_seconds"] == 61


def test_unknown_types_are_kept_and_undated_ones_skipped(
    group: dict[str, MessageIngested],
) -> None:
    story = group[f"{GROUP_ID}:18"].payload

    assert story.type is MessageType.SYSTEM
    assert story.raw == {"type": "story"}
    # {"id": 17, "type": "unsupported"} has no date and nothing else.
    assert f"{GROUP_ID}:17" not in group


def test_service_message_without_actor(tmp_path: Path) -> None:
    payment = {
        "id": 3,
        "type": "service",
        "date": "2024-03-01T10:00:00",
        "date_unixtime": "1709283600",
        "action": "send_payment",
        "amount": 500,
        "currency": "EUR",
        "invoice_message_id": 2,
        "text": "",
        "text_entities": [],
    }
    (event,) = read_all(write_chat(tmp_path, [payment]))

    assert isinstance(event, MessageIngested)
    assert event.payload.author.native_id == "system"
    assert event.payload.raw["action"] == "send_payment"


def test_whole_file_round_trips_through_the_contracts(group_events: list[ImportedEvent]) -> None:
    for event in group_events:
        assert decode_event(encode_event(event)) == event


def test_importing_twice_gives_the_same_events() -> None:
    first = [encode_event(event) for event in read_all(FIXTURES / "group.json")]
    second = [encode_event(event) for event in read_all(FIXTURES / "group.json")]

    assert first == second


# --------------------------------------------------------------------------- forum topics


def test_forum_topics_become_threads() -> None:
    forum = messages(FIXTURES / "forum.json")
    chat = "1600000001"

    topic = forum[f"{chat}:3"].payload
    assert topic.type is MessageType.THREAD_STARTER
    assert topic.raw == {"action": "topic_created", "title": "Help"}

    in_topic = forum[f"{chat}:4"].payload
    assert in_topic.thread == ThreadRef(id=sid(f"{chat}:3"), name="Help")
    assert in_topic.type is MessageType.DEFAULT
    assert in_topic.reply_to_id is None

    reply = forum[f"{chat}:5"].payload
    assert reply.type is MessageType.REPLY
    assert reply.reply_to_id == sid(f"{chat}:4")
    assert reply.thread == ThreadRef(id=sid(f"{chat}:3"), name="Help")

    assert forum[f"{chat}:6"].payload.thread is None


def test_reply_to_another_chat() -> None:
    message = messages(FIXTURES / "forum.json")["1600000001:7"].payload

    assert message.reply_to_id == sid("1500000001:77")
    assert message.raw == {"reply_to_peer_id": "channel1500000001"}


# --------------------------------------------------------------------------- export shapes


def test_whole_account_export() -> None:
    events = read_all(FIXTURES / "account.json")
    ingested = [event.payload for event in events if isinstance(event, MessageIngested)]

    assert [(m.channel.id, m.channel.name, m.native_id) for m in ingested] == [
        ("1002", "Bob", "1002:101"),
        ("1002", "Bob", "1002:102"),
        ("1001", "Saved Messages", "1001:103"),
        ("1987654321", "Pépite Testers", "1987654321:1"),
        ("1987654321", "Pépite Testers", "1987654321:4"),
        ("1500000001", "Old Channel", "1500000001:77"),
    ]
    assert ingested[1].reply_to_id == sid("1002:101")
    # A channel post: the channel is the author, the signature stays in raw.
    assert ingested[-1].author.native_id == "channel1500000001"
    assert ingested[-1].raw == {"author": "Ada"}
    # Bob wrote in an earlier chat: the founding member listed by name gets his id.
    joins = [event.payload.member for event in events if isinstance(event, MemberJoined)]
    assert [(member.native_id, member.name) for member in joins] == [("user1002", "Bob")]
    # The same message gets the same id whether exported alone or with the account.
    group = messages(FIXTURES / "group.json")
    assert ingested[4] == group[f"{GROUP_ID}:4"].payload


def test_old_export_without_unix_times() -> None:
    old = messages(FIXTURES / "old.json")

    first = old["42:1"].payload
    # Local time with no offset: taken as UTC, and kept as written.
    assert first.created_at == utc("2019-06-01T12:30:00")
    assert first.raw == {"date": "2019-06-01T12:30:00"}
    # Numeric from_id from before 2021 exports.
    assert first.author.native_id == "user1001"

    second = old["42:2"].payload
    assert second.text == "I said hello"
    assert second.edited_at == utc("2019-06-01T12:35:00")
    assert second.reply_to_id == sid("42:1")
    assert second.raw["text_entities"] == [
        {"type": "plain", "text": "I said "},
        {"type": "italic", "text": "hello"},
    ]


def test_empty_chat() -> None:
    path = FIXTURES / "empty.json"

    assert read_all(path) == []
    assert detect_format(path) == "telegram"


def test_ten_thousand_character_message(tmp_path: Path) -> None:
    text = ("Lorem ipsum dolor sit amet, 🦀 ñ ü. " * 300)[:10_000]
    (event,) = read_all(write_chat(tmp_path, [tg_message(1, text)]))

    assert isinstance(event, MessageIngested)
    assert event.payload.text == text
    assert len(event.payload.text) == 10_000


def test_missing_optional_fields(tmp_path: Path) -> None:
    bare = {"id": 9, "type": "message", "date_unixtime": "1709283600"}
    (event,) = read_all(write_chat(tmp_path, [bare]))

    assert isinstance(event, MessageIngested)
    assert event.payload.text == ""
    assert event.payload.author.native_id == "system"
    assert event.payload.created_at == utc("2024-03-01T09:00:00")
    assert event.payload.raw == {}


def test_duplicated_messages_give_identical_events(tmp_path: Path) -> None:
    message = tg_message(1, "same")
    first, second = read_all(write_chat(tmp_path, [message, dict(message)]))

    assert first == second


def test_utf8_byte_order_mark(tmp_path: Path) -> None:
    path = write_chat(tmp_path, [tg_message(1)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    assert detect_format(path) == "telegram"
    assert len(read_all(path)) == 1


def test_messages_are_read_lazily(tmp_path: Path) -> None:
    path = write_chat(tmp_path, [tg_message(1), tg_message(2)])
    # Damage after the first message: it is yielded before the error shows up.
    text = path.read_text(encoding="utf-8")
    cut = text.index('"id": 2')
    path.write_text(text[:cut] + "oops", encoding="utf-8")

    events = iter_telegram_export(path, COMMUNITY)
    first = next(events)
    assert isinstance(first, MessageIngested)
    assert first.payload.native_id == "555:1"
    with pytest.raises(ExportFormatError):
        next(events)


# --------------------------------------------------------------------------- errors


def test_truncated_file_names_the_position(tmp_path: Path) -> None:
    data = (FIXTURES / "group.json").read_bytes()
    path = tmp_path / "result.json"
    path.write_bytes(data[: data.index(b'"id": 5,') + 3])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    error = caught.value
    assert error.path == str(path)
    assert error.problem.startswith("file is truncated")
    assert error.position == f"byte {path.stat().st_size} (end of file), after message #4 (id 4)"


def test_truncated_account_export_names_the_chat(tmp_path: Path) -> None:
    data = (FIXTURES / "account.json").read_bytes()
    path = tmp_path / "result.json"
    path.write_bytes(data[: data.index(b'"id": 102') + 5])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem.startswith("file is truncated")
    assert caught.value.position is not None
    assert "chat #1 of 'chats' (chat 'Bob', id 1002), after message #1" in caught.value.position


def test_missing_date_names_the_message(tmp_path: Path) -> None:
    broken = tg_message(5)
    del broken["date"], broken["date_unixtime"]
    path = write_chat(tmp_path, [tg_message(4), broken])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.path == str(path)
    assert caught.value.problem == "missing required field 'date'"
    assert caught.value.position == "message #2 (id 5)"
    assert str(caught.value) == f"{path}: missing required field 'date' at message #2 (id 5)"


def test_missing_date_in_an_account_export_names_the_chat(tmp_path: Path) -> None:
    account = json.loads((FIXTURES / "account.json").read_text(encoding="utf-8"))
    del account["left_chats"]["list"][0]["messages"][0]["date_unixtime"]
    del account["left_chats"]["list"][0]["messages"][0]["date"]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(account, ensure_ascii=False), encoding="utf-8")

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem == "missing required field 'date'"
    assert caught.value.position == (
        "chat #5 of 'left_chats' (chat 'Old Channel', id 1500000001), message #1 (id 77)"
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("id", None, "missing required field 'id'"),
        ("id", "abc", "field 'id' must be a numeric id"),
        ("date_unixtime", "yesterday", "field 'date_unixtime' must be a Unix time in seconds"),
        ("text", 42, "field 'text' must be a string or a list"),
        ("reply_to_message_id", "x", "field 'reply_to_message_id' must be a numeric id"),
        ("reactions", [{"type": "emoji", "emoji": "👍", "count": -1}], "reactions.0.count"),
        ("reactions", ["👍"], "field 'reactions[0]' must be an object"),
        ("from", ["Ada"], "field 'from' must be a string"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, field: str, value: Any, problem: str) -> None:
    path = write_chat(tmp_path, [tg_message(1, **{field: value})])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert problem in caught.value.problem
    assert caught.value.position is not None
    assert caught.value.position.startswith("message #1")


def test_message_that_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_all(write_chat(tmp_path, ["hello"]))

    assert caught.value.problem == "message is not a JSON object"
    assert caught.value.position == "message #1"


def test_wrong_encoding_latin1(tmp_path: Path) -> None:
    path = write_chat(tmp_path, [tg_message(1, "caf\u00e9")])
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert "not UTF-8" in caught.value.problem
    assert caught.value.position is not None
    assert "byte" in caught.value.position


def test_wrong_encoding_utf16(tmp_path: Path) -> None:
    path = write_chat(tmp_path, [tg_message(1)])
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))

    with pytest.raises(ExportFormatError) as caught:
        list(iter_export(path, COMMUNITY, fmt="telegram"))

    assert "UTF-16" in caught.value.problem
    # Not recognised as a chat export at all without the format named.
    with pytest.raises(UnknownFormatError):
        detect_format(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"[1, 2]", "not a Telegram export: the top-level JSON value is an array, not an object"),
        (b'{"name": "x", "type": "private_group"}', "no 'messages' array and no 'chats' list"),
        (b'{"name": "x", "id": 1, "messages": {}}', "'messages' is an object, not an array"),
        (b'{"name": "x", "messages": []}', "the chat 'id' must come before 'messages'"),
        (b'{"id": "abc", "messages": []}', "chat field 'id' must be a numeric id"),
        (b'{"about": "x", "chats": {"list": [1]}}', "'chats.list' holds a number, not chat"),
        (b'{"about": "x", "chats": {"list": [{"messages": []}]}}', "missing the chat 'id'"),
    ],
)
def test_bad_shapes_are_explained(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(content)

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert problem in caught.value.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_telegram_export(tmp_path / "result.json", COMMUNITY)


def test_bad_community_id() -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_telegram_export(FIXTURES / "group.json", "no:colons")


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("name", ["group.json", "forum.json", "account.json", "old.json"])
def test_fixtures_are_detected(name: str) -> None:
    path = FIXTURES / name

    assert detect_format(path) == "telegram"
    assert [encode_event(e) for e in iter_export(path, COMMUNITY)] == [
        encode_event(e) for e in read_all(path)
    ]


def test_account_export_is_detected_when_chats_come_late(tmp_path: Path) -> None:
    account = json.loads((FIXTURES / "account.json").read_text(encoding="utf-8"))
    contact = account["contacts"]["list"][0]
    account["contacts"]["list"] = [contact] * (2 * HEAD_SIZE // 100)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(account, indent=1, ensure_ascii=False), encoding="utf-8")

    assert path.stat().st_size > 2 * HEAD_SIZE
    assert detect_format(path) == "telegram"
    assert len(read_all(path)) == 7


def test_messages_first_file_is_detected_to_explain_it(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"messages": [tg_message(1)], "id": 5}), encoding="utf-8")

    assert detect_format(path) == "telegram"
    with pytest.raises(ExportFormatError, match="must come before 'messages'"):
        read_all(path)


@pytest.mark.parametrize("path", sorted(DISCORD_FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_discord_fixtures_are_not_telegram(path: Path) -> None:
    # other-shape.json looks like a chat, but its messages lack what Telegram always writes.
    head = path.read_bytes()[:HEAD_SIZE]

    assert not sniff_telegram(path, head)


def test_head_ending_inside_a_long_first_message(tmp_path: Path) -> None:
    path = write_chat(tmp_path, [tg_message(1, "x" * (2 * HEAD_SIZE))])

    assert detect_format(path) == "telegram"


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": "x", "type": "GuildTextChat", "id": 1, "messages": []}',
        b'{"about": "me", "age": 3}',
        b'{"messages": [{"id": "1", "timestamp": "2024-01-01", "author": {}}]}',
        b"[]",
        b"not json",
    ],
)
def test_other_json_is_not_telegram(tmp_path: Path, content: bytes) -> None:
    assert not sniff_telegram(tmp_path / "x.json", content)
