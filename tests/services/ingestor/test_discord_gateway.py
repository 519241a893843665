"""The live Discord adapter, fed real-shaped gateway payloads through discord.py's own parsers.

No network: each test builds the client, hands GUILD_CREATE and then the event under test
to discord.py's ``ConnectionState`` parsers (what the websocket does with each dispatch),
and checks what the client sent to its sink. The gateway is the outside thing being
faked; one test publishes through the real Kafka sink and reads the records back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from tests.services.ingestor import discord_payloads as gw
from tests.services.ingestor.dce_helpers import ExportWriter, dce_message, dce_user

from pepite_contracts import (
    ChannelRef,
    Event,
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    MessageType,
    ThreadRef,
    Topic,
    decode_event,
    encode_event,
    partition_key,
)
from pepite_ingestor.importers.common import ImportedEvent, fast_event_id
from pepite_ingestor.importers.discord import iter_discord_export
from pepite_ingestor.live.discord_gateway import (
    DiscordGatewayClient,
    RetryPolicy,
    build_discord_gateway,
    gateway_intents,
)
from pepite_ingestor.live.sink import KafkaEventSink
from pepite_ingestor.settings import Settings
from pepite_kit import EventPublisher, KafkaSettings, ensure_topics

COMMUNITY = "ubuntu-fr"
AT = "2024-04-18T12:00:00+00:00"
FAST_RETRY = RetryPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.02)


def sid(native_id: str) -> str:
    return f"discord:{COMMUNITY}:{native_id}"


def message_id(at: str = AT, sequence: int = 0) -> str:
    return gw.snowflake(at, sequence)


GENERAL = ChannelRef(id=gw.GENERAL_ID, name="general", category="Community", topic="Say hi 👋")


class RecordingSink:
    """Keeps what it is sent; fails the first ``failures`` sends, or every one."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[ImportedEvent]] = []
        self.failures = failures
        self.calls = 0

    async def send(self, events: Sequence[ImportedEvent]) -> None:
        self.calls += 1
        if self.failures < 0 or self.calls <= self.failures:
            raise ConnectionError("broker unavailable")
        self.batches.append(list(events))

    @property
    def events(self) -> list[ImportedEvent]:
        return [event for batch in self.batches for event in batch]


class Gateway:
    """A client wired to a sink, and a way to play gateway dispatches into it."""

    def __init__(self, client: DiscordGatewayClient, sink: RecordingSink) -> None:
        self.client = client
        self.sink = sink

    def feed(self, event: str, data: dict[str, Any]) -> None:
        # What DiscordWebSocket.received_message does with a dispatch's "t" and "d".
        self.client._connection.parsers[event](data)

    async def settle(self) -> list[ImportedEvent]:
        """Let discord.py's handler tasks run, wait for the sink, return what it got."""
        while True:
            pending = [
                task
                for task in asyncio.all_tasks()
                if task.get_name().startswith("discord.py:") and not task.done()
            ]
            if not pending:
                break
            await asyncio.gather(*pending)
        await self.client.drain()
        return self.sink.events

    async def one(self, event: str, data: dict[str, Any]) -> ImportedEvent:
        before = len(self.sink.events)
        self.feed(event, data)
        events = (await self.settle())[before:]
        assert len(events) == 1, events
        return events[0]


async def open_gateway(
    sink: RecordingSink, *, guild: bool = True, **options: Any
) -> DiscordGatewayClient:
    client = DiscordGatewayClient(sink=sink, community_id=COMMUNITY, retry=FAST_RETRY, **options)
    await client.__aenter__()
    # What login does before connecting; no token, no network.
    await client.setup_hook()
    if guild:
        client._connection.parsers["GUILD_CREATE"](gw.guild_create())
    return client


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    sink = RecordingSink()
    client = await open_gateway(sink)
    try:
        yield Gateway(client, sink)
    finally:
        await client.close()


def roundtrip(event: ImportedEvent) -> Event:
    """What a consumer decodes: raw must survive JSON, nothing may be lost."""
    decoded = decode_event(encode_event(event))
    assert decoded == event
    return decoded


# Messages


