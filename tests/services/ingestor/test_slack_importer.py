"""The Slack workspace export importer: mapping to the contracts, zip and folder, clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Stack
from tests.kafka_helpers import read_topic
from tests.services.ingestor.slack_helpers import (
    FIXTURES,
    slack_channel_item,
    slack_message,
    slack_user,
    ts,
    write_folder_export,
    write_slack_export,
    zip_folder,
)

from pepite_contracts import (
    Attachment,
    ChannelRef,
    MemberJoined,
    MemberLeft,
    Mention,
    MessageDeleted,
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
from pepite_ingestor.importers import slack as slack_importer
from pepite_ingestor.importers.slack import (
    iter_slack_export,
    parse_slack_ts,
    slack_export_channels,
    sniff_slack,
)
from pepite_kit import KafkaSettings

COMMUNITY = "acme"
EXPORT = FIXTURES / "export"
GENERAL = "C01GENERAL"
ALICE = slack_user("U01ALICE01", "alice", "Alice Martin")
BOB = slack_user("U01BOB0002", "bob", "Bob Leclerc")


def sid(native_id: str) -> str:
    return f"slack:{COMMUNITY}:{native_id}"


def read_all(path: Path) -> list[ImportedEvent]:
    return list(iter_slack_export(path, COMMUNITY))


def messages(path: Path) -> dict[str, MessageIngested]:
    return {
        event.payload.native_id: event
        for event in read_all(path)
        if isinstance(event, MessageIngested)
    }


@pytest.fixture(scope="module")
def events() -> list[ImportedEvent]:
    return read_all(EXPORT)


@pytest.fixture(scope="module")
def by_id(events: list[ImportedEvent]) -> dict[str, MessageIngested]:
    return {
        event.payload.native_id: event for event in events if isinstance(event, MessageIngested)
    }


def general(by_id: dict[str, MessageIngested], at: str) -> MessageIngested:
    return by_id[f"{GENERAL}:{at}"]


@pytest.fixture
def one_channel(tmp_path: Path) -> Any:
    """Write an export with one channel, ``general``, holding ``days``."""

    def write(*days: list[Any], users: list[dict[str, Any]] | None = None) -> Path:
        return write_folder_export(
            tmp_path / "export",
            users=users if users is not None else [ALICE, BOB],
            channels=[slack_channel_item(GENERAL, "general")],
            days={"general": {f"2024-03-0{n}": day for n, day in enumerate(days, 1)}},
        )

    return write


# -- mapping ----------------------------------------------------------------------


def test_default_message(by_id: dict[str, MessageIngested]) -> None:
    event = general(by_id, "1709283660.000200")
    message = event.payload

    assert message.id == sid("C01GENERAL:1709283660.000200")
    assert message.platform is Platform.SLACK
    assert message.community_id == COMMUNITY
    assert message.channel == ChannelRef(
        id=GENERAL, name="general", topic="Say hi and ask anything"
    )
    assert message.thread is None
    assert message.reply_to_id is None
    assert message.type is MessageType.DEFAULT
    assert message.text == "Hello everyone! :wave: Happy to be here 🎉"
    assert message.created_at == datetime(2024, 3, 1, 9, 1, 0, 200, tzinfo=UTC)
    assert message.edited_at is None
    assert message.author.id == sid("U01ALICE01")
    assert message.author.native_id == "U01ALICE01"
    assert message.author.name == "alice"
    assert message.author.display_name == "alice"
    assert message.author.is_bot is False
    assert message.author.avatar_url == "https://avatars.slack-edge.com/U01ALICE01_72.png"
    assert event.event_id == deterministic_event_id("message.ingested", message.id, "")
    assert event.occurred_at == message.created_at


def test_unmodeled_fields_are_kept_in_raw(by_id: dict[str, MessageIngested]) -> None:
    raw = general(by_id, "1709283660.000200").payload.raw

    assert raw["client_msg_id"]
    assert raw["team"] == raw["user_team"] == raw["source_team"] == "T0PEPITE01"
    assert raw["blocks"][0]["type"] == "rich_text"
    # The profile at posting time, less what the author already says.
    assert raw["user_profile"] == {
        "avatar_hash": "g1a2b3c4d5e6",
        "first_name": "Alice",
        "real_name": "Alice Martin",
        "team": "T0PEPITE01",
    }
    assert "type" not in raw
    assert "text" not in raw
    assert "ts" not in raw


def test_display_name_falls_back_to_real_name(by_id: dict[str, MessageIngested]) -> None:
    author = general(by_id, "1709283720.000300").payload.author

    assert (author.name, author.display_name) == ("bob", "Bob Leclerc")


def test_thread_parent_and_replies(by_id: dict[str, MessageIngested]) -> None:
    parent = general(by_id, "1709283720.000300").payload
    reply = general(by_id, "1709283780.000400").payload
    broadcast = general(by_id, "1709283900.000500").payload
    thread = ThreadRef(id="C01GENERAL:1709283720.000300")

    assert parent.type is MessageType.THREAD_STARTER
    assert parent.thread == thread
    assert parent.reply_to_id is None
    assert parent.raw["reply_count"] == 2
    assert parent.raw["reply_users"] == ["U01ALICE01", "U01BOB0002"]
    assert reply.type is MessageType.REPLY
    assert reply.thread == thread
    assert reply.reply_to_id == parent.id
    assert reply.raw["parent_user_id"] == "U01BOB0002"
    # Also sent to the channel, still a reply in the thread.
    assert broadcast.type is MessageType.REPLY
    assert broadcast.reply_to_id == parent.id
    assert broadcast.raw["subtype"] == "thread_broadcast"
    assert broadcast.raw["root"]["ts"] == "1709283720.000300"


def test_mentions_use_member_names(by_id: dict[str, MessageIngested]) -> None:
    reply = general(by_id, "1709283780.000400").payload
    labelled = general(by_id, "1709283900.000500").payload

    assert reply.mentions == [Mention(member_id=sid("U01BOB0002"), name="bob")]
    assert labelled.mentions == [Mention(member_id=sid("U01ALICE01"), name="alice")]
    assert general(by_id, "1709283660.000200").payload.mentions == []


def test_an_odd_profile_is_kept_as_it_is(one_channel: Any) -> None:
    path = one_channel([slack_message(ALICE, "hello", ts(0), user_profile="alice")])

    (event,) = messages(path).values()

    assert event.payload.author.name == "alice"
    assert event.payload.raw["user_profile"] == "alice"


def test_mention_of_an_unknown_member(one_channel: Any) -> None:
    path = one_channel(
        [
            slack_message(ALICE, "ping <@U0NOBODY1|ghost> and <@U0NOBODY2>", ts(0)),
            slack_message(ALICE, "twice <@U01BOB0002> <@U01BOB0002>", ts(1)),
        ]
    )

    first, second = messages(path).values()

    assert first.payload.mentions == [
        Mention(member_id=sid("U0NOBODY1"), name="ghost"),
        Mention(member_id=sid("U0NOBODY2"), name="U0NOBODY2"),
    ]
    assert second.payload.mentions == [Mention(member_id=sid("U01BOB0002"), name="bob")]


def test_reactions_with_counts(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709284000.000600").payload

    assert message.reactions == [
        Reaction(emoji="tada", count=2),
        Reaction(emoji="+1::skin-tone-3", count=1),
        # Slack lists a few of the users and counts them all.
        Reaction(emoji="partyparrot", count=3),
    ]
    assert message.raw["reactions"] == [
        {"users": ["U01BOB0002", "U01YASMIN3"]},
        {"users": ["U01BOB0002"]},
        {"users": ["U01BOB0002", "U01YASMIN3"]},
    ]


def test_edited_message(by_id: dict[str, MessageIngested]) -> None:
    event = general(by_id, "1709284100.000700")

    assert event.payload.edited_at == datetime(2024, 3, 1, 9, 9, 20, tzinfo=UTC)
    assert "edited" not in event.payload.raw  # edited by its author: nothing more to say
    assert event.event_id == deterministic_event_id(
        "message.ingested", event.payload.id, "2024-03-01T09:09:20+00:00"
    )


def test_edit_by_someone_else_is_kept(one_channel: Any) -> None:
    edited = {"user": "U01BOB0002", "ts": ts(60)}
    path = one_channel([slack_message(ALICE, "fixed typo", ts(0), edited=edited)])

    (event,) = messages(path).values()

    assert event.payload.raw["edited"] == {"user": "U01BOB0002"}


def test_files_become_attachments(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709284200.000800").payload

    assert message.attachments == [
        Attachment(
            id="F01FILE001",
            url="https://files.slack.com/files-pri/T0PEPITE01-F01FILE001/error.log",
            filename="error.log",
            size_bytes=2048,
            content_type="text/plain",
        ),
        # Past the free plan's history limit Slack keeps only the id.
        Attachment(id="F01HIDDEN2"),
    ]
    files = message.raw["files"]
    assert files[0]["permalink"] == "https://pepite.slack.com/files/U01BOB0002/F01FILE001/error.log"
    assert files[0]["preview"] == "Traceback (most recent call last):"
    assert files[1] == {"mode": "hidden_by_limit"}
    assert message.raw["subtype"] == "file_share"
    assert message.type is MessageType.DEFAULT


def test_a_bare_bot_message(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709284300.000900").payload

    assert message.author.native_id == "B01GITHUB9"
    assert message.author.name == "GitHub"
    assert message.author.is_bot is True
    assert message.author.avatar_url == "https://example.com/github_48.png"
    assert message.text == ""
    assert message.raw["attachments"][0]["title"] == "PR #42 merged"
    assert message.raw["subtype"] == "bot_message"


def test_an_app_posting_as_its_bot_user(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709284400.001000").payload

    assert message.author.native_id == "U01DEPLOY4"
    assert message.author.is_bot is True
    assert message.raw["bot_id"] == "B01DEPLOY4"
    assert message.raw["bot_profile"]["app_id"] == "A01DEPLOY4"
    assert message.raw["blocks"][0]["text"]["text"] == "Deployed *v1.2.3* to production"


def test_notices_are_system_messages(by_id: dict[str, MessageIngested]) -> None:
    topic = general(by_id, "1709284500.001100").payload
    pinned = general(by_id, "1709284600.001200").payload
    me = general(by_id, "1709285100.001800").payload

    assert topic.type is MessageType.SYSTEM
    assert topic.raw["subtype"] == "channel_topic"
    assert topic.raw["topic"] == "Say hi and ask anything"
    assert pinned.type is MessageType.PINNED_NOTICE
    assert pinned.raw["item"]["ts"] == "1709285200.001900"
    # What someone wrote, in the third person: content, not a notice.
    assert me.type is MessageType.DEFAULT
    assert me.raw["subtype"] == "me_message"


def test_unknown_subtype_is_kept_as_system(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709284800.001500").payload

    assert message.type is MessageType.SYSTEM
    assert message.raw["subtype"] == "workflow_magic"
    assert message.raw["workflow"] == {"id": "Wf01ONBOARD", "name": "Onboarding"}


def test_pinned_message(by_id: dict[str, MessageIngested]) -> None:
    message = general(by_id, "1709285200.001900").payload

    assert message.is_pinned is True
    assert "pinned_to" not in message.raw


def test_channel_join_and_leave(events: list[ImportedEvent]) -> None:
    joined = [event for event in events if isinstance(event, MemberJoined)]
    left = [event for event in events if isinstance(event, MemberLeft)]

    assert len(joined) == 1
    assert len(left) == 1
    change = joined[0].payload
    assert change.member.native_id == "U01ALICE01"
    assert change.member.name == "alice"
    assert change.channel is not None
    assert change.channel.id == GENERAL
    assert change.at == datetime(2024, 3, 1, 9, 0, 0, 100, tzinfo=UTC)
    assert change.source_id == sid("C01GENERAL:1709283600.000100")
    assert joined[0].event_id == deterministic_event_id("member.joined", change.source_id)
    assert change.raw == {
        "subtype": "channel_join",
        "text": "<@U01ALICE01> has joined the channel",
        "inviter": "U01BOB0002",
    }
    assert left[0].payload.member.native_id == "U01BOB0002"
    assert left[0].payload.source_id == sid("C01GENERAL:1709285300.002000")
    assert left[0].payload.raw["subtype"] == "channel_leave"


def test_tombstone_becomes_a_deletion(events: list[ImportedEvent]) -> None:
    (deleted,) = [event for event in events if isinstance(event, MessageDeleted)]

    deletion = deleted.payload
    assert deletion.id == sid("C01GENERAL:1709284700.001300")
    assert deletion.channel.id == GENERAL
    assert deletion.deleted_at == datetime(2024, 3, 1, 9, 18, 20, 1300, tzinfo=UTC)
    # The placeholder text is gone; the thread it still holds is kept.
    assert "text" not in deletion.raw
    assert deletion.raw["subtype"] == "tombstone"
    assert deletion.raw["reply_count"] == 1
    assert deleted.event_id == deterministic_event_id("message.deleted", deletion.id)


def test_reply_to_a_deleted_parent(by_id: dict[str, MessageIngested]) -> None:
    reply = general(by_id, "1709284760.001400").payload

    assert reply.reply_to_id == sid("C01GENERAL:1709284700.001300")
    assert reply.text == "مرحبا! هذا نص من اليمين إلى اليسار"
    assert reply.author.display_name == "ياسمين"


def test_author_missing_from_users_uses_the_embedded_profile(
    by_id: dict[str, MessageIngested],
) -> None:
    ghost = general(by_id, "1709284900.001600").payload
    nobody = general(by_id, "1709285000.001700").payload

    assert ghost.author.native_id == "U09GHOST01"
    assert ghost.author.name == "ghost"
    assert ghost.author.display_name == "ghostie"
    assert ghost.author.avatar_url == "https://avatars.slack-edge.com/ghost_72.png"
    assert ghost.raw["user_profile"]["team"] == "T0OTHER001"
    assert nobody.author.native_id == "U09NOPROF1"
    assert nobody.author.name == "U09NOPROF1"
    assert nobody.raw == {}


def test_missing_optional_fields(by_id: dict[str, MessageIngested]) -> None:
    short = general(by_id, "1709370060.000200").payload
    no_text = general(by_id, "1709370120.000300").payload

    assert short.text == "short"
    assert short.raw == {}
    assert no_text.text == ""
    assert no_text.attachments[0].filename == "photo.jpg"


def test_unicode_and_emoji_survive_a_round_trip(by_id: dict[str, MessageIngested]) -> None:
    event = general(by_id, "1709370000.000100")

    assert event.payload.text == "👍🏽 Emoji test: 🇫🇷 👨‍👩‍👧‍👦 ❤️ — «ça marche»"
    assert decode_event(encode_event(event)) == event


def test_a_10000_character_message(one_channel: Any) -> None:
    text = ("Lorem ipsum dolor sit amet 🎉 " * 400)[:10_000] + " the end"
    path = one_channel([slack_message(ALICE, text, ts(0))])

    (event,) = messages(path).values()

    assert event.payload.text == text
    assert len(event.payload.text) > 10_000


def test_duplicated_messages_get_the_same_ids(events: list[ImportedEvent]) -> None:
    duplicates = [
        event
        for event in events
        if isinstance(event, MessageIngested) and event.payload.text == "Duplicated line"
    ]

    assert len(duplicates) == 2
    assert duplicates[0] == duplicates[1]


def test_same_ts_in_two_channels_are_two_messages(by_id: dict[str, MessageIngested]) -> None:
    in_general = by_id["C01GENERAL:1709283660.000200"].payload
    in_help = by_id["C01HELP001:1709283660.000200"].payload

    assert in_general.id != in_help.id
    assert in_help.channel.name == "help"


def test_private_channels_and_direct_messages(by_id: dict[str, MessageIngested]) -> None:
    private = by_id["G01CORE001:1709283700.000100"].payload
    direct = by_id["D01ALIBOB1:1709283800.000100"].payload

    assert private.channel == ChannelRef(id="G01CORE001", name="core-team")
    assert direct.channel == ChannelRef(id="D01ALIBOB1", name="dm-alice-bob")


def test_order_and_counts(events: list[ImportedEvent]) -> None:
    channels = [event.payload.channel.id for event in events if isinstance(event, MessageIngested)]

    # channels.json order, then groups.json, then dms.json; days in date order.
    assert list(dict.fromkeys(channels)) == [GENERAL, "C01HELP001", "G01CORE001", "D01ALIBOB1"]
    assert len(events) == 28
    created = [
        event.payload.created_at
        for event in events
        if isinstance(event, MessageIngested) and event.payload.channel.id == GENERAL
    ]
    assert created == sorted(created)


def test_empty_channels_yield_nothing(tmp_path: Path) -> None:
    path = write_folder_export(
        tmp_path / "export",
        users=[ALICE],
        channels=[slack_channel_item("C01EMPTY01", "empty"), slack_channel_item("C02", "quiet")],
        days={"quiet": {}},
    )

    assert read_all(path) == []


def test_a_folder_missing_from_channels_json_is_still_read(tmp_path: Path) -> None:
    path = write_folder_export(
        tmp_path / "export",
        users=[ALICE],
        channels=[],
        days={"lost-channel": {"2024-03-01": [slack_message(ALICE, "still here", ts(0))]}},
    )

    (event,) = messages(path).values()

    assert event.payload.channel == ChannelRef(id="lost-channel", name="lost-channel")


def test_other_files_in_the_export_are_ignored(tmp_path: Path) -> None:
    path = write_folder_export(
        tmp_path / "export",
        users=[ALICE],
        channels=[slack_channel_item(GENERAL, "general")],
        days={"general": {"2024-03-01": [slack_message(ALICE, "hello", ts(0))]}},
        extra_files={"canvases.json": [], "huddles.json": {"not": "messages"}},
    )
    (path / "general" / "notes.json").write_text("not json at all")
    (path / "__MACOSX").mkdir()
    (path / "__MACOSX" / "2024-03-01.json").write_text("garbage")

    assert len(read_all(path)) == 1


def test_every_event_round_trips_through_the_contracts(events: list[ImportedEvent]) -> None:
    for event in events:
        assert decode_event(encode_event(event)) == event


def test_reimport_gives_the_same_event_ids(events: list[ImportedEvent]) -> None:
    assert [event.event_id for event in read_all(EXPORT)] == [event.event_id for event in events]


def test_zip_and_folder_give_identical_events(tmp_path: Path, events: list[ImportedEvent]) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip")

    assert [encode_event(e) for e in read_all(archive)] == [encode_event(e) for e in events]


def test_a_zip_with_the_export_in_a_top_folder(tmp_path: Path, events: list[ImportedEvent]) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip", prefix="Acme Slack export Mar 2024/")

    assert detect_format(archive) == "slack"
    assert [encode_event(e) for e in read_all(archive)] == [encode_event(e) for e in events]


def test_an_export_can_be_read_a_share_of_channels_at_a_time(
    tmp_path: Path, events: list[ImportedEvent]
) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip")
    parts = slack_export_channels(EXPORT)

    assert [channel for channel, _size in parts] == [
        GENERAL,
        "C01HELP001",
        "G01CORE001",
        "D01ALIBOB1",
    ]
    assert all(size > 0 for _channel, size in parts)
    assert [channel for channel, _size in slack_export_channels(archive)] == [
        channel for channel, _size in parts
    ]
    shares = [[GENERAL, "D01ALIBOB1"], ["C01HELP001", "G01CORE001"]]
    read = [
        event for share in shares for event in iter_slack_export(archive, COMMUNITY, channels=share)
    ]
    # Each channel's events, in the same order as a whole read.
    assert sorted(encode_event(event) for event in read) == sorted(
        encode_event(event) for event in events
    )
    general_events = list(iter_slack_export(EXPORT, COMMUNITY, channels=[GENERAL]))
    assert general_events == [
        event
        for event in events
        if (event.payload.channel.id if event.payload.channel else None) == GENERAL
    ]
    assert list(iter_slack_export(EXPORT, COMMUNITY, channels=["C0NOSUCH"])) == []


def test_timestamps_keep_their_microseconds() -> None:
    assert parse_slack_ts("1709283600.000001") == datetime(2024, 3, 1, 9, 0, 0, 1, tzinfo=UTC)
    assert parse_slack_ts("4294967295.999999").microsecond == 999_999
    assert parse_slack_ts("1709283600") == datetime(2024, 3, 1, 9, tzinfo=UTC)


# -- detection ------------------------------------------------------------------


def test_folder_and_zip_are_detected(tmp_path: Path) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip")

    assert detect_format(EXPORT) == "slack"
    assert detect_format(archive) == "slack"
    assert len(list(iter_export(EXPORT, COMMUNITY))) == 28
    assert len(list(iter_export(archive, COMMUNITY))) == 28


def test_users_json_and_a_channel_folder_are_enough(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "general").mkdir(parents=True)
    (root / "users.json").write_text(json.dumps([ALICE]))
    (root / "general" / "2024-03-01.json").write_text(
        json.dumps([slack_message(ALICE, "hi", ts(0))])
    )

    assert detect_format(root) == "slack"
    (event,) = list(iter_export(root, COMMUNITY))
    assert isinstance(event, MessageIngested)
    assert event.payload.channel.name == "general"


@pytest.mark.parametrize(
    "files",
    [
        {"notes.txt": "hello"},
        {"users.json": "[]"},  # no conversations, no channel folder
        {"general/2024-03-01.json": "[]"},  # no metadata file
    ],
)
def test_other_folders_are_not_slack(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert sniff_slack(tmp_path, b"") is False


def test_other_zips_are_not_slack(tmp_path: Path) -> None:
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("result.json", "{}")

    assert sniff_slack(archive, archive.read_bytes()[:64]) is False
    with pytest.raises(UnknownFormatError):
        detect_format(archive)


def test_a_discord_export_is_not_slack() -> None:
    discord = FIXTURES.parent / "discord" / "general.json"

    assert sniff_slack(discord, discord.read_bytes()[:65536]) is False


def test_generated_exports_import(tmp_path: Path) -> None:
    folder = write_slack_export(tmp_path / "big", 3_000, channels=3, seed=1)
    archive = write_slack_export(tmp_path / "big.zip", 3_000, channels=3, seed=1)

    from_folder = [encode_event(event) for event in iter_export(folder, COMMUNITY)]
    assert len(from_folder) == 3_000
    assert [encode_event(event) for event in iter_export(archive, COMMUNITY)] == from_folder
    types = {decode_event(data).type for data in from_folder}
    assert types == {"message.ingested", "member.joined"}


@pytest.mark.parametrize("zipped", [False, True])
async def test_pepite_import_publishes_a_whole_export(
    stack: Stack, kafka_settings: KafkaSettings, tmp_path: Path, zipped: bool
) -> None:
    path = zip_folder(EXPORT, tmp_path / "export.zip") if zipped else EXPORT
    result = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "pepite"), "import", str(path), "-c", COMMUNITY],
        check=False,
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "PEPITE_KAFKA_TOPIC_PREFIX": kafka_settings.kafka_topic_prefix,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    messages, members = await asyncio.gather(
        read_topic(kafka_settings, kafka_settings.topic_name("messages.raw")),
        read_topic(kafka_settings, kafka_settings.topic_name("members.events")),
    )
    assert len(messages) == 26
    assert len(members) == 2
    assert sorted(messages) == sorted(
        encode_event(event) for event in read_all(EXPORT) if event.type.startswith("message.")
    )


# -- errors -----------------------------------------------------------------------


def test_malformed_day_file_names_file_and_position(one_channel: Any) -> None:
    path = one_channel([slack_message(ALICE, "fine", ts(0))])
    day = path / "general" / "2024-03-01.json"
    text = '[\n    {"type": "message", "ts": "1.0", "text": "é" "b"}\n]'
    day.write_text(text, encoding="utf-8")

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    error = caught.value
    assert error.path == str(day)
    assert error.problem.startswith("invalid JSON (Expecting ',' delimiter")
    # Bytes, not characters: "é" is two bytes.
    byte = len(text[: text.index('"b"')].encode())
    assert error.position == f"byte {byte} (line 2, column 50)"
    assert day.read_bytes()[byte : byte + 3] == b'"b"'


def test_truncated_day_file(one_channel: Any) -> None:
    path = one_channel([slack_message(ALICE, "fine", ts(0))])
    day = path / "general" / "2024-03-01.json"
    day.write_bytes(day.read_bytes()[:100])

    with pytest.raises(ExportFormatError, match="file is truncated") as caught:
        read_all(path)

    assert caught.value.path == str(day)


def test_a_file_that_is_not_utf8(one_channel: Any) -> None:
    path = one_channel([])
    day = path / "general" / "2024-03-01.json"
    data = '[{"type": "message", "ts": "1.0", "text": "café"}]'.encode("latin-1")
    day.write_bytes(data)

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.path == str(day)
    assert caught.value.problem == "invalid JSON (the file is not UTF-8 text)"
    assert caught.value.position == f"byte {data.index('é'.encode('latin-1'))}"


def test_message_missing_ts_names_file_and_message(one_channel: Any) -> None:
    broken = slack_message(ALICE, "no time", ts(1))
    del broken["ts"]
    path = one_channel([slack_message(ALICE, "fine", ts(0)), broken])

    events = iter_slack_export(path, COMMUNITY)
    first = next(events)
    with pytest.raises(ExportFormatError) as caught:
        next(events)

    assert isinstance(first, MessageIngested)
    assert caught.value.path == str(path / "general" / "2024-03-01.json")
    assert caught.value.problem == "field 'ts' is missing (every Slack message has one)"
    assert caught.value.position == "message #2"
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ts": "yesterday"}, "field 'ts' is not a Slack timestamp"),
        ({"text": ["not", "text"]}, "field 'text' must be a string"),
        ({"user": 42}, "field 'user' must be a non-empty string"),
        ({"user": ["U01ALICE01"]}, "field 'user' must be a user id string, not an array"),
        ({"edited": {"user": "U01ALICE01"}}, "field 'edited.ts' is not a Slack timestamp"),
        ({"reactions": [{"count": 1}]}, "field 'reactions[0].name' must be a non-empty string"),
        ({"reactions": {"name": "x"}}, "field 'reactions' must be a list of objects"),
        ({"files": ["F01"]}, "field 'files[0]' must be an object"),
        ({"thread_ts": True}, "field 'thread_ts' must be a Slack timestamp string"),
        ({"reactions": [{"name": "x", "count": -1}]}, "invalid value for reactions.0.count"),
    ],
)
def test_bad_fields_are_named(one_channel: Any, change: dict[str, Any], problem: str) -> None:
    path = one_channel([{**slack_message(ALICE, "hello", "1709283600.000100"), **change}])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem.startswith(problem), caught.value.problem
    assert caught.value.position is not None
    assert caught.value.position.startswith("message #1")


def test_a_message_that_is_not_an_object(one_channel: Any) -> None:
    path = one_channel([slack_message(ALICE, "fine", ts(0)), "just a string"])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.problem == "message is not a JSON object but a string"
    assert caught.value.position == "message #2"


def test_a_day_file_that_is_not_an_array(one_channel: Any) -> None:
    path = one_channel([])
    (path / "general" / "2024-03-01.json").write_text('{"messages": []}')

    with pytest.raises(ExportFormatError, match="holds a JSON array of messages, found an object"):
        read_all(path)


@pytest.mark.parametrize(
    ("content", "problem", "position"),
    [
        ('{"id": "U1"}', "expected a JSON array, found an object", None),
        ('[{"name": "alice"}]', "missing required field 'id'", "item #1"),
        ("[1]", "item is not a JSON object", "item #1"),
        ("", "file is empty", None),
    ],
)
def test_bad_users_json(tmp_path: Path, content: str, problem: str, position: str | None) -> None:
    root = write_folder_export(tmp_path / "export", users=[], channels=[], days={})
    (root / "users.json").write_text(content)

    # Metadata is checked before the first event is asked for.
    with pytest.raises(ExportFormatError) as caught:
        iter_slack_export(root, COMMUNITY)

    assert caught.value.path == str(root / "users.json")
    assert caught.value.problem == problem
    assert caught.value.position == position


def test_channel_without_name(tmp_path: Path) -> None:
    root = write_folder_export(
        tmp_path / "export", users=[], channels=[{"id": "C1", "topic": {}}], days={}
    )

    with pytest.raises(ExportFormatError) as caught:
        iter_slack_export(root, COMMUNITY)

    assert caught.value.path == str(root / "channels.json")
    assert caught.value.problem == "missing required field 'name'"
    assert caught.value.position == "item #1 (id C1)"


def test_a_corrupt_zip(tmp_path: Path) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])

    # Still recognised from its first bytes, so the error says what is wrong.
    assert detect_format(archive) == "slack"
    with pytest.raises(ExportFormatError) as caught:
        list(iter_export(archive, COMMUNITY))

    assert caught.value.path == str(archive)
    assert caught.value.problem.startswith("not a readable zip file")


def corrupt_member(archive: Path, member: str) -> Path:
    """Damage the compressed bytes of one member: its CRC check (or inflate) fails."""
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(member.encode()) + len(info.extra) + 10
    for offset in range(start, start + 40):
        data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    return archive


def test_a_corrupt_zip_member_is_named(tmp_path: Path) -> None:
    member = "general/2024-03-01.json"
    archive = corrupt_member(zip_folder(EXPORT, tmp_path / "export.zip"), member)

    with pytest.raises(ExportFormatError) as caught:
        read_all(archive)

    assert caught.value.path == f"{archive}/{member}"
    assert caught.value.problem.startswith("corrupt zip member")


# -- big day files are streamed ------------------------------------------------------


@pytest.fixture
def stream_every_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream every day file, as if each were bigger than the threshold."""
    monkeypatch.setattr(slack_importer, "STREAM_DAY_FILES_ABOVE", 0)


