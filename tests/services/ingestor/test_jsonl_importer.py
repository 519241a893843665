"""The generic JSON Lines importer: records, ids, raw, errors, detection and its docs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.services.ingestor.dce_helpers import FIXTURES as DISCORD_FIXTURES

from pepite_contracts import (
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    MessageType,
    Platform,
    decode_event,
    deterministic_event_id,
    encode_event,
)
from pepite_ingestor.importers import (
    ExportFormatError,
    UnknownFormatError,
    detect_format,
    iter_export,
)
from pepite_ingestor.importers.jsonl import (
    KINDS,
    RECORD_ADAPTER,
    JsonlConverter,
    iter_jsonl_export,
    record_json_schema,
    sniff_jsonl,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jsonl"
DISCOURSE_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "discourse"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "formats"
COMMUNITY = "acme"


def message(native_id: str = "1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "message",
        "id": native_id,
        "channel": {"id": "c1", "name": "general"},
        "author": {"id": "u1", "name": "ann"},
        "text": f"message {native_id}",
        "created_at": "2024-05-01T12:00:00Z",
    }
    record.update(overrides)
    return record


def write_lines(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_all(path: Path) -> list[Any]:
    return list(iter_jsonl_export(path, COMMUNITY))


def test_the_sample_export_maps_every_kind() -> None:
    events = read_all(FIXTURES / "community.jsonl")

    assert [event.type for event in events] == [
        "member.joined",
        "message.ingested",
        "message.ingested",
        "message.ingested",
        "message.edited",
        "message.deleted",
        "member.left",
    ]
    joined, first, reply, greeting, edit, deletion, left = events

    assert isinstance(joined, MemberJoined)
    assert joined.payload.member.id == "circle:acme:u1"
    assert joined.payload.member.display_name == "Ada Lovelace"
    assert joined.payload.platform is Platform.CIRCLE
    assert joined.payload.at == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    assert joined.payload.source_id == "circle:acme:j1"
    assert joined.payload.channel is None

    assert isinstance(first, MessageIngested)
    msg = first.payload
    assert msg.id == "circle:acme:p1"
    assert msg.native_id == "p1"
    assert msg.platform is Platform.CIRCLE
    assert msg.community_id == COMMUNITY
    assert msg.channel.id == "space-7"
    assert (msg.channel.name, msg.channel.category) == ("Help", "Support")
    assert msg.thread is not None
    assert (msg.thread.id, msg.thread.name) == ("post-1", "Install problems")
    assert msg.type is MessageType.THREAD_STARTER
    assert msg.author.id == "circle:acme:u1"
    assert msg.author.avatar_url == "https://cdn.example.org/ada.png"
    assert msg.text == "How do I install Pépite? 🤔"
    assert msg.created_at == datetime(2024, 5, 1, 7, 5, tzinfo=UTC)
    assert first.occurred_at == msg.created_at
    assert msg.edited_at is None
    assert [(a.filename, a.size_bytes, a.content_type) for a in msg.attachments] == [
        ("log.txt", 2048, "text/plain")
    ]
    assert [(r.emoji, r.count) for r in msg.reactions] == [("👍", 3), ("heart", 1)]
    # Unknown fields and extra are kept; empty values are dropped.
    assert msg.raw == {
        "url_slug": "install-problems",
        "circle_post_url": "https://example.circle.so/c/help/install",
        "likes_enabled": True,
        "author": {"member_tag": "admin"},
        "channel": {"space_type": "basic"},
        "attachments": [{"checksum": "abc"}],
        "reactions": [{}, {"by": ["u2"]}],
    }

    assert isinstance(reply, MessageIngested)
    assert reply.payload.reply_to_id == "circle:acme:p1"
    assert reply.payload.type is MessageType.REPLY
    assert reply.payload.channel.name == "Help"
    assert [(m.member_id, m.name) for m in reply.payload.mentions] == [("circle:acme:u1", "ada")]
    assert reply.payload.raw == {}

    assert isinstance(greeting, MessageIngested)
    assert greeting.payload.platform is Platform.GENERIC
    assert greeting.payload.id == "generic:acme:m3"
    assert greeting.payload.author.is_bot
    assert greeting.payload.is_pinned
    assert greeting.payload.edited_at == datetime(2024, 5, 1, 8, 1, tzinfo=UTC)
    assert greeting.payload.created_at == datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)

    assert isinstance(edit, MessageEdited)
    assert edit.payload.id == "circle:acme:p2"
    assert edit.payload.text == "Run `uv sync --frozen` first, @ada."
    assert edit.payload.attachments is None
    assert edit.payload.raw == {"editor": "u2"}
    assert edit.occurred_at == edit.payload.edited_at

    assert isinstance(deletion, MessageDeleted)
    assert deletion.payload.id == "circle:acme:p2"
    # Only the id was given: the name defaults to it, and the partition key is the same.
    assert deletion.payload.channel.id == "space-7"
    assert deletion.payload.raw == {"reason": "spam"}

    assert isinstance(left, MemberLeft)
    assert left.payload.member.id == "circle:acme:u2"
    assert left.payload.channel is not None
    assert left.payload.channel.id == "space-7"


def test_event_ids_are_deterministic_and_match_the_contracts() -> None:
    first = read_all(FIXTURES / "community.jsonl")
    again = read_all(FIXTURES / "community.jsonl")

    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == len(first)
    message_event = first[1]
    assert message_event.event_id == deterministic_event_id(
        "message.ingested", "circle:acme:p1", ""
    )
    edited = first[3]
    assert edited.event_id == deterministic_event_id(
        "message.ingested", "generic:acme:m3", "2024-05-01T08:01:00+00:00"
    )
    assert first[4].event_id == deterministic_event_id(
        "message.edited", "circle:acme:p2", "2024-05-01T07:20:00+00:00"
    )
    assert first[5].event_id == deterministic_event_id("message.deleted", "circle:acme:p2")


def test_events_survive_encoding() -> None:
    for event in read_all(FIXTURES / "community.jsonl"):
        assert decode_event(encode_event(event)) == event


def test_duplicated_lines_give_the_same_ids(tmp_path: Path) -> None:
    record = message("42")
    events = read_all(write_lines(tmp_path / "dup.jsonl", [record, record]))

    assert len(events) == 2
    assert events[0].payload.id == events[1].payload.id == "generic:acme:42"
    assert events[0].event_id == events[1].event_id


def test_missing_optional_fields_take_defaults() -> None:
    (event,) = read_all(FIXTURES / "minimal.jsonl")

    assert isinstance(event, MessageIngested)
    msg = event.payload
    # Numeric ids are read as strings.
    assert (msg.id, msg.native_id) == ("generic:acme:1", "1")
    assert (msg.channel.id, msg.channel.name) == ("42", "42")
    assert msg.author.id == "generic:acme:7"
    assert msg.author.display_name is None
    assert not msg.author.is_bot
    assert msg.text == ""
    assert msg.type is MessageType.DEFAULT
    assert msg.thread is None
    assert msg.reply_to_id is None
    assert msg.edited_at is None
    assert (msg.attachments, msg.reactions, msg.mentions, msg.raw) == ([], [], [], {})


def test_unicode_and_a_long_message_are_kept(tmp_path: Path) -> None:
    long_text = "é🙂ب" * 3334  # 10,002 characters, many of them several bytes in UTF-8
    rtl = "שלום עולם — مرحبا بالعالم"
    path = write_lines(
        tmp_path / "unicode.jsonl",
        [
            message("1", text=long_text),
            message("2", text=rtl, author={"id": "u🙂", "name": "zoë 🌸"}),
            message("3", text="line one\nline two\ttab \u200f"),
        ],
    )

    first, second, third = read_all(path)

    assert first.payload.text == long_text
    assert len(first.payload.text) == 10_002
    assert second.payload.text == rtl
    assert second.payload.author.id == "generic:acme:u🙂"
    assert second.payload.author.name == "zoë 🌸"
    assert third.payload.text == "line one\nline two\ttab \u200f"


def test_blank_lines_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    lines = [json.dumps(message("1")), "", "   ", json.dumps(message("2")), ""]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())

    events = read_all(path)

    assert [e.payload.native_id for e in events] == ["1", "2"]
    assert detect_format(path) == "jsonl"


def test_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "no-newline.jsonl"
    path.write_text(json.dumps(message("1")) + "\n" + json.dumps(message("2")))

    assert [e.payload.native_id for e in read_all(path)] == ["1", "2"]


def test_lines_longer_than_a_read_chunk(tmp_path: Path) -> None:
    big = "x" * 200_000
    path = write_lines(tmp_path / "big.jsonl", [message("1", text=big), message("2")])

    events = read_all(path)

    assert [len(e.payload.text) for e in events] == [200_000, len("message 2")]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_files_import_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)

    assert read_all(path) == []
    with pytest.raises(UnknownFormatError):
        detect_format(path)


def test_bad_line_stops_the_import_naming_line_and_field() -> None:
    path = FIXTURES / "bad-line.jsonl"
    events = iter_jsonl_export(path, COMMUNITY)
    seen = [next(events).event_id, next(events).event_id]

    with pytest.raises(ExportFormatError) as caught:
        next(events)

    assert len(seen) == 2  # the lines before the bad one were read
    error = caught.value
    assert error.path == str(path)
    assert error.position == "line 4"
    assert error.problem == "missing required field 'author.id'"
    assert str(error) == f"{path}: missing required field 'author.id' at line 4"


def test_unknown_kind_is_named() -> None:
    path = FIXTURES / "unknown-kind.jsonl"

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2"
    assert caught.value.problem == (
        "unknown kind 'poll' (expected one of: message, edit, deletion, member_joined, member_left)"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"kind": "message", "id": ', "invalid JSON (EOF while parsing a value)"),
        ("?? not json", "invalid JSON (expected value)"),
        ("[1, 2]", "a record must be a JSON object"),
        ('"text"', "a record must be a JSON object"),
        ('{"id": "1"}', "missing required field 'kind' (one of: message, edit, "),
        ('{"kind": 3}', "unknown kind '3'"),
        (
            json.dumps(message("1", created_at="2024-05-01T12:00:00")),
            "invalid value for 'created_at': Input should have timezone info",
        ),
        (
            json.dumps(message("1", created_at="yesterday")),
            "invalid value for 'created_at': Input should be a valid datetime",
        ),
        (
            json.dumps(message("1", reactions=[{"emoji": "👍", "count": -1}])),
            "invalid value for 'reactions[0].count': Input should be greater than or equal to 0",
        ),
        (json.dumps(message("1", text=None)), "invalid value for 'text': Input should be a"),
        (json.dumps(message("1", id="")), "invalid value for 'id': String should have at least"),
        (json.dumps(message("1", platform="myspace")), "invalid value for 'platform': Input"),
        (json.dumps(message("1", author="ann")), "invalid value for 'author': Input should be"),
        (
            json.dumps({"kind": "edit", "id": "1", "channel": {"id": "c"}}),
            "missing required field 'edited_at'",
        ),
        (
            json.dumps({"kind": "member_joined", "member": {"id": "u"}, "at": "2024-05-01Z"}),
            "missing required field 'member.name'",
        ),
    ],
)
def test_invalid_lines_are_explained(tmp_path: Path, line: str, problem: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [message("1"), line])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position is not None
    assert caught.value.position.startswith("line 2")
    assert caught.value.problem.startswith(problem), caught.value.problem
    assert "\n" not in str(caught.value)


def test_json_syntax_errors_give_the_column(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [message("1"), '{"kind": "message", "id": 1,,}'])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2, column 29"
    assert caught.value.problem == "invalid JSON (key must be a string)"


def test_a_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(message("1")).encode() + b'\n{"kind": "message", "text": "\xe9"}\n')

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "line 2"
    assert "not UTF-8" in caught.value.problem


def test_missing_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_jsonl_export(tmp_path / "nope.jsonl", COMMUNITY)


def test_invalid_community_id() -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_jsonl_export(FIXTURES / "minimal.jsonl", "a:b")


def test_every_message_type_and_platform_is_accepted(tmp_path: Path) -> None:
    records = [
        message(str(index), type=kind.value, platform=platform.value)
        for index, (kind, platform) in enumerate(zip(MessageType, Platform, strict=False))
    ]
    events = read_all(write_lines(tmp_path / "types.jsonl", records))

    assert [e.payload.type for e in events] == list(MessageType)[: len(events)]
    assert [e.payload.platform for e in events] == list(Platform)[: len(events)]


def test_explicit_type_wins_over_reply_default(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [message("2", reply_to="1", type="default")])

    (event,) = read_all(path)

    assert event.payload.type is MessageType.DEFAULT
    assert event.payload.reply_to_id == "generic:acme:1"


# ------------------------------------------------------------------------- detection


def test_detection_and_dispatch() -> None:
    path = FIXTURES / "community.jsonl"

    assert detect_format(path) == "jsonl"
    assert len(list(iter_export(path, COMMUNITY))) == 7


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_detected_by_content_with_known_suffixes(tmp_path: Path, suffix: str) -> None:
    path = write_lines(tmp_path / f"export{suffix}", [message("1")])

    assert detect_format(path) == "jsonl"


def test_other_suffixes_need_the_format_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "export.log", [message("1")])

    assert not sniff_jsonl(path, path.read_bytes())
    assert len(list(iter_export(path, COMMUNITY, "jsonl"))) == 1


def test_unknown_first_kind_in_a_jsonl_file_reaches_the_importer(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "export.jsonl", [{"kind": "poll", "id": "1"}])

    assert detect_format(path) == "jsonl"
    with pytest.raises(ExportFormatError, match="unknown kind 'poll'") as caught:
        list(iter_export(path, COMMUNITY))
    assert caught.value.position == "line 1"


def test_a_json_document_with_an_unknown_kind_is_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"kind": "youtube#video", "id": "1"}\n')

    assert not sniff_jsonl(path, path.read_bytes())


def test_first_line_longer_than_the_head_is_still_detected(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "long.jsonl", [message("1", text="x" * 100_000)])

    assert detect_format(path) == "jsonl"


@pytest.mark.parametrize("name", sorted(p.name for p in DISCORD_FIXTURES.iterdir()))
def test_discord_exports_are_not_taken(name: str) -> None:
    path = DISCORD_FIXTURES / name

    assert not sniff_jsonl(path, path.read_bytes()[: 64 * 1024])


@pytest.mark.parametrize("name", sorted(p.name for p in DISCOURSE_FIXTURES.iterdir()))
def test_discourse_exports_are_not_taken(name: str) -> None:
    path = DISCOURSE_FIXTURES / name

    assert not sniff_jsonl(path, path.read_bytes()[: 64 * 1024])


# ------------------------------------------------------------------ docs and schema


def _doc_blocks(language: str) -> list[str]:
    text = (DOCS / "jsonl.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_every_documented_example_parses() -> None:
    converter = JsonlConverter(COMMUNITY)
    lines = [line for block in _doc_blocks("jsonl") for line in block.splitlines() if line]
    kinds = set()

    for line in lines:
        record = RECORD_ADAPTER.validate_json(line)
        converter.convert(record)
        kinds.add(record.kind)

    assert kinds == set(KINDS)


def test_the_published_schema_is_up_to_date() -> None:
    published = json.loads((DOCS / "jsonl.schema.json").read_text(encoding="utf-8"))

    assert published == record_json_schema()
    assert {entry["$ref"].rsplit("/", 1)[-1] for entry in published["oneOf"]} == {
        "MessageRecord",
        "EditRecord",
        "DeletionRecord",
        "MemberJoinedRecord",
        "MemberLeftRecord",
    }


def test_the_sample_export_matches_the_schema_required_fields() -> None:
    schema = record_json_schema()
    required = {
        name: set(definition.get("required", [])) for name, definition in schema["$defs"].items()
    }

    assert required["MessageRecord"] == {
        "kind",
        "id",
        "channel",
        "author",
        "text",
        "created_at",
    }
    assert required["UserSpec"] == {"id", "name"}