async def test_a_message_is_filed_like_the_importer_files_it(gateway: Gateway) -> None:
    native = message_id()
    event = await gateway.one("MESSAGE_CREATE", gw.message_create(native, "Bonjour à tous !"))

    assert isinstance(event, MessageIngested)
    message = event.payload
    assert message.id == sid(native)
    assert message.native_id == native
    assert message.community_id == COMMUNITY
    assert message.channel == GENERAL
    assert message.thread is None
    assert message.text == "Bonjour à tous !"
    assert message.type is MessageType.DEFAULT
    assert message.created_at == datetime(2024, 4, 18, 12, tzinfo=UTC)
    assert message.edited_at is None
    assert message.author.id == sid(gw.ADA_ID)
    assert message.author.native_id == gw.ADA_ID
    assert message.author.name == "ada"
    assert message.author.display_name == "Ada L."  # the guild nickname
    assert message.author.is_bot is False
    assert message.author.avatar_url is not None
    assert message.author.avatar_url.startswith(
        f"https://cdn.discordapp.com/avatars/{gw.ADA_ID}/{gw.AVATAR_HASH}.png"
    )
    # The nickname hides the global name, so it is kept; "0" says nothing and is dropped.
    assert message.raw == {
        "author": {
            "global_name": "Ada Lovelace",
            "roles": [{"id": gw.MOD_ROLE_ID, "name": "Moderators"}],
            "color": "#2ecc71",
        }
    }
    assert event.event_id == fast_event_id("message.ingested", sid(native), "")
    assert event.occurred_at == message.created_at
    assert event.community_id == COMMUNITY
    roundtrip(event)


async def test_display_name_falls_back_to_the_global_name(gateway: Gateway) -> None:
    native = message_id()
    data = gw.message_create(native, "hi", author=gw.BOB, member=gw.BOB_MEMBER)
    event = await gateway.one("MESSAGE_CREATE", data)

    assert isinstance(event, MessageIngested)
    assert event.payload.author.name == "bob.builder"
    assert event.payload.author.display_name == "Bob"
    assert "author" not in event.payload.raw


async def test_a_reply_points_to_its_parent(gateway: Gateway) -> None:
    parent = gw.message_create(message_id(), "Quelqu'un a testé la 24.04 ?")
    child = gw.reply(message_id("2024-04-18T12:03:00+00:00"), parent, "Oui, ça marche bien")
    gateway.feed("MESSAGE_CREATE", parent)
    gateway.feed("MESSAGE_CREATE", child)
    first, second = await gateway.settle()

    assert isinstance(second, MessageIngested)
    assert second.payload.type is MessageType.REPLY
    assert second.payload.reply_to_id == first.payload.id == sid(parent["id"])
    assert second.payload.mentions[0].member_id == sid(gw.ADA_ID)
    # Same guild, same channel, a plain reply: reply_to_id says it all.
    assert "reference" not in second.payload.raw


async def test_a_forward_is_not_a_reply_and_keeps_its_copy(gateway: Gateway) -> None:
    original = gw.message_create(message_id(), "Annonce : migration ce soir 🚀")
    event = await gateway.one(
        "MESSAGE_CREATE", gw.forward(message_id("2024-04-18T12:05:00+00:00"), original)
    )

    assert isinstance(event, MessageIngested)
    message = event.payload
    assert message.reply_to_id is None
    assert message.text == ""
    assert message.raw["reference"] == {
        "message_id": original["id"],
        "guild_id": gw.snowflake("2020-01-01T00:00:00+00:00"),
        "type": "forward",
    }
    assert message.raw["message_snapshots"] == [
        {"type": "default", "content": original["content"], "timestamp": AT}
    ]
    assert message.raw["flags"] == 16384
    roundtrip(event)


async def test_a_thread_message_is_filed_under_the_parent_channel(gateway: Gateway) -> None:
    native = message_id()
    data = gw.message_create(native, "Retour sur la 2.0", channel_id=gw.THREAD_ID)
    event = await gateway.one("MESSAGE_CREATE", data)

    assert isinstance(event, MessageIngested)
    assert event.payload.channel == GENERAL
    assert event.payload.thread == ThreadRef(id=gw.THREAD_ID, name="Release 2.0 feedback")


async def test_a_forum_post_is_a_thread_of_the_forum(gateway: Gateway) -> None:
    data = gw.message_create(
        message_id(), "Un mode sombre ?", channel_id=gw.FORUM_POST_ID, author=gw.BOB
    )
    event = await gateway.one("MESSAGE_CREATE", data)

    assert isinstance(event, MessageIngested)
    assert event.payload.channel == ChannelRef(
        id=gw.FORUM_ID, name="ideas", topic="One idea per post"
    )
    assert event.payload.thread == ThreadRef(id=gw.FORUM_POST_ID, name="Dark mode")


