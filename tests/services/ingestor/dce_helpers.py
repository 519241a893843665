"""Builders for DiscordChatExporter-shaped test data, and where the fixture files live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "discord"

GUILD_ID = "900000000000000001"
CHANNEL_ID = "900000000000000010"

#: Writes a DCE-shaped export to a temporary file and returns its path.
ExportWriter = Callable[..., Path]


def dce_user(user_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A user object as DiscordChatExporter writes it (author or mention)."""
    user: dict[str, Any] = {
        "id": user_id,
        "name": name,
        "discriminator": "0000",
        "nickname": name,
        "color": None,
        "isBot": False,
        "roles": [],
        "avatarUrl": f"https://cdn.discordapp.com/avatars/{user_id}/abc.png?size=512",
    }
    user.update(overrides)
    return user


def dce_message(message_id: str, content: str = "hello", **overrides: Any) -> dict[str, Any]:
    """A message object as DiscordChatExporter writes it, with empty lists."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "Default",
        "timestamp": "2024-04-18T12:00:00+00:00",
        "timestampEdited": None,
        "callEndedTimestamp": None,
        "isPinned": False,
        "content": content,
        "author": dce_user("800000000000000001", "ada"),
        "attachments": [],
        "embeds": [],
        "stickers": [],
        "reactions": [],
        "mentions": [],
        "inlineEmojis": [],
    }
    message.update(overrides)
    return message


def dce_export(
    messages: list[dict[str, Any]], channel: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A whole export document around ``messages``."""
    return {
        "guild": {"id": GUILD_ID, "name": "Test guild", "iconUrl": None},
        "channel": channel
        or {
            "id": CHANNEL_ID,
            "type": "GuildTextChat",
            "categoryId": None,
            "category": None,
            "name": "general",
            "topic": None,
        },
        "dateRange": {"after": None, "before": None},
        "exportedAt": "2024-06-03T00:00:00+00:00",
        "messages": messages,
        "messageCount": len(messages),
    }
