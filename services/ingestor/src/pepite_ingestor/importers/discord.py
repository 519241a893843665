"""Stream a DiscordChatExporter (DCE) JSON export as Pépite events.

A DCE JSON export is one channel (or thread)::

    {"guild": {...}, "channel": {...}, "dateRange": {...}, "exportedAt": "...",
     "messages": [{...}, ...], "messageCount": N}

Exports reach hundreds of megabytes, so messages are parsed one at a time with
ijson and turned into events as they are read: memory stays flat whatever the
file size. The ``guild`` and ``channel`` header is read first, in a short pass
that stops at ``messages``; DCE always writes it before the messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MemberJoined,
    Mention,
    MessageIngested,
    MessageType,
    Platform,
    ThreadRef,
    stable_id,
)
from pepite_ingestor.importers._jsonstream import (
    BACKEND,
    JSON_ERRORS,
    TrackingReader,
    build_value,
    describe_json_error,
    json_kind,
    open_export,
    skip_value,
)
from pepite_ingestor.importers.common import (
    fast_event_id,
    message_ingested,
    unmodeled,
    validate_community_id,
)
from pepite_ingestor.importers.errors import ExportFormatError, describe_contract_error

__all__ = ["THREAD_CHANNEL_TYPES", "DiscordEvent", "iter_discord_export"]

#: What a Discord export yields.
DiscordEvent = MessageIngested | MemberJoined

_PLATFORM = Platform.DISCORD.value

#: DCE channel types whose export is a thread; their ``category`` is the parent channel.
THREAD_CHANNEL_TYPES = frozenset({"GuildPublicThread", "GuildPrivateThread", "GuildNewsThread"})

#: DCE message types the contracts name; every other type becomes ``SYSTEM``.
_MESSAGE_TYPES: dict[str, MessageType] = {
    "Default": MessageType.DEFAULT,
    "Reply": MessageType.REPLY,
    "ThreadCreated": MessageType.THREAD_STARTER,
    "ChannelPinnedMessage": MessageType.PINNED_NOTICE,
}
_MEMBER_JOIN = "GuildMemberJoin"

#: Same ids as ``deterministic_event_id``, computed faster (see ``fast_event_id``).
_event_id = fast_event_id

# Source fields the contracts model; anything else with a value goes to ``raw``.
_MESSAGE_FIELDS = frozenset(
    {
        "id",
        "type",
        "timestamp",
        "timestampEdited",
        "isPinned",
        "content",
        "author",
        "attachments",
        "reactions",
        "mentions",
        "reference",
    }
)
_USER_FIELDS = frozenset({"id", "name", "nickname", "isBot", "avatarUrl"})
_MENTION_FIELDS = frozenset({"id", "name"})
_ATTACHMENT_FIELDS = frozenset({"id", "url", "fileName", "fileSizeBytes"})
_REACTION_FIELDS = frozenset({"emoji", "count"})
_EMOJI_FIELDS = frozenset({"id", "name"})
# DCE writes this for accounts on Discord's discriminator-less usernames: it says nothing.
_DEFAULT_DISCRIMINATORS = frozenset({"0", "0000"})

# Bounds the user caches (~2 KB an entry) so memory stays flat on huge communities.
_CACHE_SIZE = 4096


def iter_discord_export(path: Path | str, community_id: str) -> Iterator[DiscordEvent]:
    """Read a DCE JSON export and yield one event per message, in file order.

    ``GuildMemberJoin`` system messages become :class:`MemberJoined` events;
    every other message becomes a :class:`MessageIngested`. Event ids are
    derived from the message (and its edit time), so importing the same file
    twice yields the same events.

    The community id and the header are checked before this returns; the
    messages are then read lazily, one at a time, as the iterator is consumed.

    Args:
        path: The ``.json`` file DiscordChatExporter wrote.
        community_id: The Pépite community the messages belong to.

    Returns:
        An iterator of events.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file is missing, not JSON, truncated, not shaped
            like a DCE export, or a message lacks a required field. Raised while
            iterating for problems found in the messages.
    """
    validate_community_id(community_id)
    path = Path(path)
    guild, channel = _read_header(path)
    try:
        converter = _Converter(path, community_id, guild, channel)
    except ValidationError as exc:
        problem = describe_contract_error(exc, within="channel")
        raise ExportFormatError(path, problem, "header") from exc
    return _stream_messages(path, converter)


def _read_header(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the top-level values before ``messages``; check ``messages`` is an array."""
    found: dict[str, Any] = {}
    with open_export(path) as reader:
        events = BACKEND.parse(reader, use_float=True)
        try:
            first = next(events, None)
            if first is None:
                raise ExportFormatError(path, "file is empty")
            if first[1] != "start_map":
                raise ExportFormatError(
                    path,
                    "not a DiscordChatExporter export: the top-level JSON value is "
                    f"{json_kind(first[1])}, not an object",
                )
            for _prefix, event, value in events:
                if event == "end_map":
                    raise ExportFormatError(
                        path, "not a DiscordChatExporter export: no 'messages' array"
                    )
                # Nested values are consumed below, so every key seen here is top-level.
                key = value
                if key == "messages":
                    if "channel" not in found:
                        raise _messages_too_early(path, found)
                    opening = next(events, None)
                    if opening is None or opening[1] != "start_array":
                        kind = "nothing" if opening is None else json_kind(opening[1])
                        raise ExportFormatError(path, f"'messages' is {kind}, not an array")
                    return _header_object(path, found, "guild"), _header_channel(path, found)
                if key in ("guild", "channel"):
                    found[key] = build_value(events)
                else:
                    skip_value(events)
        except JSON_ERRORS as exc:
            position = None if reader.is_empty else reader.error_position(exc)
            raise ExportFormatError(path, describe_json_error(exc, reader), position) from exc
    raise ExportFormatError(path, "not a DiscordChatExporter export: no 'messages' array")