async def test_attachments_reactions_mentions_and_the_rest(gateway: Gateway) -> None:
    native = message_id()
    event = await gateway.one("MESSAGE_CREATE", gw.rich_message(native))

    assert isinstance(event, MessageIngested)
    message = event.payload
    image, log = message.attachments
    assert image.id == gw.snowflake(AT, 1)
    assert image.filename == "écran 1.png"
    assert image.size_bytes == 482_113
    assert image.content_type == "image/png"
    assert image.url is not None
    assert image.url.startswith("https://cdn.discordapp.com/")
    assert log.filename == "SPOILER_logs.txt"
    assert [(r.emoji, r.emoji_id, r.count) for r in message.reactions] == [
        ("🎉", None, 5),
        ("pepite", gw.CUSTOM_EMOJI_ID, 3),
    ]
    assert [(m.member_id, m.name) for m in message.mentions] == [(sid(gw.BOB_ID), "bob.builder")]

    raw = message.raw
    assert raw["attachments"][0] == {
        "proxy_url": image.url.replace("cdn.discordapp.com", "media.discordapp.net"),
        "width": 1920,
        "height": 1080,
        "description": "Settings page, dark mode",
    }
    assert raw["attachments"][1]["spoiler"] is True
    assert raw["reactions"] == [{}, {"burst_count": 1}]
    # Bob's global name is his display name: nothing more to keep about him.
    assert "mentions" not in raw
    assert raw["mention_roles"] == [{"id": gw.MOD_ROLE_ID, "name": "Moderators"}]
    assert raw["sticker_items"] == [{"id": gw.STICKER_ID, "name": "wave", "format_type": 1}]
    (embed,) = raw["embeds"]
    assert embed["title"] == "Pépite 2.0 release notes"
    assert embed["fields"] == [{"name": "Download", "value": "[here](https://example.org)"}]
    assert embed["timestamp"] == "2024-04-18T10:00:00+00:00"
    # Empty values say nothing: no flags 0, no tts False, no empty lists.
    assert not {"flags", "tts", "mention_everyone", "webhook_id", "components"} & raw.keys()
    roundtrip(event)


async def test_a_bot_message_keeps_its_application_and_components(gateway: Gateway) -> None:
    event = await gateway.one("MESSAGE_CREATE", gw.bot_message(message_id(), "Docs: see below"))

    assert isinstance(event, MessageIngested)
    assert event.payload.author.is_bot is True
    assert event.payload.author.avatar_url == "https://cdn.discordapp.com/embed/avatars/0.png"
    assert event.payload.raw["application_id"] == gw.HELPER_BOT_ID
    (row,) = event.payload.raw["components"]
    assert row["type"] == 1
    assert row["components"][0]["url"] == "https://example.org/docs"
    roundtrip(event)


async def test_a_poll_keeps_its_question_answers_and_votes(gateway: Gateway) -> None:
    event = await gateway.one("MESSAGE_CREATE", gw.poll_message(message_id()))

    assert isinstance(event, MessageIngested)
    assert event.payload.raw["poll"] == {
        "question": "Quelle version utilisez-vous ?",
        "answers": [{"text": "22.04 LTS", "votes": 4}, {"text": "24.04 LTS", "votes": 9}],
        "expiry": "2024-04-19T12:00:00+00:00",
    }
    roundtrip(event)


async def test_a_command_answer_says_who_ran_the_command(gateway: Gateway) -> None:
    data = gw.command_reply(message_id(), gw.BOB, "Voici la documentation")
    event = await gateway.one("MESSAGE_CREATE", data)

    assert isinstance(event, MessageIngested)
    assert event.payload.type is MessageType.SYSTEM
    raw = event.payload.raw
    assert raw["type"] == "chat_input_command"
    assert raw["webhook_id"] == gw.HELPER_BOT_ID
    assert raw["interaction_metadata"] == {
        "id": gw.snowflake(AT, 9),
        "type": "application_command",
        "user_id": gw.BOB_ID,
    }


LONG_TEXT = (
    "مرحبا بالجميع، هذا اختبار للنص من اليمين إلى اليسار. "
    "שלום לכולם! "
    "👩🏽‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 "
    "e\u0301te\u0301 "  # combining accents, kept as sent (not normalized)
    "\u202eRTL override\u202c "
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 "
    "中文字符 "
) * 40


async def test_long_unicode_rtl_and_emoji_text_arrives_unchanged(gateway: Gateway) -> None:
    text = LONG_TEXT[:4000]
    event = await gateway.one("MESSAGE_CREATE", gw.message_create(message_id(), text))

    assert isinstance(event, MessageIngested)
    assert event.payload.text == text
    decoded = roundtrip(event)
    assert isinstance(decoded, MessageIngested)
    assert decoded.payload.text == text


