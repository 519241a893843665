"""Discord gateway dispatch payloads (the ``d`` of each event), shaped as the gateway sends them.

Field names, nesting and value types follow Discord's gateway documentation for API v10
(GUILD_CREATE, MESSAGE_CREATE, MESSAGE_UPDATE, MESSAGE_DELETE(_BULK), GUILD_MEMBER_ADD
and _REMOVE), including the fields discord.py ignores, so a test feeds discord.py's
parsers what the gateway would. Ids are real snowflakes: a message id encodes its
creation time, as on Discord, so ``message.created_at`` matches ``timestamp``.
Every builder returns a fresh dict, since parsers may keep or change what they get.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: Milliseconds since the Unix epoch of Discord's epoch (2015-01-01T00:00:00Z).
DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake(at: str, sequence: int = 0) -> str:
    """The id Discord would give an object created at ``at`` (ISO 8601)."""
    ms = int(datetime.fromisoformat(at).timestamp() * 1000)
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | sequence)


def timestamp_of(object_id: str) -> str:
    """The creation time a snowflake encodes, as the gateway writes timestamps."""
    ms = (int(object_id) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


GUILD_ID = snowflake("2021-03-01T09:00:00+00:00")
EVERYONE_ROLE_ID = GUILD_ID
MOD_ROLE_ID = snowflake("2021-03-01T09:05:00+00:00")
CATEGORY_ID = snowflake("2021-03-01T09:10:00+00:00")
GENERAL_ID = snowflake("2021-03-01T09:11:00+00:00")
HELP_ID = snowflake("2021-03-01T09:12:00+00:00")
VOICE_ID = snowflake("2021-03-01T09:13:00+00:00")
FORUM_ID = snowflake("2022-10-01T09:00:00+00:00")
THREAD_ID = snowflake("2024-04-18T11:00:00+00:00")
FORUM_POST_ID = snowflake("2024-04-17T08:00:00+00:00")
CUSTOM_EMOJI_ID = snowflake("2022-01-05T10:00:00+00:00")
STICKER_ID = snowflake("2022-02-05T10:00:00+00:00")

BOT_ID = snowflake("2023-01-01T00:00:00+00:00")
ADA_ID = snowflake("2019-05-01T10:00:00+00:00")
BOB_ID = snowflake("2020-06-01T10:00:00+00:00")
HELPER_BOT_ID = snowflake("2021-07-01T10:00:00+00:00")
NEWCOMER_ID = snowflake("2024-04-18T09:00:00+00:00")
AVATAR_HASH = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def user(
    user_id: str,
    username: str,
    *,
    global_name: str | None = None,
    avatar: str | None = AVATAR_HASH,
    bot: bool = False,
) -> dict[str, Any]:
    """A user object as the gateway sends it (accounts on discriminator-less usernames)."""
    data: dict[str, Any] = {
        "id": user_id,
        "username": username,
        "global_name": global_name,
        "discriminator": "0",
        "avatar": avatar,
        "avatar_decoration_data": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "clan": None,
        "primary_guild": None,
        "collectibles": None,
        "display_name_styles": None,
    }
    if bot:
        data["bot"] = True
    return data


ADA = user(ADA_ID, "ada", global_name="Ada Lovelace")
BOB = user(BOB_ID, "bob.builder", global_name="Bob")
HELPER_BOT = user(HELPER_BOT_ID, "HelperBot", avatar=None, bot=True)
NEWCOMER = user(NEWCOMER_ID, "newcomer_42", global_name=None, avatar=None)
SELF_BOT = user(BOT_ID, "pepite", bot=True)


def partial_member(
    *, nick: str | None = None, roles: list[str] | None = None, joined_at: str
) -> dict[str, Any]:
    """The ``member`` object of a message: a guild member without its ``user``."""
    return {
        "nick": nick,
        "avatar": None,
        "banner": None,
        "roles": roles or [],
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "unusual_dm_activity_until": None,
    }


def guild_member(user_data: dict[str, Any], **member: Any) -> dict[str, Any]:
    """A guild member object with its user."""
    return {**partial_member(**member), "user": dict(user_data)}


ADA_MEMBER = {"nick": "Ada L.", "roles": [MOD_ROLE_ID], "joined_at": "2021-03-02T10:00:00+00:00"}
BOB_MEMBER = {"joined_at": "2022-08-15T18:30:00.123000+00:00"}
HELPER_MEMBER = {"joined_at": "2021-07-01T10:05:00+00:00"}


def _role(role_id: str, name: str, position: int, color: int, permissions: str) -> dict[str, Any]:
    return {
        "id": role_id,
        "name": name,
        "description": None,
        "permissions": permissions,
        "position": position,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "hoist": position > 0,
        "managed": False,
        "mentionable": position > 0,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def _channel(
    channel_id: str,
    name: str,
    kind: int,
    position: int,
    *,
    parent_id: str | None = None,
    topic: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": channel_id,
        "type": kind,
        "guild_id": GUILD_ID,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": parent_id,
        "flags": 0,
    }
    if kind in (0, 5, 15):
        data.update(
            topic=topic,
            nsfw=False,
            rate_limit_per_user=0,
            last_message_id=None,
            default_thread_rate_limit_per_user=0,
        )
    if kind == 2:
        data.update(bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None)
    if kind == 15:
        data.update(
            available_tags=[
                {
                    "id": snowflake("2022-10-01T09:01:00+00:00"),
                    "name": "idea",
                    "moderated": False,
                    "emoji_id": None,
                    "emoji_name": "💡",
                }
            ],
            default_reaction_emoji={"emoji_id": None, "emoji_name": "👍"},
            default_sort_order=None,
            default_forum_layout=1,
        )
    return data


def _thread(
    thread_id: str, name: str, parent_id: str, owner_id: str, *, kind: int = 11
) -> dict[str, Any]:
    return {
        "id": thread_id,
        "type": kind,
        "guild_id": GUILD_ID,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 3,
        "member_count": 2,
        "total_message_sent": 3,
        "flags": 0,
        "applied_tags": [],
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 4320,
            "archive_timestamp": timestamp_of(thread_id),
            "locked": False,
            "create_timestamp": timestamp_of(thread_id),
            "invitable": True,
        },
    }


def guild_create() -> dict[str, Any]:
    """GUILD_CREATE for the test guild: roles, channels, threads, members, emoji, stickers."""
    return {
        "id": GUILD_ID,
        "name": "Pépite Test Community",
        "icon": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
        "description": "A place to build things together",
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "owner_id": ADA_ID,
        "region": "deprecated",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "system_channel_id": GENERAL_ID,
        "system_channel_flags": 0,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "mfa_level": 0,
        "nsfw_level": 0,
        "nsfw": False,
        "features": ["COMMUNITY", "NEWS", "THREADS_ENABLED"],
        "premium_tier": 1,
        "premium_subscription_count": 3,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "fr",
        "rules_channel_id": HELP_ID,
        "public_updates_channel_id": HELP_ID,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "application_id": None,
        "hub_type": None,
        "incidents_data": None,
        "latest_onboarding_question_id": None,
        "home_header": None,
        "version": 1713441600000,
        "lazy": True,
        "large": False,
        "unavailable": False,
        "joined_at": "2023-01-02T12:00:00.000000+00:00",
        "member_count": 4,
        "roles": [
            _role(EVERYONE_ROLE_ID, "@everyone", 0, 0, "2222085186637376"),
            _role(MOD_ROLE_ID, "Moderators", 1, 0x2ECC71, "1099780063233"),
        ],
        "emojis": [
            {
                "id": CUSTOM_EMOJI_ID,
                "name": "pepite",
                "roles": [],
                "require_colons": True,
                "managed": False,
                "animated": False,
                "available": True,
            }
        ],
        "stickers": [
            {
                "id": STICKER_ID,
                "name": "wave",
                "tags": "wave",
                "type": 2,
                "format_type": 1,
                "description": "hello!",
                "asset": "",
                "available": True,
                "guild_id": GUILD_ID,
            }
        ],
        "channels": [
            _channel(CATEGORY_ID, "Community", 4, 0),
            _channel(GENERAL_ID, "general", 0, 1, parent_id=CATEGORY_ID, topic="Say hi 👋"),
            _channel(HELP_ID, "help", 0, 2, parent_id=CATEGORY_ID),
            _channel(VOICE_ID, "Lounge", 2, 3, parent_id=CATEGORY_ID),
            _channel(FORUM_ID, "ideas", 15, 4, topic="One idea per post"),
        ],
        "threads": [
            _thread(THREAD_ID, "Release 2.0 feedback", GENERAL_ID, ADA_ID),
            _thread(FORUM_POST_ID, "Dark mode", FORUM_ID, BOB_ID),
        ],
        "members": [
            guild_member(ADA, **ADA_MEMBER),
            guild_member(BOB, **BOB_MEMBER),
            guild_member(HELPER_BOT, **HELPER_MEMBER),
            guild_member(SELF_BOT, joined_at="2023-01-02T12:00:00+00:00"),
        ],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "embedded_activities": [],
        "activity_instances": [],
        "application_command_counts": {},
    }


def _mention(user_data: dict[str, Any], member: dict[str, Any] | None) -> dict[str, Any]:
    data = dict(user_data)
    if member is not None:
        data["member"] = partial_member(**member)
    return data


def message_create(
    message_id: str,
    content: str,
    *,
    channel_id: str = GENERAL_ID,
    author: dict[str, Any] = ADA,
    member: dict[str, Any] | None = ADA_MEMBER,
    guild_id: str | None = GUILD_ID,
    kind: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    """MESSAGE_CREATE for a guild message; ``fields`` override or add message fields."""
    data: dict[str, Any] = {
        "id": message_id,
        "channel_id": channel_id,
        "author": dict(author),
        "content": content,
        "timestamp": timestamp_of(message_id),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": False,
        "type": kind,
        "flags": 0,
        "nonce": str(int(message_id) + 7),
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
        if member is not None:
            data["member"] = partial_member(**member)
    mentions = fields.pop("mentions", None)
    if mentions is not None:
        data["mentions"] = [_mention(user_data, extra) for user_data, extra in mentions]
    data.update(fields)
    return data


def attachment(
    attachment_id: str, filename: str, size: int, content_type: str, **fields: Any
) -> dict[str, Any]:
    """An attachment object; images get ``width`` and ``height`` through ``fields``."""
    channel = GENERAL_ID
    url = f"https://cdn.discordapp.com/attachments/{channel}/{attachment_id}/{filename}"
    query = "?ex=6630a1b2&is=662f5032&hm=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978&"
    data = {
        "id": attachment_id,
        "filename": filename,
        "size": size,
        "url": url + query,
        "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net") + query,
        "content_type": content_type,
        "content_scan_version": 2,
        "placeholder": None,
        "placeholder_version": 1,
    }
    data.update(fields)
    return data


def rich_message(message_id: str) -> dict[str, Any]:
    """A message with every kind of attached thing a community message has."""
    return message_create(
        message_id,
        f"<@{BOB_ID}> <@&{MOD_ROLE_ID}> voici les captures, et le <#{HELP_ID}> :pepite:",
        mentions=[(BOB, BOB_MEMBER)],
        mention_roles=[MOD_ROLE_ID],
        attachments=[
            attachment(
                snowflake(timestamp_of(message_id), 1),
                "écran 1.png",
                482_113,
                "image/png",
                width=1920,
                height=1080,
                description="Settings page, dark mode",
            ),
            attachment(
                snowflake(timestamp_of(message_id), 2),
                "SPOILER_logs.txt",
                2_048,
                "text/plain; charset=utf-8",
                flags=0,
            ),
        ],
        embeds=[
            {
                "type": "rich",
                "title": "Pépite 2.0 release notes",
                "description": "Dark mode, faster imports, French digests.",
                "url": "https://example.org/releases/2.0",
                "color": 0xF1C40F,
                "timestamp": "2024-04-18T10:00:00+00:00",
                "fields": [{"name": "Download", "value": "[here](https://example.org)"}],
                "footer": {"text": "example.org"},
                "content_scan_version": 2,
            }
        ],
        sticker_items=[{"id": STICKER_ID, "name": "wave", "format_type": 1}],
        reactions=[
            {
                "emoji": {"id": None, "name": "🎉"},
                "count": 5,
                "count_details": {"burst": 0, "normal": 5},
                "burst_colors": [],
                "me_burst": False,
                "burst_me": False,
                "me": False,
                "burst_count": 0,
            },
            {
                "emoji": {"id": CUSTOM_EMOJI_ID, "name": "pepite", "animated": False},
                "count": 3,
                "count_details": {"burst": 1, "normal": 2},
                "burst_colors": ["#f1c40f"],
                "me_burst": False,
                "burst_me": False,
                "me": False,
                "burst_count": 1,
            },
        ],
        flags=0,
    )


def reply(message_id: str, parent: dict[str, Any], content: str, **fields: Any) -> dict[str, Any]:
    """MESSAGE_CREATE of a reply, with the parent inlined as ``referenced_message``."""
    return message_create(
        message_id,
        content,
        author=BOB,
        member=BOB_MEMBER,
        kind=19,
        mentions=[(ADA, ADA_MEMBER)],
        message_reference={
            "type": 0,
            "message_id": parent["id"],
            "channel_id": parent["channel_id"],
            "guild_id": GUILD_ID,
        },
        referenced_message={
            key: value
            for key, value in parent.items()
            if key not in ("guild_id", "member", "nonce")
        },
        **fields,
    )


def forward(message_id: str, original: dict[str, Any]) -> dict[str, Any]:
    """MESSAGE_CREATE of a forward: a reference of type 1 and a snapshot of the original."""
    return message_create(
        message_id,
        "",
        author=BOB,
        member=BOB_MEMBER,
        message_reference={
            "type": 1,
            "message_id": original["id"],
            "channel_id": original["channel_id"],
            "guild_id": snowflake("2020-01-01T00:00:00+00:00"),
        },
        message_snapshots=[
            {
                "message": {
                    "type": 0,
                    "content": original["content"],
                    "embeds": [],
                    "attachments": [],
                    "timestamp": original["timestamp"],
                    "edited_timestamp": None,
                    "flags": 0,
                    "mentions": [],
                    "mention_roles": [],
                    "components": [],
                }
            }
        ],
        flags=16384,
    )


def bot_message(message_id: str, content: str) -> dict[str, Any]:
    """MESSAGE_CREATE from a bot: an embed and a button row."""
    return message_create(
        message_id,
        content,
        author=HELPER_BOT,
        member=HELPER_MEMBER,
        application_id=HELPER_BOT_ID,
        components=[
            {
                "type": 1,
                "id": 1,
                "components": [
                    {
                        "type": 2,
                        "id": 2,
                        "style": 5,
                        "label": "Read the docs",
                        "url": "https://example.org/docs",
                    }
                ],
            }
        ],
    )


def poll_message(message_id: str) -> dict[str, Any]:
    """MESSAGE_CREATE of a poll, with the votes so far."""
    return message_create(
        message_id,
        "",
        poll={
            "question": {"text": "Quelle version utilisez-vous ?"},
            "answers": [
                {"answer_id": 1, "poll_media": {"text": "22.04 LTS"}},
                {"answer_id": 2, "poll_media": {"text": "24.04 LTS", "emoji": {"name": "🐧"}}},
            ],
            "expiry": "2024-04-19T12:00:00.000000+00:00",
            "allow_multiselect": False,
            "layout_type": 1,
            "results": {
                "is_finalized": False,
                "answer_counts": [
                    {"id": 1, "count": 4, "me_voted": False},
                    {"id": 2, "count": 9, "me_voted": False},
                ],
            },
        },
    )


def command_reply(message_id: str, invoker: dict[str, Any], content: str) -> dict[str, Any]:
    """MESSAGE_CREATE of a bot's answer to a member's slash command."""
    return message_create(
        message_id,
        content,
        author=HELPER_BOT,
        member=HELPER_MEMBER,
        kind=20,
        application_id=HELPER_BOT_ID,
        webhook_id=HELPER_BOT_ID,
        interaction_metadata={
            "id": snowflake(timestamp_of(message_id), 9),
            "type": 2,
            "user": dict(invoker),
            "authorizing_integration_owners": {"0": GUILD_ID},
            "name": "docs",
            "command_type": 1,
        },
    )


def message_update(message: dict[str, Any], content: str, edited_at: str) -> dict[str, Any]:
    """A full MESSAGE_UPDATE: the whole message after its author edited it."""
    data = dict(message)
    data.pop("nonce", None)
    data.update(content=content, edited_timestamp=edited_at)
    return data


def partial_message_update(
    message_id: str,
    content: str,
    edited_at: str | None,
    *,
    channel_id: str = GENERAL_ID,
    **fields: Any,
) -> dict[str, Any]:
    """A partial MESSAGE_UPDATE: ids and what changed, no author.

    The gateway used to send updates this way; discord.py still parses them as long as
    ``type`` and ``content`` are there.
    """
    data: dict[str, Any] = {
        "id": message_id,
        "channel_id": channel_id,
        "guild_id": GUILD_ID,
        "type": 0,
        "content": content,
        "edited_timestamp": edited_at,
    }
    data.update(fields)
    return data


def message_delete(message_id: str, channel_id: str = GENERAL_ID) -> dict[str, Any]:
    """MESSAGE_DELETE."""
    return {"id": message_id, "channel_id": channel_id, "guild_id": GUILD_ID}


def message_delete_bulk(message_ids: list[str], channel_id: str = GENERAL_ID) -> dict[str, Any]:
    """MESSAGE_DELETE_BULK."""
    return {"ids": list(message_ids), "channel_id": channel_id, "guild_id": GUILD_ID}


def guild_member_add(user_data: dict[str, Any], joined_at: str) -> dict[str, Any]:
    """GUILD_MEMBER_ADD: a member object with its user, and the guild id."""
    return {**guild_member(user_data, joined_at=joined_at), "guild_id": GUILD_ID}


def guild_member_remove(user_data: dict[str, Any]) -> dict[str, Any]:
    """GUILD_MEMBER_REMOVE: the user and the guild id."""
    return {"guild_id": GUILD_ID, "user": dict(user_data)}


def direct_message(message_id: str, content: str) -> dict[str, Any]:
    """MESSAGE_CREATE of a direct message to the bot: no guild."""
    return message_create(
        message_id,
        content,
        channel_id=snowflake("2024-01-01T00:00:00+00:00"),
        guild_id=None,
        member=None,
    )