def _messages_too_early(path: Path, found: dict[str, Any]) -> ExportFormatError:
    # Reading on would mean holding every message until the channel shows up;
    # DCE never writes files like that, so ask for a proper file instead.
    if "guild" in found:
        return ExportFormatError(
            path,
            "'messages' comes before 'channel': DiscordChatExporter writes 'guild' and "
            "'channel' first; re-export the channel or move 'channel' before 'messages'",
        )
    return ExportFormatError(
        path,
        "not a DiscordChatExporter export: expected 'guild' and 'channel' before 'messages'",
    )


def _header_object(path: Path, found: dict[str, Any], key: str) -> dict[str, Any]:
    value = found.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExportFormatError(path, f"'{key}' must be an object", "header")
    return value


def _header_channel(path: Path, found: dict[str, Any]) -> dict[str, Any]:
    channel = _header_object(path, found, "channel")
    for field in ("id", "name"):
        if not isinstance(channel.get(field), str | int) or channel.get(field) == "":
            raise ExportFormatError(path, f"missing required field 'channel.{field}'", "header")
    return channel


def _stream_messages(path: Path, converter: _Converter) -> Iterator[DiscordEvent]:
    """Yield the events of every item of ``messages``, reading the file lazily."""
    with open_export(path) as reader:
        number = 0
        message: Any = None
        try:
            for message in BACKEND.items(reader, "messages.item", use_float=True):
                number += 1
                yield converter.convert(message, number)
        except JSON_ERRORS as exc:
            raise _json_error(path, reader, exc, number, message) from exc


def _json_error(
    path: Path, reader: TrackingReader, exc: Exception, number: int, last: Any
) -> ExportFormatError:
    position = reader.error_position(exc)
    if number == 0:
        position += ", before the first message"
    else:
        last_id = last.get("id") if isinstance(last, dict) else None
        after = f"message #{number}" + (f" (id {last_id})" if last_id is not None else "")
        position += f", after {after}"
    return ExportFormatError(path, describe_json_error(exc, reader), position)