@pytest.mark.parametrize(
    ("kind", "expected", "raw_type"),
    [
        (18, MessageType.THREAD_STARTER, None),  # thread_created
        (6, MessageType.PINNED_NOTICE, None),  # pins_add
        (4, MessageType.SYSTEM, "channel_name_change"),
        (21, MessageType.SYSTEM, "thread_starter_message"),
        (250, MessageType.SYSTEM, "unknown_250"),  # a type newer than discord.py
    ],
)
async def test_message_types_map_like_the_importer(
    gateway: Gateway, kind: int, expected: MessageType, raw_type: str | None
) -> None:
    event = await gateway.one(
        "MESSAGE_CREATE", gw.message_create(message_id(), "Release 2.0 feedback", kind=kind)
    )

    assert isinstance(event, MessageIngested)
    assert event.payload.type is expected
    assert event.payload.raw.get("type") == raw_type


async def test_the_joined_system_message_is_a_member_joining(gateway: Gateway) -> None:
    native = message_id()
    data = gw.message_create(native, "", kind=7, author=gw.NEWCOMER, member={"joined_at": AT})
    event = await gateway.one("MESSAGE_CREATE", data)

    assert isinstance(event, MemberJoined)
    change = event.payload
    assert change.member.id == sid(gw.NEWCOMER_ID)
    assert change.member.name == "newcomer_42"
    assert change.channel == GENERAL
    assert change.source_id == sid(native)
    assert change.at == datetime(2024, 4, 18, 12, tzinfo=UTC)
    assert event.event_id == fast_event_id("member.joined", sid(native))


async def test_direct_messages_and_other_guilds_are_ignored() -> None:
    sink = RecordingSink()
    client = await open_gateway(sink, guild_ids=[int(gw.GUILD_ID) + 1])
    gateway = Gateway(client, sink)
    try:
        gateway.feed("MESSAGE_CREATE", gw.direct_message(message_id(), "psst"))
        gateway.feed("MESSAGE_CREATE", gw.message_create(message_id(sequence=1), "elsewhere"))
        gateway.feed("GUILD_MEMBER_ADD", gw.guild_member_add(gw.NEWCOMER, AT))
        gateway.feed("MESSAGE_DELETE", gw.message_delete(message_id(sequence=1)))
        assert await gateway.settle() == []
        assert client.stats.received == 0
    finally:
        await client.close()


# Edits


async def test_a_full_update_carries_the_whole_edited_message(gateway: Gateway) -> None:
    created = gw.rich_message(message_id())
    edited_at = "2024-04-18T12:10:00.123000+00:00"
    gateway.feed("MESSAGE_CREATE", created)
    gateway.feed("MESSAGE_UPDATE", gw.message_update(created, "voici les captures (v2)", edited_at))
    original, event = await gateway.settle()

    assert isinstance(original, MessageIngested)
    assert original.payload.text == created["content"]  # not changed by the later update
    assert isinstance(event, MessageEdited)
    edit = event.payload
    when = datetime(2024, 4, 18, 12, 10, 0, 123000, tzinfo=UTC)
    assert edit.id == original.payload.id
    assert edit.channel == GENERAL
    assert edit.edited_at == when
    assert edit.text == "voici les captures (v2)"
    assert edit.attachments == original.payload.attachments
    assert edit.mentions == original.payload.mentions
    assert edit.message is not None
    assert edit.message.text == "voici les captures (v2)"
    assert edit.message.edited_at == when
    assert edit.message.reactions == original.payload.reactions
    assert event.event_id == fast_event_id("message.edited", edit.id, when.isoformat())
    assert event.occurred_at == when
    roundtrip(event)


async def test_a_partial_update_of_an_unknown_message_says_what_changed(gateway: Gateway) -> None:
    native = message_id()
    data = gw.partial_message_update(native, "corrigé", "2024-04-18T12:11:00+00:00")
    event = await gateway.one("MESSAGE_UPDATE", data)

    assert isinstance(event, MessageEdited)
    edit = event.payload
    assert edit.id == sid(native)
    assert edit.channel == GENERAL
    assert edit.text == "corrigé"
    assert edit.attachments is None  # not in the update: unchanged, not emptied
    assert edit.mentions is None
    assert edit.message is None


async def test_a_partial_update_of_a_cached_message_rebuilds_it(gateway: Gateway) -> None:
    created = gw.rich_message(message_id())
    gateway.feed("MESSAGE_CREATE", created)
    update = gw.partial_message_update(
        created["id"], "texte corrigé", "2024-04-18T12:12:00+00:00", author=gw.ADA, attachments=[]
    )
    gateway.feed("MESSAGE_UPDATE", update)
    original, event = await gateway.settle()

    assert isinstance(original, MessageIngested)
    assert isinstance(event, MessageEdited)
    edit = event.payload
    assert edit.text == "texte corrigé"
    assert edit.attachments == []  # the author removed them
    assert edit.mentions is None
    assert edit.message is not None
    assert edit.message.text == "texte corrigé"
    assert edit.message.attachments == []
    assert edit.message.mentions == original.payload.mentions
    assert edit.message.created_at == original.payload.created_at
    assert edit.message.edited_at == datetime(2024, 4, 18, 12, 12, tzinfo=UTC)