@pytest.mark.usefixtures("stream_every_day")
def test_streamed_day_files_give_the_same_events(
    tmp_path: Path, events: list[ImportedEvent]
) -> None:
    archive = zip_folder(EXPORT, tmp_path / "export.zip")
    expected = [encode_event(event) for event in events]

    assert [encode_event(event) for event in read_all(EXPORT)] == expected
    assert [encode_event(event) for event in read_all(archive)] == expected


@pytest.mark.usefixtures("stream_every_day")
def test_a_streamed_malformed_day_file_names_file_and_position(one_channel: Any) -> None:
    path = one_channel([slack_message(ALICE, "fine", ts(0)), slack_message(ALICE, "ok", ts(1))])
    day = path / "general" / "2024-03-01.json"
    data = day.read_bytes()
    broken = data.replace(b'"text": "ok"', b'"text": "ok" "oops"')
    day.write_bytes(broken)

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    error = caught.value
    assert error.path == str(day)
    assert error.problem.startswith("invalid JSON")
    assert error.position is not None
    assert error.position.endswith(", after message #1")
    byte = int(error.position.split()[1].rstrip(","))
    assert broken.index(b'"oops"') <= byte <= broken.index(b'"oops"') + len(b'"oops"')


@pytest.mark.usefixtures("stream_every_day")
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"messages": []}', "a day file holds a JSON array of messages"),
        (b"", "file is empty"),
        (b'[{"type": "message", "ts": "1.0"}, {"ty', "file is truncated"),
    ],
)
def test_streamed_day_file_errors(one_channel: Any, content: bytes, problem: str) -> None:
    path = one_channel([])
    (path / "general" / "2024-03-01.json").write_bytes(content)

    with pytest.raises(ExportFormatError, match=problem):
        read_all(path)