def _parse_time(value: str) -> datetime:
    """Parse a DCE timestamp (ISO 8601 with an offset) to an aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        # DCE always writes an offset; guessing one would silently shift times.
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _user_extras(user: dict[str, Any], modeled: frozenset[str]) -> dict[str, Any]:
    extra = unmodeled(user, modeled)
    if extra.get("discriminator") in _DEFAULT_DISCRIMINATORS:
        del extra["discriminator"]
    return extra


def _native_id(value: Any, field: str) -> str:
    # Snowflakes are strings in DCE; a number from another tool is accepted as-is.
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _FieldError(field, "must be a non-empty string id")


class _FieldError(ValueError):
    """A source field is missing or has the wrong shape."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}' {problem}")
        self.field = field


class _Converter:
    """Turns DCE message objects of one export into events."""

    def __init__(
        self, path: Path, community_id: str, guild: dict[str, Any], channel: dict[str, Any]
    ) -> None:
        self.path = path
        self.community_id = community_id
        guild_id = guild.get("id")
        self.guild_id = str(guild_id) if guild_id not in (None, "") else None
        self.channel_native_id = str(channel["id"])
        self.channel, self.thread = self._channel_refs(channel)
        # Keyed by native user id; the source object is kept to detect changes.
        self._authors: dict[Any, tuple[dict[str, Any], Member, dict[str, Any]]] = {}
        self._mentioned: dict[Any, tuple[dict[str, Any], Mention, dict[str, Any]]] = {}

    @staticmethod
    def _channel_refs(channel: dict[str, Any]) -> tuple[ChannelRef, ThreadRef | None]:
        channel_id = str(channel["id"])
        name = str(channel["name"])
        if channel.get("type") in THREAD_CHANNEL_TYPES:
            # For threads DCE writes the *parent channel* in categoryId/category
            # (its schema predates threads). Messages are filed under that parent
            # so a channel's numbers include its threads, and the thread itself
            # goes to ``thread``. The parent's own category and topic are not in
            # the export, so they stay unknown.
            thread = ThreadRef(id=channel_id, name=name)
            parent_id = channel.get("categoryId")
            parent_name = channel.get("category")
            if parent_id and parent_name:
                return ChannelRef(id=str(parent_id), name=str(parent_name)), thread
            return ChannelRef(id=channel_id, name=name), thread
        ref = ChannelRef(
            id=channel_id,
            name=name,
            category=channel.get("category") or None,
            topic=channel.get("topic") or None,
        )
        return ref, None

    def _stable(self, native_id: str) -> str:
        return stable_id(_PLATFORM, self.community_id, native_id)

    def _author(self, user: Any) -> tuple[Member, dict[str, Any]]:
        """The author as a Member, and its fields the contracts do not model.

        Authors repeat from message to message: a repeat costs one dict
        comparison instead of a validation.
        """
        cached = self._authors.get(user["id"])
        if cached is not None and cached[0] == user:
            return cached[1], cached[2]
        native_id = _native_id(user["id"], "author.id")
        name = user["name"]
        if not isinstance(name, str):
            raise _FieldError("author.name", "must be a string")
        member = Member.model_validate(
            {
                "id": self._stable(native_id),
                "native_id": native_id,
                "name": name,
                "display_name": user.get("nickname"),
                "is_bot": user.get("isBot") or False,
                "avatar_url": user.get("avatarUrl"),
            }
        )
        extras = _user_extras(user, _USER_FIELDS)
        if len(self._authors) >= _CACHE_SIZE:
            self._authors.clear()
        self._authors[user["id"]] = (user, member, extras)
        return member, extras

    def _mention(self, user: Any, index: int) -> tuple[Mention, dict[str, Any]]:
        """A mentioned user as a Mention, and its other fields; cached like authors."""
        cached = self._mentioned.get(user.get("id"))
        if cached is not None and cached[0] == user:
            return cached[1], cached[2]
        native_id = _native_id(user.get("id"), f"mentions[{index}].id")
        name = user.get("name")
        if not isinstance(name, str):
            raise _FieldError(f"mentions[{index}].name", "must be a string")
        mention = Mention(member_id=self._stable(native_id), name=name)
        extras = _user_extras(user, _MENTION_FIELDS)
        if extras.get("nickname") == name:
            del extras["nickname"]
        if len(self._mentioned) >= _CACHE_SIZE:
            self._mentioned.clear()
        self._mentioned[user["id"]] = (user, mention, extras)
        return mention, extras

    def convert(self, message: Any, number: int) -> DiscordEvent:
        """Turn one DCE message into an event.

        Args:
            message: The message object as parsed from the file.
            number: Its position in ``messages``, counted from 1, for errors.

        Returns:
            A ``MemberJoined`` for ``GuildMemberJoin`` messages, else a ``MessageIngested``.

        Raises:
            ExportFormatError: the message lacks a required field or has a bad value.
        """
        try:
            return self._convert(message)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # ValueError covers pydantic's ValidationError and bad timestamps.
            raise self._explain(message, number, exc) from exc

    def _convert(self, message: dict[str, Any]) -> DiscordEvent:
        native_id = _native_id(message["id"], "id")
        sid = self._stable(native_id)
        created_at = _parse_time(message["timestamp"])
        member, author_extra = self._author(message["author"])
        kind = message.get("type") or "Default"

        if kind == _MEMBER_JOIN:
            return MemberJoined.model_validate(
                {
                    "event_id": _event_id("member.joined", sid),
                    "occurred_at": created_at,
                    "community_id": self.community_id,
                    "payload": {
                        "member": member,
                        "platform": Platform.DISCORD,
                        "community_id": self.community_id,
                        "at": created_at,
                        "channel": self.channel,
                        "source_id": sid,
                    },
                }
            )

        raw = unmodeled(message, _MESSAGE_FIELDS)
        message_type = _MESSAGE_TYPES.get(kind)
        if message_type is None:
            message_type = MessageType.SYSTEM
            raw["type"] = kind
        if author_extra:
            raw["author"] = dict(author_extra)

        edited = message.get("timestampEdited")
        edited_at = _parse_time(edited) if edited else None

        payload: dict[str, Any] = {
            "id": sid,
            "platform": Platform.DISCORD,
            "community_id": self.community_id,
            "native_id": native_id,
            "channel": self.channel,
            "thread": self.thread,
            "reply_to_id": self._reply_to(message.get("reference"), raw),
            "author": member,
            "text": message.get("content") or "",
            "type": message_type,
            "created_at": created_at,
            "edited_at": edited_at,
            "is_pinned": message.get("isPinned") or False,
            "raw": raw,
        }
        attachments = message.get("attachments")
        if attachments:
            payload["attachments"] = self._attachments(attachments, raw)
        reactions = message.get("reactions")
        if reactions:
            payload["reactions"] = self._reactions(reactions, raw)
        mentions = message.get("mentions")
        if mentions:
            payload["mentions"] = self._mentions(mentions, raw)

        return message_ingested(
            self.community_id, payload, created_at=created_at, edited_at=edited_at
        )

    def _reply_to(self, reference: Any, raw: dict[str, Any]) -> str | None:
        """The stable id of the replied-to message; what it cannot say goes to ``raw``."""
        if not reference:
            return None
        parent = reference.get("messageId")
        guild_id = reference.get("guildId")
        # A forward is a copy, not a reply; another guild's message has no
        # stable id in this community.
        is_reply = (
            bool(parent)
            and (reference.get("type") or "Default") == "Default"
            and (not guild_id or self.guild_id is None or str(guild_id) == self.guild_id)
        )
        # Keep what reply_to_id and the export's own guild and channel do not say,
        # e.g. the channel of a parent posted elsewhere, or a crosspost's origin.
        leftover = {
            key: value
            for key, value in reference.items()
            if value
            and not (key == "messageId" and is_reply)
            and not (key == "type" and value == "Default")
            and not (key == "guildId" and str(value) == self.guild_id)
            and not (key == "channelId" and str(value) == self.channel_native_id)
        }
        if leftover:
            raw["reference"] = leftover
        if not is_reply:
            return None
        return self._stable(_native_id(parent, "reference.messageId"))

    def _attachments(self, attachments: list[Any], raw: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        extras: list[dict[str, Any]] = []
        for item in attachments:
            attachment_id = item.get("id")
            out.append(
                {
                    "id": str(attachment_id) if attachment_id not in (None, "") else None,
                    "url": item.get("url"),
                    "filename": item.get("fileName"),
                    "size_bytes": item.get("fileSizeBytes"),
                }
            )
            extras.append(unmodeled(item, _ATTACHMENT_FIELDS))
        if any(extras):
            # Same order as payload.attachments.
            raw["attachments"] = extras
        return out

    def _reactions(self, reactions: list[Any], raw: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        extras: list[dict[str, Any]] = []
        for item in reactions:
            emoji = item["emoji"]
            emoji_id = emoji.get("id")
            out.append(
                {
                    # DCE writes "<unknown emoji>" when Discord omits the name.
                    "emoji": emoji.get("name") or "<unknown emoji>",
                    # Standard (unicode) emoji have an empty id in DCE.
                    "emoji_id": str(emoji_id) if emoji_id not in (None, "") else None,
                    "count": item["count"],
                }
            )
            extra = unmodeled(item, _REACTION_FIELDS)
            emoji_extra = unmodeled(emoji, _EMOJI_FIELDS)
            if emoji_extra:
                extra["emoji"] = emoji_extra
            extras.append(extra)
        if any(extras):
            # Same order as payload.reactions (who reacted, emoji code and image).
            raw["reactions"] = extras
        return out

    def _mentions(self, mentions: list[Any], raw: dict[str, Any]) -> list[Mention]:
        out: list[Mention] = []
        extras: list[dict[str, Any]] = []
        for index, item in enumerate(mentions):
            mention, extra = self._mention(item, index)
            out.append(mention)
            extras.append(extra)
        if any(extras):
            # Same order as payload.mentions.
            raw["mentions"] = [dict(extra) for extra in extras]
        return out

    def _explain(self, message: Any, number: int, exc: Exception) -> ExportFormatError:
        """Build the error for a message that could not be converted."""
        position = f"message #{number}"
        if not isinstance(message, dict):
            return ExportFormatError(self.path, "message is not a JSON object", position)
        message_id = message.get("id")
        if isinstance(message_id, str | int) and not isinstance(message_id, bool):
            position += f" (id {message_id})"
        return ExportFormatError(self.path, _diagnose(message, exc), position)


def _check_required(message: dict[str, Any]) -> str | None:
    for field in ("id", "timestamp", "author"):
        if message.get(field) in (None, ""):
            return f"missing required field '{field}'"
    author = message["author"]
    if not isinstance(author, dict):
        return "field 'author' must be an object"
    for field in ("id", "name"):
        if author.get(field) is None:
            return f"missing required field 'author.{field}'"
    return None


def _check_times(message: dict[str, Any]) -> str | None:
    for field in ("timestamp", "timestampEdited"):
        value = message.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"field '{field}' must be an ISO 8601 string"
        try:
            _parse_time(value)
        except ValueError as exc:
            return f"field '{field}' is not a valid timestamp ({exc})"
    return None


def _check_shapes(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        return "field 'content' must be a string"
    for field in ("attachments", "reactions", "mentions"):
        value = message.get(field)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(item, dict) for item in value)
        ):
            return f"field '{field}' must be a list of objects"
    for index, reaction in enumerate(message.get("reactions") or ()):
        if not isinstance(reaction.get("emoji"), dict):
            return f"field 'reactions[{index}].emoji' must be an object"
        if "count" not in reaction:
            return f"missing required field 'reactions[{index}].count'"
    reference = message.get("reference")
    if reference is not None and not isinstance(reference, dict):
        return "field 'reference' must be an object"
    return None


def _diagnose(message: dict[str, Any], exc: Exception) -> str:
    """Name the source field at fault, for an error a person can act on."""
    problem = _check_required(message)
    if problem is None and isinstance(exc, _FieldError):
        problem = str(exc)
    problem = problem or _check_times(message) or _check_shapes(message)
    if problem is not None:
        return problem
    if isinstance(exc, ValidationError):
        return describe_contract_error(exc)
    return f"cannot read message ({type(exc).__name__}: {exc})"