async def test_a_partial_update_without_its_author_is_still_filed(gateway: Gateway) -> None:
    created = gw.rich_message(message_id())
    gateway.feed("MESSAGE_CREATE", created)
    update = gw.partial_message_update(created["id"], "corrigé", "2024-04-18T12:13:00+00:00")
    # discord.py 2.7 expects whole updates: with the message cached, it dispatches the raw
    # edit and then fails reading the author the update lacks. The edit is filed anyway.
    with contextlib.suppress(AttributeError):
        gateway.feed("MESSAGE_UPDATE", update)
    _, event = await gateway.settle()

    assert isinstance(event, MessageEdited)
    assert event.payload.text == "corrigé"
    assert event.payload.message is not None
    assert event.payload.message.author.id == sid(gw.ADA_ID)
    assert len(event.payload.message.attachments) == 2


async def test_an_edit_in_a_thread_stays_with_the_parent_channel(gateway: Gateway) -> None:
    created = gw.message_create(message_id(), "v1", channel_id=gw.THREAD_ID)
    gateway.feed("MESSAGE_CREATE", created)
    gateway.feed("MESSAGE_UPDATE", gw.message_update(created, "v2", "2024-04-18T12:20:00+00:00"))
    _, event = await gateway.settle()

    assert isinstance(event, MessageEdited)
    assert event.payload.channel == GENERAL
    assert event.payload.raw == {"thread": {"id": gw.THREAD_ID, "name": "Release 2.0 feedback"}}
    assert event.payload.message is not None
    assert event.payload.message.thread == ThreadRef(id=gw.THREAD_ID, name="Release 2.0 feedback")


async def test_an_update_that_is_not_an_edit_publishes_nothing(gateway: Gateway) -> None:
    created = gw.message_create(message_id(), "https://example.org/releases/2.0")
    gateway.feed("MESSAGE_CREATE", created)
    # Discord unfurled the link: the embed arrives in an update with no edit time.
    unfurled = gw.message_update(created, created["content"], "")
    unfurled.update(edited_timestamp=None, embeds=[{"type": "link", "url": created["content"]}])
    gateway.feed("MESSAGE_UPDATE", unfurled)
    events = await gateway.settle()

    assert [event.type for event in events] == ["message.ingested"]


# Deletions


async def test_a_deleted_message_is_filed_where_it_was(gateway: Gateway) -> None:
    cached = gw.message_create(message_id(), "oops", channel_id=gw.THREAD_ID)
    gateway.feed("MESSAGE_CREATE", cached)
    gateway.feed("MESSAGE_DELETE", gw.message_delete(cached["id"], gw.THREAD_ID))
    # Not cached by discord.py, but its channel is.
    uncached = message_id(sequence=5)
    gateway.feed("MESSAGE_DELETE", gw.message_delete(uncached, gw.HELP_ID))
    # A channel the client never saw (an archived thread, say): named by its id.
    unknown_channel = gw.snowflake("2023-05-05T05:05:05+00:00")
    gateway.feed("MESSAGE_DELETE", gw.message_delete(message_id(sequence=6), unknown_channel))
    ingested, in_thread, in_help, elsewhere = await gateway.settle()

    assert isinstance(ingested, MessageIngested)
    assert isinstance(in_thread, MessageDeleted)
    assert in_thread.payload.id == ingested.payload.id
    # Same channel as the message, so the same partition, after it.
    assert in_thread.payload.channel == ingested.payload.channel == GENERAL
    assert in_thread.payload.raw == {"thread": {"id": gw.THREAD_ID, "name": "Release 2.0 feedback"}}
    assert in_thread.event_id == fast_event_id("message.deleted", ingested.payload.id)
    assert in_thread.payload.deleted_at.tzinfo is not None
    assert isinstance(in_help, MessageDeleted)
    assert in_help.payload.id == sid(uncached)
    assert in_help.payload.channel == ChannelRef(id=gw.HELP_ID, name="help", category="Community")
    assert isinstance(elsewhere, MessageDeleted)
    assert elsewhere.payload.channel == ChannelRef(id=unknown_channel, name=unknown_channel)


async def test_a_bulk_delete_deletes_each_message(gateway: Gateway) -> None:
    ids = [message_id(sequence=n) for n in (3, 1, 2)]
    gateway.feed("MESSAGE_CREATE", gw.message_create(ids[1], "spam 1"))
    gateway.feed("MESSAGE_DELETE_BULK", gw.message_delete_bulk(ids))
    events = (await gateway.settle())[1:]

    assert all(isinstance(event, MessageDeleted) for event in events)
    assert [event.payload.id for event in events] == [sid(n) for n in sorted(ids, key=int)]
    assert {event.payload.channel for event in events if isinstance(event, MessageDeleted)} == {
        GENERAL
    }