@pytest.mark.usefixtures("stream_every_day")
def test_a_streamed_message_missing_ts(one_channel: Any) -> None:
    broken = slack_message(ALICE, "no time", ts(1))
    del broken["ts"]
    path = one_channel([slack_message(ALICE, "fine", ts(0)), broken])

    with pytest.raises(ExportFormatError) as caught:
        read_all(path)

    assert caught.value.position == "message #2"


@pytest.mark.usefixtures("stream_every_day")
def test_a_streamed_corrupt_zip_member(tmp_path: Path) -> None:
    archive = corrupt_member(zip_folder(EXPORT, tmp_path / "export.zip"), "help/2024-03-01.json")

    with pytest.raises(ExportFormatError) as caught:
        read_all(archive)

    assert caught.value.path == f"{archive}/help/2024-03-01.json"
    assert caught.value.problem.startswith("corrupt zip member")


def test_missing_export(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="file not found"):
        iter_slack_export(tmp_path / "nope.zip", COMMUNITY)


def test_a_zip_that_is_not_an_export(tmp_path: Path) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("cat.jpg", b"meow")

    with pytest.raises(ExportFormatError, match=r"not a Slack export: no channels\.json"):
        iter_slack_export(archive, COMMUNITY)


@pytest.mark.parametrize("community_id", ["", "has:colon", "-leading-dash"])
def test_invalid_community_id(community_id: str) -> None:
    with pytest.raises(ValueError, match="invalid community id"):
        iter_slack_export(EXPORT, community_id)