# Members


async def test_member_join_and_leave_are_community_wide(gateway: Gateway) -> None:
    joined_at = "2024-04-18T12:30:00.250000+00:00"
    join = await gateway.one("GUILD_MEMBER_ADD", gw.guild_member_add(gw.NEWCOMER, joined_at))
    leave = await gateway.one("GUILD_MEMBER_REMOVE", gw.guild_member_remove(gw.NEWCOMER))

    assert isinstance(join, MemberJoined)
    when = datetime(2024, 4, 18, 12, 30, 0, 250000, tzinfo=UTC)
    assert join.payload.member.id == sid(gw.NEWCOMER_ID)
    assert join.payload.member.display_name == "newcomer_42"
    assert join.payload.at == when
    assert join.payload.channel is None
    assert join.event_id == fast_event_id("member.joined", sid(gw.NEWCOMER_ID), when.isoformat())
    assert isinstance(leave, MemberLeft)
    assert leave.payload.member.id == sid(gw.NEWCOMER_ID)
    assert leave.payload.channel is None
    assert leave.payload.at >= when


async def test_a_member_not_in_the_cache_can_still_leave(gateway: Gateway) -> None:
    stranger = gw.user(gw.snowflake("2018-01-01T00:00:00+00:00"), "quiet_one")
    event = await gateway.one("GUILD_MEMBER_REMOVE", gw.guild_member_remove(stranger))

    assert isinstance(event, MemberLeft)
    assert event.payload.member.name == "quiet_one"


# Order and publishing failures


async def test_events_reach_the_sink_in_gateway_order(gateway: Gateway) -> None:
    created = gw.message_create(message_id(), "v1")
    gateway.feed("MESSAGE_CREATE", created)
    gateway.feed("MESSAGE_UPDATE", gw.message_update(created, "v2", "2024-04-18T12:01:00+00:00"))
    gateway.feed("MESSAGE_UPDATE", gw.message_update(created, "v3", "2024-04-18T12:02:00+00:00"))
    gateway.feed("MESSAGE_DELETE", gw.message_delete(created["id"]))
    events = await gateway.settle()

    assert [event.type for event in events] == [
        "message.ingested",
        "message.edited",
        "message.edited",
        "message.deleted",
    ]
    texts = [event.payload.text for event in events if isinstance(event, MessageEdited)]
    assert texts == ["v2", "v3"]


async def test_a_failed_send_is_retried_without_losing_or_reordering() -> None:
    sink = RecordingSink(failures=2)
    client = await open_gateway(sink)
    gateway = Gateway(client, sink)
    try:
        for n in range(5):
            gateway.feed("MESSAGE_CREATE", gw.message_create(message_id(sequence=n), f"m{n}"))
        events = await gateway.settle()
    finally:
        await client.close()

    assert [event.payload.text for event in events if isinstance(event, MessageIngested)] == [
        f"m{n}" for n in range(5)
    ]
    assert client.stats.retries == 2
    assert client.stats.published == 5
    assert client.stats.dropped == 0


async def test_events_the_broker_never_takes_are_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink(failures=-1)
    client = await open_gateway(sink)
    gateway = Gateway(client, sink)
    caplog.set_level(logging.WARNING, logger="pepite_ingestor.live.discord_gateway")
    try:
        gateway.feed("MESSAGE_CREATE", gw.message_create(message_id(), "lost"))
        await gateway.settle()
    finally:
        await client.close()

    assert sink.calls == FAST_RETRY.attempts
    assert client.stats.dropped == 1
    assert client.stats.published == 0
    (error,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "dropped" in error.getMessage()
    assert error.exc_info is not None
    assert error.__dict__["event_ids"] == [fast_event_id("message.ingested", sid(message_id()), "")]
    assert error.__dict__["dropped"] == 1


async def test_a_payload_that_cannot_be_converted_is_counted_not_fatal(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pepite_ingestor.live.discord_gateway")
    stranger = gw.user(gw.snowflake("2018-01-01T00:00:00+00:00"), "x")
    stranger["username"] = None  # a contract member needs a name
    bad = gw.message_create(message_id(), "ok", author=stranger, member=None)
    gateway.feed("MESSAGE_CREATE", bad)
    gateway.feed("MESSAGE_CREATE", gw.message_create(message_id(sequence=1), "still here"))
    events = await gateway.settle()

    assert [event.payload.text for event in events if isinstance(event, MessageIngested)] == [
        "still here"
    ]
    assert gateway.client.stats.unconvertible == 1
    assert any("could not be converted" in record.getMessage() for record in caplog.records)


# The service's entry point


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


def test_the_gateway_is_off_until_token_and_community_are_set() -> None:
    assert build_discord_gateway(settings(), RecordingSink()) is None
    token_only = settings(discord_bot_token=SecretStr("token"))
    assert build_discord_gateway(token_only, RecordingSink()) is None
    community_only = settings(discord_community_id=COMMUNITY)
    assert build_discord_gateway(community_only, RecordingSink()) is None
    configured = settings(discord_bot_token=SecretStr("token"), discord_community_id=COMMUNITY)
    assert callable(build_discord_gateway(configured, RecordingSink()))
    bad = settings(discord_bot_token=SecretStr("token"), discord_community_id="no:colons")
    with pytest.raises(ValueError, match="invalid community id"):
        build_discord_gateway(bad, RecordingSink())


def test_the_client_asks_only_for_the_intents_it_needs() -> None:
    intents = gateway_intents()
    enabled = {name for name, value in intents if value}
    assert enabled == {"guilds", "members", "guild_messages", "message_content"}


async def test_the_job_closes_the_client_when_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    clients: list[DiscordGatewayClient] = []
    connected = asyncio.Event()

    async def start(self: DiscordGatewayClient, token: str, *, reconnect: bool = True) -> None:
        # Stands in for login + the gateway connection: the part that needs Discord.
        assert token == "secret-token"
        clients.append(self)
        await self.__aenter__()
        await self.setup_hook()
        connected.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(DiscordGatewayClient, "start", start)
    sink = RecordingSink()
    job = build_discord_gateway(
        settings(discord_bot_token=SecretStr("secret-token"), discord_community_id=COMMUNITY), sink
    )
    assert job is not None
    task = asyncio.create_task(job())
    await asyncio.wait_for(connected.wait(), timeout=5)
    (client,) = clients
    # An event already queued when the service stops is still published.
    client._connection.parsers["GUILD_CREATE"](gw.guild_create())
    client._connection.parsers["MESSAGE_CREATE"](gw.message_create(message_id(), "last"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert client.is_closed()
    assert [event.type for event in sink.events] == ["message.ingested"]


# Same message, export or gateway


def dce_channel(**overrides: Any) -> dict[str, Any]:
    channel = {
        "id": gw.GENERAL_ID,
        "type": "GuildTextChat",
        "categoryId": gw.CATEGORY_ID,
        "category": "Community",
        "name": "general",
        "topic": "Say hi 👋",
    }
    channel.update(overrides)
    return channel


def dce_ada() -> dict[str, Any]:
    return dce_user(
        gw.ADA_ID,
        "ada",
        nickname="Ada L.",
        avatarUrl=f"https://cdn.discordapp.com/avatars/{gw.ADA_ID}/{gw.AVATAR_HASH}.png?size=512",
    )


async def test_a_message_from_an_export_and_from_the_gateway_is_one_message(
    gateway: Gateway, write_export: ExportWriter
) -> None:
    native = message_id()
    # DCE writes times in the exporting machine's offset; the gateway writes UTC.
    exported = dce_message(
        native,
        "Bonjour à tous !",
        author=dce_ada(),
        timestamp="2024-04-18T14:00:00+02:00",
        timestampEdited="2024-04-18T14:10:00.123+02:00",
    )
    (from_export,) = iter_discord_export(write_export([exported], dce_channel()), COMMUNITY)
    live = gw.message_create(native, "Bonjour à tous !")
    live["edited_timestamp"] = "2024-04-18T12:10:00.123000+00:00"
    from_gateway = await gateway.one("MESSAGE_CREATE", live)

    assert isinstance(from_export, MessageIngested)
    assert isinstance(from_gateway, MessageIngested)
    assert from_gateway.event_id == from_export.event_id
    assert from_gateway.payload.id == from_export.payload.id
    assert from_gateway.payload.channel == from_export.payload.channel
    assert from_gateway.payload.thread == from_export.payload.thread is None
    assert from_gateway.payload.author.id == from_export.payload.author.id
    assert from_gateway.payload.author.name == from_export.payload.author.name
    assert from_gateway.payload.author.display_name == from_export.payload.author.display_name
    assert from_gateway.payload.created_at == from_export.payload.created_at
    assert from_gateway.payload.edited_at == from_export.payload.edited_at
    assert from_gateway.payload.text == from_export.payload.text


async def test_a_thread_message_from_an_export_and_from_the_gateway_agree(
    gateway: Gateway, write_export: ExportWriter
) -> None:
    native = message_id()
    thread_export = dce_channel(
        id=gw.THREAD_ID,
        type="GuildPublicThread",
        categoryId=gw.GENERAL_ID,
        category="general",
        name="Release 2.0 feedback",
        topic=None,
    )
    exported = dce_message(native, "Retour", author=dce_ada(), timestamp=AT)
    (from_export,) = iter_discord_export(write_export([exported], thread_export), COMMUNITY)
    live = gw.message_create(native, "Retour", channel_id=gw.THREAD_ID)
    from_gateway = await gateway.one("MESSAGE_CREATE", live)

    assert isinstance(from_export, MessageIngested)
    assert isinstance(from_gateway, MessageIngested)
    assert from_gateway.event_id == from_export.event_id
    assert from_gateway.payload.id == from_export.payload.id
    assert from_gateway.payload.thread == from_export.payload.thread
    # The export does not know the parent's category and topic; the gateway does.
    assert from_gateway.payload.channel.id == from_export.payload.channel.id
    assert from_gateway.payload.channel.name == from_export.payload.channel.name
    assert from_gateway.payload.author.id == from_export.payload.author.id


async def test_a_join_from_an_export_and_from_the_gateway_is_one_event(
    gateway: Gateway, write_export: ExportWriter
) -> None:
    native = message_id()
    newcomer = dce_user(gw.NEWCOMER_ID, "newcomer_42")
    exported = dce_message(native, "Joined the server.", type="GuildMemberJoin", author=newcomer)
    (from_export,) = iter_discord_export(write_export([exported], dce_channel()), COMMUNITY)
    live = gw.message_create(native, "", kind=7, author=gw.NEWCOMER, member={"joined_at": AT})
    from_gateway = await gateway.one("MESSAGE_CREATE", live)

    assert isinstance(from_export, MemberJoined)
    assert isinstance(from_gateway, MemberJoined)
    assert from_gateway.event_id == from_export.event_id
    assert from_gateway.payload.member.id == from_export.payload.member.id
    assert from_gateway.payload.channel == from_export.payload.channel
    assert from_gateway.payload.source_id == from_export.payload.source_id


# Through the real broker


async def read_back(
    settings: KafkaSettings, topics: list[str], expected: int
) -> list[tuple[str, bytes, Event]]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        # No group: the reader takes every partition at once, without a group join.
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[str, bytes, Event]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend((r.topic, r.key or b"", decode_event(r.value or b"")) for r in records)
    finally:
        await consumer.stop()
    return found


async def test_gateway_events_reach_the_broker_keyed_by_channel(
    kafka_settings: KafkaSettings,
) -> None:
    raw_topic = kafka_settings.topic_name(Topic.MESSAGES_RAW)
    members_topic = kafka_settings.topic_name(Topic.MEMBERS_EVENTS)
    await ensure_topics(kafka_settings, [raw_topic, members_topic])
    async with EventPublisher(kafka_settings, client_id="discord-gateway-test") as publisher:
        sink = KafkaEventSink(publisher, topic_name=kafka_settings.topic_name)
        client = DiscordGatewayClient(sink=sink, community_id=COMMUNITY, retry=FAST_RETRY)
        await client.__aenter__()
        await client.setup_hook()
        try:
            parse = client._connection.parsers
            parse["GUILD_CREATE"](gw.guild_create())
            created = gw.message_create(message_id(), "v1", channel_id=gw.THREAD_ID)
            parse["MESSAGE_CREATE"](created)
            parse["MESSAGE_UPDATE"](
                gw.message_update(created, "v2 — édité", "2024-04-18T12:05:00+00:00")
            )
            parse["MESSAGE_DELETE"](gw.message_delete(created["id"], gw.THREAD_ID))
            parse["GUILD_MEMBER_ADD"](gw.guild_member_add(gw.NEWCOMER, AT))
            await client.drain()
        finally:
            await client.close()
        assert client.stats.published == 4

    found = await read_back(kafka_settings, [raw_topic, members_topic], expected=4)

    message_key = partition_key(COMMUNITY, gw.GENERAL_ID)
    on_raw = [(key, event) for topic, key, event in found if topic == raw_topic]
    assert [event.type for _, event in on_raw] == [
        "message.ingested",
        "message.edited",
        "message.deleted",
    ]
    assert {key for key, _ in on_raw} == {message_key}
    ids = {event.payload.id for _, event in on_raw if not isinstance(event, MemberJoined)}
    assert ids == {sid(created["id"])}
    (member_record,) = [(key, event) for topic, key, event in found if topic == members_topic]
    key, joined = member_record
    assert key == partition_key(COMMUNITY, "_community")
    assert isinstance(joined, MemberJoined)
    assert joined.payload.member.id == sid(gw.NEWCOMER_ID)
