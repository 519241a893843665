"""Read Slack workspace exports, and convert Slack message objects, as Pépite events.

A Slack export (workspace settings, "Import/Export Data") is a zip, often
unzipped by hand before it reaches us::

    users.json          every member: id, name, profile (display name, avatar...)
    channels.json       public channels: id, name, topic, purpose, members...
    groups.json         private channels (optional), same shape
    mpims.json          group direct messages (optional), same shape
    dms.json            direct messages (optional): id and members, no name
    integration_logs.json, canvases.json...   (optional, not messages: ignored)
    general/            one folder per conversation, named after it (a DM: its id)
        2024-01-15.json     one JSON array of message objects per day (UTC)

Both the zip and the folder are read in place: the small metadata files are
loaded whole, then day files are read one at a time, so memory stays flat
whatever the size of the export. A zip's members are read without extracting.

:class:`SlackConverter` turns one Slack message object into an event. The
Events API endpoint (:mod:`pepite_ingestor.live.slack_events`) uses it too, so a
message imported from an export and the same message received live become the
same event, with the same stable id.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MemberJoined,
    MemberLeft,
    Mention,
    MessageDeleted,
    MessageEdited,
    MessageIngested,
    MessageType,
    Platform,
)
from pepite_ingestor.importers._jsonstream import (
    BACKEND,
    JSON_ERRORS,
    TrackingReader,
    describe_json_error,
)
from pepite_ingestor.importers.common import (
    ImportedEvent,
    fast_event_id,
    message_ingested,
    unmodeled,
    validate_community_id,
)
from pepite_ingestor.importers.errors import ExportFormatError, describe_contract_error

__all__ = [
    "SlackConverter",
    "SlackShapeError",
    "diagnose_message",
    "iter_slack_export",
    "parse_slack_ts",
    "slack_channel",
    "slack_export_channels",
    "sniff_slack",
]

_PLATFORM = Platform.SLACK.value

#: Same ids as ``deterministic_event_id``, computed faster (see ``fast_event_id``).
_event_id = fast_event_id

#: Metadata files that list conversations, and the field their folders are named after.
_CONVERSATION_FILES = (
    ("channels.json", "name"),
    ("groups.json", "name"),
    ("mpims.json", "name"),
    ("dms.json", "id"),
)
_USERS_FILE = "users.json"
_METADATA_FILES = frozenset({_USERS_FILE, *(name for name, _ in _CONVERSATION_FILES)})

_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.json")
#: ``<@U123>`` or ``<@U123|name>``: how Slack writes a member mention in ``text``.
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")

#: Subtypes that carry what someone wrote (rather than a notice Slack wrote for them).
_CONTENT_SUBTYPES = frozenset(
    {
        "bot_message",
        "me_message",
        "file_share",
        "thread_broadcast",
        "reply_broadcast",
        "slackbot_response",
        "file_comment",
        "file_mention",
        "huddle_thread",
    }
)
_JOIN_SUBTYPES = frozenset({"channel_join", "group_join"})
_LEAVE_SUBTYPES = frozenset({"channel_leave", "group_leave"})
#: A deleted thread parent: Slack keeps a placeholder so the replies still hang off something.
_TOMBSTONE = "tombstone"
_CHANGED = "message_changed"
_DELETED = "message_deleted"
#: Sent live when a thread gets a reply; the reply itself arrives as its own message event.
_REPLIED = "message_replied"
_NOTICE_TYPES = {"pinned_item": MessageType.PINNED_NOTICE}
# Enum members as plain names: ``MessageType.DEFAULT`` is a Python-level descriptor call.
_DEFAULT = MessageType.DEFAULT
_REPLY = MessageType.REPLY
_THREAD_STARTER = MessageType.THREAD_STARTER
_SYSTEM = MessageType.SYSTEM

#: Who Slack's own notices are attributed to when a message names no author.
SLACKBOT_ID = "USLACKBOT"

# Source fields the contracts model; anything else with a value goes to ``raw``.
# ``channel`` and ``event_ts`` only exist in live events (the channel is in ChannelRef,
# ``event_ts`` repeats ``ts``).
_MESSAGE_FIELDS = frozenset(
    {
        "type",
        "ts",
        "user",
        "text",
        "thread_ts",
        "edited",
        "reactions",
        "files",
        "pinned_to",
        "user_profile",
        "bot_profile",
        "channel",
        "event_ts",
    }
)
_TOMBSTONE_FIELDS = frozenset({"type", "ts", "user", "text", "channel", "event_ts"})
_MEMBERSHIP_FIELDS = frozenset({"type", "ts", "user", "channel", "event_ts"})
_USER_FIELDS = frozenset({"id", "name"})
_CHANGE_FIELDS = frozenset(
    {"type", "ts", "channel", "event_ts", "message", "previous_message", "hidden", "deleted_ts"}
)
_REACTION_FIELDS = frozenset({"name", "count"})
_FILE_FIELDS = frozenset({"id", "url_private", "name", "size", "mimetype"})
#: Stands for "no such field" where ``None`` is a value.
_UNSET: Any = object()

# Bounds the caches of authors not in users.json (bots, other workspaces, live events),
# so memory stays flat whatever the export holds.
_CACHE_SIZE = 4096

_fromtimestamp = datetime.fromtimestamp


class SlackShapeError(ValueError):
    """A Slack object lacks a required field or has one of the wrong shape.

    Attributes:
        field: The field at fault, dotted (``"edited.ts"``, ``"reactions[0].name"``).
    """

    def __init__(self, field: str, problem: str) -> None:
        """Build the error.

        Args:
            field: The field at fault.
            problem: What is wrong with it, completing "field 'x' ...".
        """
        super().__init__(f"field '{field}' {problem}")
        self.field = field


def parse_slack_ts(value: Any, field: str = "ts") -> datetime:
    """Turn a Slack timestamp (``"1700000000.000100"``: epoch seconds) into a UTC datetime.

    Slack's ``ts`` carries microseconds in its decimals; they are kept exactly.

    Args:
        value: The timestamp as the source gave it (a string; numbers are accepted).
        field: The field it came from, for the error.

    Returns:
        An aware UTC datetime.

    Raises:
        SlackShapeError: the value is not a Slack timestamp.
    """
    if value.__class__ is str or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            # Exact to the microsecond: until 2106 a double is within half a microsecond
            # of the decimal ts, and fromtimestamp rounds to the nearest microsecond.
            # Twice as fast as splitting the string, and this runs once per message.
            return _fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError, OSError):
            pass
    raise SlackShapeError(field, f"is not a Slack timestamp like '1700000000.000100': {value!r}")


def _ts_text(value: Any, field: str) -> str:
    """A timestamp as the string Slack uses in ids; numbers from other tools are accepted."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6f}"
    raise SlackShapeError(field, "must be a Slack timestamp string like '1700000000.000100'")


def _required_ts(message: Mapping[str, Any]) -> str:
    ts = message.get("ts")
    if ts is None:
        raise SlackShapeError("ts", "is missing (every Slack message has one)")
    return _ts_text(ts, "ts")


def _edited(edited: Any, author: Member, raw: dict[str, Any]) -> datetime:
    """When the message was last edited; who edited it goes to ``raw`` if not its author."""
    if not isinstance(edited, dict):
        raise SlackShapeError("edited", "must be an object with 'user' and 'ts'")
    edited_at = parse_slack_ts(edited.get("ts"), "edited.ts")
    extra = {
        key: value
        for key, value in edited.items()
        if value and key != "ts" and not (key == "user" and value == author.native_id)
    }
    if extra:
        raw["edited"] = extra
    return edited_at


def _user_extras(user: Mapping[str, Any], member: Member) -> dict[str, Any]:
    """What a user object (users.json, ``team_join``) says beyond its Member."""
    extra = unmodeled(user, _USER_FIELDS)
    profile = extra.get("profile")
    if isinstance(profile, dict):
        mapped = {"display_name": member.display_name, "image_72": member.avatar_url}
        kept = {
            key: value
            for key, value in profile.items()
            if value and value != mapped.get(key, _UNSET)
        }
        if kept:
            extra["profile"] = kept
        else:
            del extra["profile"]
    if extra.get("is_bot") == member.is_bot:
        extra.pop("is_bot", None)
    return extra


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def slack_channel(
    conversation: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]] | None = None
) -> ChannelRef:
    """The ChannelRef of a conversation as ``channels.json`` (and its siblings) describe it.

    Direct messages have no name; they are named after their members
    (``dm-alice-bob``), like Slack names group DMs.

    Args:
        conversation: One item of channels.json, groups.json, mpims.json or dms.json.
        users: Members by id, to name direct messages.

    Returns:
        The channel reference messages of this conversation carry.

    Raises:
        SlackShapeError: the conversation has no id.
    """
    channel_id = conversation.get("id")
    if not isinstance(channel_id, str) or not channel_id:
        raise SlackShapeError("id", "must be a non-empty string")
    name = _optional_str(conversation.get("name"))
    if name is None:
        handles = []
        for member_id in conversation.get("members") or ():
            user = (users or {}).get(member_id) if isinstance(member_id, str) else None
            handles.append(str((user or {}).get("name") or member_id))
        name = "dm-" + "-".join(handles) if handles else channel_id
    topic = conversation.get("topic")
    topic_text = _optional_str(topic.get("value")) if isinstance(topic, dict) else None
    return ChannelRef(id=channel_id, name=name, topic=topic_text)


class SlackConverter:
    """Turns Slack message objects (exported or live) of one community into events.

    Authors are looked up in the workspace's users (users.json, or what the live
    endpoint learnt from ``team_join``); an author missing there is built from
    the ``user_profile`` or ``bot_profile`` the message embeds, else from its id.
    Members are cached: a repeat author costs a dict lookup, not a validation.
    """

    def __init__(
        self, community_id: str, users: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """Build a converter.

        Args:
            community_id: The Pépite community the messages belong to.
            users: Workspace members by Slack user id, as in users.json.

        Raises:
            ValueError: ``community_id`` is not a valid community id.
        """
        validate_community_id(community_id)
        self.community_id = community_id
        self._prefix = f"{_PLATFORM}:{community_id}:"
        self._users: dict[str, Mapping[str, Any]] = dict(users or {})
        self._members: dict[tuple[object, bool], Member] = {}
        self._profiled: dict[tuple[Any, ...], Member] = {}
        # Keyed by author id: the profile object last seen, and what of it goes to ``raw``.
        self._extras_cache: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._special: dict[str, Callable[[Mapping[str, Any], ChannelRef], ImportedEvent | None]]
        self._special = {
            _TOMBSTONE: self._tombstone,
            _CHANGED: self._changed,
            _DELETED: self._deleted,
            _REPLIED: lambda message, channel: None,
        }

    # -- members --------------------------------------------------------------

    def stable(self, native_id: str) -> str:
        """The stable id of a Slack object of this community.

        Args:
            native_id: Its Slack id (``<channel>:<ts>`` for a message).

        Returns:
            ``slack:<community>:<native_id>``.
        """
        return self._prefix + native_id

    def remember_user(self, user: Mapping[str, Any]) -> None:
        """Learn (or update) a workspace member, as ``team_join`` and ``user_change`` send it.

        Args:
            user: A user object shaped like an item of users.json.
        """
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id:
            return
        if user_id not in self._users and len(self._users) >= 16 * _CACHE_SIZE:
            # A live process runs for months; forgetting names costs names, not data.
            self._users.clear()
        self._users[user_id] = user
        self._members.pop((user_id, False), None)
        self._members.pop((user_id, True), None)

    def member(self, user: Mapping[str, Any], *, is_bot: bool = False) -> Member:
        """A workspace member (an item of users.json) as a contract Member.

        Args:
            user: The user object.
            is_bot: Force ``is_bot`` (the message was posted by an app as this user).

        Returns:
            The member.

        Raises:
            SlackShapeError: the user has no id or no name of the right type.
        """
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise SlackShapeError("user.id", "must be a non-empty string")
        profile = user.get("profile")
        if not isinstance(profile, dict):
            profile = {}
        name = user.get("name")
        display = (
            _optional_str(profile.get("display_name"))
            or _optional_str(profile.get("real_name"))
            or _optional_str(user.get("real_name"))
        )
        if not isinstance(name, str) or not name:
            name = display or user_id
        return Member(
            id=self._prefix + user_id,
            native_id=user_id,
            name=name,
            display_name=display,
            is_bot=is_bot or bool(user.get("is_bot")) or user_id == SLACKBOT_ID,
            avatar_url=_optional_str(profile.get("image_72")),
        )

    def _known_member(self, user_id: str, is_bot: bool) -> Member | None:
        key = (user_id, is_bot)
        member = self._members.get(key)
        if member is None:
            user = self._users.get(user_id)
            if user is None:
                return None
            if len(self._members) >= 16 * _CACHE_SIZE:
                self._members.clear()
            member = self._members[key] = self.member(user, is_bot=is_bot)
        return member

    def _profiled_member(self, author_id: str, profile: Any, is_bot: bool) -> Member:
        """An author missing from the users, built from the profile the message embeds."""
        if not isinstance(profile, dict):
            profile = {}
        icons = profile.get("icons")
        avatar = profile.get("image_72") or (
            icons.get("image_72") or icons.get("image_48") if isinstance(icons, dict) else None
        )
        name = _optional_str(profile.get("name"))
        display = _optional_str(profile.get("display_name")) or _optional_str(
            profile.get("real_name")
        )
        key = (author_id, name, display, avatar, is_bot)
        member = self._profiled.get(key)
        if member is None:
            if len(self._profiled) >= _CACHE_SIZE:
                self._profiled.clear()
            member = self._profiled[key] = Member(
                id=self._prefix + author_id,
                native_id=author_id,
                name=name or display or author_id,
                display_name=display,
                is_bot=is_bot,
                avatar_url=_optional_str(avatar),
            )
        return member

    def author(self, message: Mapping[str, Any]) -> Member:
        """The author of a message object.

        Apps post either as a bot user (``user`` and ``bot_id``) or as a bare bot
        (``subtype: bot_message``, ``bot_id`` and ``username``, no ``user``); both
        are ``is_bot``. A notice with no author at all is Slack's own: Slackbot.

        Args:
            message: The message object.

        Returns:
            The author.

        Raises:
            SlackShapeError: ``user`` or ``bot_id`` is not a string.
        """
        user_id = message.get("user")
        bot_id = message.get("bot_id")
        is_bot = bot_id is not None or message.get("subtype") == "bot_message"
        member = self._members.get((user_id, is_bot))
        if member is not None:
            # The common case: a workspace member seen before.
            return member
        if user_id is None:
            if bot_id is None:
                user_id = SLACKBOT_ID
            elif not isinstance(bot_id, str) or not bot_id:
                raise SlackShapeError("bot_id", "must be a non-empty string")
            else:
                profile = message.get("bot_profile") or {}
                if isinstance(profile, dict) and message.get("username"):
                    # A bare bot posts under the name it chose for this message.
                    profile = {**profile, "name": message["username"], "icons": None}
                    icons = message.get("icons")
                    if isinstance(icons, dict):
                        profile["icons"] = icons
                return self._profiled_member(bot_id, profile, True)
        elif not isinstance(user_id, str) or not user_id:
            raise SlackShapeError("user", "must be a non-empty string")
        member = self._known_member(user_id, is_bot)
        if member is not None:
            return member
        profile = message.get("user_profile") or message.get("bot_profile")
        return self._profiled_member(user_id, profile, is_bot or user_id == SLACKBOT_ID)

    def _profile_extras(self, field: str, profile: Any, member: Member) -> Any:
        """What an embedded profile says beyond the Member; cached, profiles repeat."""
        if not isinstance(profile, dict):
            # Not the documented shape: kept as it is.
            return profile
        key = (member.native_id, field)
        cached = self._extras_cache.get(key)
        if cached is not None and cached[0] == profile:
            return cached[1]
        mapped = {
            "name": member.name,
            "real_name": member.display_name,
            "display_name": member.display_name,
            "image_72": member.avatar_url,
        }
        extra = {
            name: value
            for name, value in profile.items()
            if value and value != mapped.get(name, _UNSET)
        }
        if len(self._extras_cache) >= _CACHE_SIZE:
            self._extras_cache.clear()
        self._extras_cache[key] = (profile, extra)
        return extra

    # -- messages -------------------------------------------------------------

    def convert(self, message: Mapping[str, Any], channel: ChannelRef) -> ImportedEvent | None:
        """Turn one Slack message object into an event.

        - a message, a thread parent or reply, a bot post, a file share... becomes
          :class:`MessageIngested` (Slack's notices, e.g. a topic change, with
          type ``SYSTEM``; an unknown subtype too, its subtype kept in ``raw``);
        - ``channel_join`` / ``channel_leave`` become :class:`MemberJoined` /
          :class:`MemberLeft`;
        - ``tombstone`` (a deleted thread parent) and ``message_deleted`` become
          :class:`MessageDeleted`;
        - ``message_changed`` becomes :class:`MessageEdited`, with the whole new message;
        - ``message_replied`` (a live notification that a thread got a reply, which
          arrives as its own event) gives nothing: None.

        Args:
            message: The message object, as in an export day file or an Events API event.
            channel: The conversation it was posted in.

        Returns:
            The event, or None for a notification that says nothing new.

        Raises:
            SlackShapeError: a required field is missing or has the wrong shape.
            pydantic.ValidationError: a value does not fit the contracts.
            KeyError, TypeError, AttributeError: the object has an unexpected shape
                (:func:`diagnose_message` names the field).
        """
        subtype = message.get("subtype")
        if subtype is None or subtype in _CONTENT_SUBTYPES:
            return self._ingested(message, channel)
        if subtype in _JOIN_SUBTYPES or subtype in _LEAVE_SUBTYPES:
            return self._membership(message, channel, joined=subtype in _JOIN_SUBTYPES)
        special = self._special.get(subtype)
        if special is not None:
            return special(message, channel)
        return self._ingested(message, channel)

    def _ingested(self, message: Mapping[str, Any], channel: ChannelRef) -> MessageIngested:
        payload, edited_at = self.message_payload(message, channel)
        return message_ingested(
            self.community_id, payload, created_at=payload["created_at"], edited_at=edited_at
        )

    def message_payload(
        self, message: Mapping[str, Any], channel: ChannelRef
    ) -> tuple[dict[str, Any], datetime | None]:
        """The NormalizedMessage fields of a message object, unvalidated (validated once,
        with the event around them), and its edit time.

        Args:
            message: The message object.
            channel: The conversation it was posted in.

        Returns:
            The payload dict and ``edited_at``.

        Raises:
            SlackShapeError: a required field is missing or has the wrong shape.
        """
        # Runs once per message: the common shape takes the fewest steps.
        get = message.get
        ts = get("ts")
        if ts.__class__ is not str or not ts:
            ts = _required_ts(message)
        channel_id = channel.id
        native_id = f"{channel_id}:{ts}"
        member = self.author(message)
        raw = {key: value for key, value in message.items() if value and key not in _MESSAGE_FIELDS}
        kind = get("type")
        if kind != "message" and kind is not None:
            raw["type"] = kind
        text = get("text")
        if text.__class__ is not str:
            if text is not None:
                raise SlackShapeError("text", "must be a string")
            text = ""
        subtype = get("subtype")
        thread_ts = get("thread_ts")
        if subtype is None and thread_ts is None:
            message_type, thread, reply_to_id = _DEFAULT, None, None
        else:
            message_type, thread, reply_to_id = self._thread(subtype, thread_ts, channel_id, ts)
        edited = get("edited")
        edited_at = _edited(edited, member, raw) if edited else None
        pinned_to = get("pinned_to")
        if pinned_to and pinned_to != [channel_id]:
            raw["pinned_to"] = pinned_to
        event_ts = get("event_ts")
        if event_ts and event_ts != ts:
            raw["event_ts"] = event_ts
        self._profiles(message, member, raw)

        payload: dict[str, Any] = {
            "id": self._prefix + native_id,
            "platform": _PLATFORM,
            "community_id": self.community_id,
            "native_id": native_id,
            "channel": channel,
            "thread": thread,
            "reply_to_id": reply_to_id,
            "author": member,
            "text": text,
            "type": message_type,
            "created_at": parse_slack_ts(ts),
            "edited_at": edited_at,
            "is_pinned": bool(pinned_to),
            "raw": raw,
        }
        reactions = get("reactions")
        if reactions:
            payload["reactions"] = _reactions(reactions, raw)
        files = get("files")
        if files:
            payload["attachments"] = _attachments(files, raw)
        if "<@" in text:
            payload["mentions"] = self._mentions(text)
        return payload, edited_at

    def _profiles(self, message: Mapping[str, Any], member: Member, raw: dict[str, Any]) -> None:
        """Put what the embedded profiles say beyond the Member into ``raw``."""
        profile = message.get("user_profile")
        if profile:
            # The cache hit of _profile_extras, inlined: nearly every message has a profile.
            cached = self._extras_cache.get((member.native_id, "user_profile"))
            extra = (
                cached[1]
                if cached is not None and cached[0] == profile
                else self._profile_extras("user_profile", profile, member)
            )
            if extra:
                raw["user_profile"] = extra
        profile = message.get("bot_profile")
        if profile:
            extra = self._profile_extras("bot_profile", profile, member)
            if extra:
                raw["bot_profile"] = extra

    def _thread(
        self, subtype: Any, thread_ts: Any, channel_id: str, ts: str
    ) -> tuple[MessageType, dict[str, str] | None, str | None]:
        """The message's type, thread and parent.

        A thread is named after its parent message (``<channel>:<thread_ts>``);
        the parent is the message whose ``thread_ts`` is its own ``ts``.
        """
        if subtype is None or subtype in _CONTENT_SUBTYPES:
            message_type = _DEFAULT
        else:
            message_type = _NOTICE_TYPES.get(subtype, _SYSTEM)
        if thread_ts is None:
            return message_type, None, None
        thread_ts = _ts_text(thread_ts, "thread_ts")
        parent = f"{channel_id}:{thread_ts}"
        if thread_ts == ts:
            if message_type is _DEFAULT:
                message_type = _THREAD_STARTER
            return message_type, {"id": parent}, None
        if message_type is _DEFAULT:
            message_type = _REPLY
        return message_type, {"id": parent}, self._prefix + parent

    def _mentions(self, text: str) -> list[Mention]:
        mentions: dict[str, Mention] = {}
        for match in _MENTION.finditer(text):
            user_id = match.group(1)
            if user_id in mentions:
                continue
            member = self._known_member(user_id, False)
            name = member.name if member is not None else (match.group(2) or user_id)
            mentions[user_id] = Mention(member_id=self._prefix + user_id, name=name)
        return list(mentions.values())

    def _membership(
        self, message: Mapping[str, Any], channel: ChannelRef, *, joined: bool
    ) -> MemberJoined | MemberLeft:
        """A join or leave notice as a membership change; the notice is its source."""
        ts = _required_ts(message)
        sid = f"{self._prefix}{channel.id}:{ts}"
        at = parse_slack_ts(ts)
        member = self.author(message)
        # The notice's text, subtype, inviter... stay with the change.
        raw = unmodeled(message, _MEMBERSHIP_FIELDS)
        profile = raw.get("user_profile")
        if profile:
            extra = self._profile_extras("user_profile", profile, member)
            if extra:
                raw["user_profile"] = extra
            else:
                del raw["user_profile"]
        event_type = "member.joined" if joined else "member.left"
        return self._membership_event(
            _event_id(event_type, sid), member, at, joined, channel, sid, raw
        )

    def membership(
        self,
        user: Mapping[str, Any] | str,
        at: datetime,
        *,
        joined: bool,
        channel: ChannelRef | None = None,
        source_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> MemberJoined | MemberLeft:
        """A membership change not carried by a message (live ``member_joined_channel``,
        ``member_left_channel``, ``team_join``).

        Args:
            user: The user object, or only its id. Of a user object, what the
                Member does not say is kept in ``raw["user"]``.
            at: When it happened.
            joined: Joined (True) or left (False).
            channel: The channel, or None for the whole workspace.
            source_id: Stable id of the Slack record it came from, if any.
            raw: What else the source said about the change.

        Returns:
            The event; its id is derived from who, where and when, so a replay repeats it.

        Raises:
            SlackShapeError: the user has no id.
        """
        raw = dict(raw or {})
        if isinstance(user, str):
            member = self.author({"user": user})
        else:
            self.remember_user(user)
            member = self.member(user)
            user_extra = _user_extras(user, member)
            if user_extra:
                raw["user"] = user_extra
        event_type = "member.joined" if joined else "member.left"
        event_id = _event_id(event_type, member.id, channel.id if channel else "", at.isoformat())
        return self._membership_event(event_id, member, at, joined, channel, source_id, raw)

    def _membership_event(  # noqa: PLR0917 - the fields of one event
        self,
        event_id: str,
        member: Member,
        at: datetime,
        joined: bool,
        channel: ChannelRef | None,
        source_id: str | None,
        raw: dict[str, Any],
    ) -> MemberJoined | MemberLeft:
        data = {
            "event_id": event_id,
            "occurred_at": at,
            "community_id": self.community_id,
            "payload": {
                "member": member,
                "platform": _PLATFORM,
                "community_id": self.community_id,
                "at": at,
                "channel": channel,
                "source_id": source_id,
                "raw": raw,
            },
        }
        if joined:
            return MemberJoined.model_validate(data)
        return MemberLeft.model_validate(data)

    def _deletion(
        self,
        native_ts: Any,
        field: str,
        deleted_at: datetime,
        channel: ChannelRef,
        raw: dict[str, Any],
    ) -> MessageDeleted:
        native_id = f"{channel.id}:{_ts_text(native_ts, field)}"
        sid = self._prefix + native_id
        return MessageDeleted.model_validate(
            {
                "event_id": _event_id("message.deleted", sid),
                "occurred_at": deleted_at,
                "community_id": self.community_id,
                "payload": {
                    "id": sid,
                    "platform": _PLATFORM,
                    "community_id": self.community_id,
                    "native_id": native_id,
                    "channel": channel,
                    "deleted_at": deleted_at,
                    "raw": raw,
                },
            }
        )

    def _tombstone(self, message: Mapping[str, Any], channel: ChannelRef) -> MessageDeleted:
        """A deleted thread parent. Exports do not say when it was deleted: an edit time
        is the best clue, else its own time (the deletion came later)."""
        ts = message.get("ts")
        if ts is None:
            raise SlackShapeError("ts", "is missing (every Slack message has one)")
        edited = message.get("edited")
        when = edited.get("ts") if isinstance(edited, dict) and edited.get("ts") else ts
        # The placeholder text and Slackbot as author say nothing; thread details stay.
        raw = unmodeled(message, _TOMBSTONE_FIELDS)
        raw.pop("edited", None)
        return self._deletion(ts, "ts", parse_slack_ts(when, "edited.ts"), channel, raw)

    def _deleted(self, message: Mapping[str, Any], channel: ChannelRef) -> MessageDeleted:
        """Live ``message_deleted``: ``deleted_ts`` names the message, ``ts`` is when."""
        deleted_ts = message.get("deleted_ts")
        if deleted_ts is None:
            inner = message.get("previous_message")
            deleted_ts = inner.get("ts") if isinstance(inner, dict) else None
        if deleted_ts is None:
            raise SlackShapeError("deleted_ts", "is missing")
        when = message.get("ts") or message.get("event_ts")
        # ``previous_message`` holds the deleted text, which must disappear downstream.
        raw = unmodeled(message, _CHANGE_FIELDS)
        return self._deletion(deleted_ts, "deleted_ts", parse_slack_ts(when), channel, raw)

    def _changed(
        self, message: Mapping[str, Any], channel: ChannelRef
    ) -> MessageEdited | MessageDeleted:
        """Live ``message_changed``: ``message`` is the whole message after the change.

        Slack sends it for edits and also when a thread's reply count or a link
        preview changes; a thread parent deleted while it has replies turns into
        a tombstone this way.
        """
        inner = message.get("message")
        if not isinstance(inner, dict):
            raise SlackShapeError("message", "must be the changed message object")
        if inner.get("subtype") == _TOMBSTONE:
            return self._tombstone(inner, channel)
        payload, edited_at = self.message_payload(inner, channel)
        change_ts = message.get("ts") or message.get("event_ts")
        if edited_at is None:
            edited_at = parse_slack_ts(change_ts) if change_ts else payload["created_at"]
        # ``previous_message`` is the text before the edit: its author chose to replace it.
        raw = unmodeled(message, _CHANGE_FIELDS)
        edit: dict[str, Any] = {
            "id": payload["id"],
            "platform": _PLATFORM,
            "community_id": self.community_id,
            "native_id": payload["native_id"],
            "channel": channel,
            "edited_at": edited_at,
            "text": payload["text"],
            "attachments": payload.get("attachments", []),
            "mentions": payload.get("mentions", []),
            "message": payload,
            "raw": raw,
        }
        return MessageEdited.model_validate(
            {
                # The change's own ts tells two changes of one message apart.
                "event_id": _event_id(
                    "message.edited", payload["id"], str(change_ts or edited_at.isoformat())
                ),
                "occurred_at": edited_at,
                "community_id": self.community_id,
                "payload": edit,
            }
        )


def _reactions(reactions: Any, raw: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(reactions, list):
        raise SlackShapeError("reactions", "must be a list of objects")
    out: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    for index, item in enumerate(reactions):
        if not isinstance(item, dict):
            raise SlackShapeError(f"reactions[{index}]", "must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SlackShapeError(f"reactions[{index}].name", "must be a non-empty string")
        users = item.get("users")
        count = item.get("count")
        if count is None:
            count = len(users) if isinstance(users, list) else 0
        out.append({"emoji": name, "count": count})
        extras.append(unmodeled(item, _REACTION_FIELDS))
    if any(extras):
        # Same order as payload.reactions: who reacted.
        raw["reactions"] = extras
    return out


def _attachments(files: Any, raw: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(files, list):
        raise SlackShapeError("files", "must be a list of objects")
    out: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    for index, item in enumerate(files):
        if not isinstance(item, dict):
            raise SlackShapeError(f"files[{index}]", "must be an object")
        size = item.get("size")
        out.append(
            {
                "id": _optional_str(item.get("id")),
                "url": _optional_str(item.get("url_private")),
                "filename": _optional_str(item.get("name")),
                "size_bytes": size if isinstance(size, int) and size >= 0 else None,
                "content_type": _optional_str(item.get("mimetype")),
            }
        )
        extra = unmodeled(item, _FILE_FIELDS)
        if size is not None and not (isinstance(size, int) and size >= 0):
            extra["size"] = size
        extras.append(extra)
    if any(extras):
        # Same order as payload.attachments (title, permalink, thumbnails...).
        raw["files"] = extras
    return out


def diagnose_message(message: Any, exc: Exception) -> str:
    """Name what is wrong with a message object that could not be converted.

    Args:
        message: The message object.
        exc: What the conversion raised.

    Returns:
        One line a person can act on, naming the field at fault.
    """
    if not isinstance(message, dict):
        return f"message is not a JSON object but {_json_kind(message)}"
    if isinstance(exc, SlackShapeError):
        return str(exc)
    problem = _check_shapes(message)
    if problem is not None:
        return problem
    if isinstance(exc, ValidationError):
        return describe_contract_error(exc)
    return f"cannot read message ({type(exc).__name__}: {exc})"


#: Fields whose type the conversion relies on, and the type each must have.
_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("user", str, "a user id string"),
    ("bot_id", str, "a bot id string"),
    ("subtype", str, "a string"),
    ("text", str, "a string"),
    ("edited", dict, "an object with 'user' and 'ts'"),
    ("reactions", list, "a list of objects"),
    ("files", list, "a list of objects"),
    ("user_profile", dict, "an object"),
    ("bot_profile", dict, "an object"),
)


def _check_shapes(message: Mapping[str, Any]) -> str | None:
    """Name a field of the wrong type: the conversion only noticed it indirectly."""
    for field, expected, described in _FIELD_TYPES:
        value = message.get(field)
        if value is not None and not isinstance(value, expected):
            return f"field '{field}' must be {described}, not {_json_kind(value)}"
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {list: "an array", dict: "an object", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a value")


# -- reading exports ------------------------------------------------------------


class _Source(Protocol):
    """The files of an export, by path relative to its root (``general/2024-01-15.json``)."""

    def label(self, name: str) -> str:
        """How to name the file in an error."""

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""

    def listing(self) -> dict[str, list[str]]:
        """Day files by conversation folder, each list in date order."""

    def has(self, name: str) -> bool:
        """Whether a top-level file exists."""

    def size(self, name: str) -> int:
        """The file's size in bytes (uncompressed)."""

    def open(self, name: str) -> AbstractContextManager[IO[bytes]]:
        """The file, opened for reading."""


def _skipped(name: str) -> bool:
    # macOS zips carry a __MACOSX shadow tree; dot files are editor and OS litter.
    return name.startswith((".", "__MACOSX"))


class _FolderSource:
    """An unzipped export."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> _FolderSource:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def label(self, name: str) -> str:
        return str(self.root / name)

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            problem = f"cannot read file ({exc.strerror or exc})"
            raise ExportFormatError(self.label(name), problem) from exc

    def size(self, name: str) -> int:
        try:
            return (self.root / name).stat().st_size
        except OSError as exc:
            raise ExportFormatError(self.label(name), f"cannot read file ({exc})") from exc

    def open(self, name: str) -> AbstractContextManager[IO[bytes]]:
        try:
            return (self.root / name).open("rb")
        except OSError as exc:
            raise ExportFormatError(self.label(name), f"cannot read file ({exc})") from exc

    def listing(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        try:
            folders = sorted(
                entry.name
                for entry in os.scandir(self.root)
                if entry.is_dir() and not _skipped(entry.name)
            )
            for folder in folders:
                days = sorted(
                    entry.name
                    for entry in os.scandir(self.root / folder)
                    if _DAY_FILE.fullmatch(entry.name) and entry.is_file()
                )
                found[folder] = [f"{folder}/{day}" for day in days]
        except OSError as exc:
            problem = f"cannot list folder ({exc.strerror or exc})"
            raise ExportFormatError(self.root, problem) from exc
        return found


class _ZipSource:
    """A zipped export, read member by member without extracting.

    Slack puts the export at the root of the zip; a zip made by hand from the
    unzipped folder often has that folder as its only top-level entry, which is
    accepted too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except FileNotFoundError as exc:
            raise ExportFormatError(path, "file not found") from exc
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ExportFormatError(
                path, f"not a readable zip file ({exc}); the download may be incomplete"
            ) from exc
        names = self._zip.namelist()
        self._prefix = _zip_prefix(names) or ""
        self._names = {name[len(self._prefix) :] for name in names if name.startswith(self._prefix)}

    def __enter__(self) -> _ZipSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def label(self, name: str) -> str:
        return f"{self.path}/{self._prefix}{name}"

    def has(self, name: str) -> bool:
        return name in self._names

    def read(self, name: str) -> bytes | None:
        if name not in self._names:
            return None
        try:
            return self._zip.read(self._prefix + name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ExportFormatError(self.label(name), f"corrupt zip member ({exc})") from exc
        except (NotImplementedError, RuntimeError) as exc:
            # Unsupported compression method, or an encrypted member.
            raise ExportFormatError(self.label(name), f"cannot read zip member ({exc})") from exc

    def size(self, name: str) -> int:
        return self._zip.getinfo(self._prefix + name).file_size

    def open(self, name: str) -> AbstractContextManager[IO[bytes]]:
        try:
            return self._zip.open(self._prefix + name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ExportFormatError(self.label(name), f"corrupt zip member ({exc})") from exc
        except (NotImplementedError, RuntimeError) as exc:
            raise ExportFormatError(self.label(name), f"cannot read zip member ({exc})") from exc

    def listing(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name in sorted(self._names):
            folder, slash, day = name.partition("/")
            if slash and not _skipped(folder) and _DAY_FILE.fullmatch(day):
                found.setdefault(folder, []).append(name)
        return found


def _zip_prefix(names: list[str]) -> str | None:
    """Where the export starts in a zip: ``""``, ``"<folder>/"``, or None if no export."""
    tops = {name for name in names if "/" not in name}
    if tops & _METADATA_FILES:
        return ""
    for name in names:
        folder, slash, rest = name.partition("/")
        if slash and rest in _METADATA_FILES and not _skipped(folder):
            return folder + "/"
    return None


def _open_source(path: Path) -> _FolderSource | _ZipSource:
    if path.is_dir():
        return _FolderSource(path)
    if not path.exists():
        raise ExportFormatError(path, "file not found")
    return _ZipSource(path)


def _load_json(label: str, data: bytes) -> Any:
    """Parse a whole (small) JSON file; errors name the byte, line and column."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise ExportFormatError(
            label, "invalid JSON (the file is not UTF-8 text)", f"byte {exc.start}"
        ) from exc
    except json.JSONDecodeError as exc:
        if not data.strip():
            raise ExportFormatError(label, "file is empty") from exc
        byte = len(exc.doc[: exc.pos].encode("utf-8", "surrogatepass"))
        problem = f"invalid JSON ({exc.msg})"
        if exc.pos >= len(exc.doc.rstrip()):
            problem = f"file is truncated: the JSON ends before it is complete ({exc.msg})"
        raise ExportFormatError(
            label, problem, f"byte {byte} (line {exc.lineno}, column {exc.colno})"
        ) from exc


def _load_list(source: _Source, name: str) -> list[dict[str, Any]] | None:
    """A metadata file: a JSON array of objects, or None when the export has none."""
    data = source.read(name)
    if data is None:
        return None
    label = source.label(name)
    items = _load_json(label, data)
    if not isinstance(items, list):
        raise ExportFormatError(label, f"expected a JSON array, found {_json_kind(items)}")
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ExportFormatError(label, "item is not a JSON object", f"item #{number}")
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise ExportFormatError(label, "missing required field 'id'", f"item #{number}")
    return items


@dataclass(frozen=True)
class _Conversation:
    """A conversation and the day files holding its messages."""

    channel: ChannelRef
    days: list[str]


def _conversations(source: _Source, users: Mapping[str, Mapping[str, Any]]) -> list[_Conversation]:
    """Every conversation with messages, in the order of the metadata files.

    Folders are named after conversations; the id comes from the metadata. A
    folder the metadata does not list is still read (its messages are data), with
    the folder name standing for both its id and its name.
    """
    listing = source.listing()
    found: list[_Conversation] = []
    seen: set[str] = set()
    for name, folder_field in _CONVERSATION_FILES:
        for number, item in enumerate(_load_list(source, name) or (), 1):
            folder = item.get(folder_field)
            if not isinstance(folder, str) or not folder:
                raise ExportFormatError(
                    source.label(name),
                    f"missing required field '{folder_field}'",
                    f"item #{number} (id {item['id']})",
                )
            if folder in seen:
                continue
            seen.add(folder)
            try:
                channel = slack_channel(item, users)
            except (SlackShapeError, ValidationError) as exc:
                raise ExportFormatError(
                    source.label(name), f"invalid conversation ({exc})", f"item #{number}"
                ) from exc
            days = listing.get(folder)
            if days:
                found.append(_Conversation(channel, days))
    for folder, days in listing.items():
        if folder not in seen and days:
            found.append(_Conversation(ChannelRef(id=folder, name=folder), days))
    return found


def _users(source: _Source) -> dict[str, dict[str, Any]]:
    return {user["id"]: user for user in _load_list(source, _USERS_FILE) or ()}


def iter_slack_export(
    path: Path | str, community_id: str, *, channels: Collection[str] | None = None
) -> Iterator[ImportedEvent]:
    """Read a Slack workspace export (zip or unzipped folder) and yield its events.

    Conversations come in the order of channels.json, groups.json, mpims.json
    and dms.json; each one's messages in date order, as in its day files. Every
    message gets the stable id ``slack:<community>:<channel id>:<ts>`` (a ``ts``
    is only unique within its channel), and event ids derived from it, so
    importing the same export twice yields the same events.

    The metadata files are read and checked before this returns; the day files
    are then read lazily, one at a time, as the iterator is consumed.

    Args:
        path: The export's ``.zip``, or the folder it was unzipped to.
        community_id: The Pépite community the messages belong to.
        channels: Read only these conversations (ids, as :func:`slack_export_channels`
            lists them); all when None. Lets several processes share one export, a
            conversation each, and keep each conversation's order.

    Returns:
        An iterator of events.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the export is missing, not a readable zip, has a
            malformed metadata file, or (while iterating) a malformed day file or
            message; the error names the file, and the message number or byte.
    """
    validate_community_id(community_id)
    path = Path(path)
    users, conversations = _read_metadata(path)
    if channels is not None:
        wanted = set(channels)
        conversations = [c for c in conversations if c.channel.id in wanted]
    converter = SlackConverter(community_id, users)
    return _stream(lambda: _open_source(path), conversations, converter)


def slack_export_channels(path: Path | str) -> list[tuple[str, int]]:
    """The conversations of an export that hold messages, and how big each is.

    For splitting an import between processes: give each a share of the ids
    (``iter_slack_export(..., channels=...)``), balanced by size.

    Args:
        path: The export's ``.zip``, or the folder it was unzipped to.

    Returns:
        ``(channel id, bytes of its day files)`` in import order.

    Raises:
        ExportFormatError: the export is missing or its metadata is malformed.
    """
    path = Path(path)
    _, conversations = _read_metadata(path)
    with _open_source(path) as source:
        return [(c.channel.id, sum(source.size(name) for name in c.days)) for c in conversations]


def _read_metadata(path: Path) -> tuple[dict[str, dict[str, Any]], list[_Conversation]]:
    with _open_source(path) as source:
        if not any(source.has(name) for name in _METADATA_FILES):
            raise ExportFormatError(
                path,
                "not a Slack export: no channels.json or users.json "
                + ("in the zip" if isinstance(source, _ZipSource) else "in the folder"),
            )
        users = _users(source)
        return users, _conversations(source, users)


#: Day files bigger than this are streamed message by message rather than parsed whole:
#: a bot can post tens of thousands of messages in a day, and memory must stay flat.
STREAM_DAY_FILES_ABOVE = 8 * 1024 * 1024

#: What reading a zip member as it inflates can raise when the archive is damaged.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)


def _stream(
    opener: Callable[[], AbstractContextManager[_Source]],
    conversations: list[_Conversation],
    converter: SlackConverter,
) -> Iterator[ImportedEvent]:
    # Day files are small (one channel, one day), so each is parsed whole with the
    # stdlib's C parser: faster than streaming it (ijson's C backend takes 40% longer
    # on Slack day files), and memory is bounded by a day. Huge days are streamed.
    convert = converter.convert
    with opener() as source:
        for conversation in conversations:
            channel = conversation.channel
            for name in conversation.days:
                label = source.label(name)
                messages: Iterator[Any]
                if source.size(name) > STREAM_DAY_FILES_ABOVE:
                    messages = _streamed_day(source, name, label)
                else:
                    messages = iter(_whole_day(label, source.read(name)))
                number = 0
                message: Any = None
                try:
                    for message in messages:
                        number += 1
                        event = convert(message, channel)
                        if event is not None:
                            yield event
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    # ValueError covers SlackShapeError and pydantic's ValidationError.
                    raise _message_error(label, number, message, exc) from exc


def _whole_day(label: str, data: bytes | None) -> list[Any]:
    messages = _load_json(label, data or b"")
    if not isinstance(messages, list):
        raise ExportFormatError(
            label, f"a day file holds a JSON array of messages, found {_json_kind(messages)}"
        )
    return messages


def _streamed_day(source: _Source, name: str, label: str) -> Iterator[Any]:
    """The messages of a big day file, parsed one at a time as the file is read."""
    with source.open(name) as raw:
        # A zip member is an IO[bytes] for the type checker; it reads like any binary file.
        reader = TrackingReader(cast(BinaryIO, raw))
        number = 0
        try:
            events = BACKEND.parse(reader, use_float=True)
            first = next(events, None)
            if first is None:
                raise ExportFormatError(label, "file is empty")
            if first[1] != "start_array":
                raise ExportFormatError(
                    label, "a day file holds a JSON array of messages, found another JSON value"
                )
            for message in BACKEND.items(_Replay(first, events), "item"):
                number += 1
                yield message
        except JSON_ERRORS as exc:
            position = reader.error_position(exc) + f", after message #{number}"
            raise ExportFormatError(label, describe_json_error(exc, reader), position) from exc
        except _ZIP_ERRORS as exc:
            raise ExportFormatError(label, f"corrupt zip member ({exc})") from exc


class _Replay:
    """Parser events with one already read put back in front, for ``ijson.items``."""

    def __init__(self, first: tuple[str, str, Any], rest: Iterator[tuple[str, str, Any]]) -> None:
        self._first: tuple[str, str, Any] | None = first
        self._rest = rest

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> tuple[str, str, Any]:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return next(self._rest)


def _message_error(label: str, number: int, message: Any, exc: Exception) -> ExportFormatError:
    position = f"message #{number}"
    ts = message.get("ts") if isinstance(message, dict) else None
    if isinstance(ts, str) and ts:
        position += f" (ts {ts})"
    return ExportFormatError(label, diagnose_message(message, exc), position)


# -- detection ------------------------------------------------------------------


def _folder_has_day_files(folder: Path) -> bool:
    try:
        return any(_DAY_FILE.fullmatch(entry.name) for entry in os.scandir(folder))
    except OSError:
        return False


def _looks_like_folder(path: Path) -> bool:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return False
    files = {entry.name for entry in entries if entry.is_file()}
    if not files & _METADATA_FILES:
        return False
    # channels.json and users.json together are an export even with no messages at all.
    if {"channels.json", _USERS_FILE} <= files:
        return True
    return any(
        entry.is_dir() and not _skipped(entry.name) and _folder_has_day_files(Path(entry.path))
        for entry in entries
    )


def sniff_slack(path: Path, head: bytes) -> bool:
    """Recognise a Slack workspace export: an unzipped folder, or its zip.

    A folder is one when it holds channels.json and users.json, or one of the
    metadata files plus a conversation folder of day files. A zip is one when
    it holds channels.json or users.json, at its root or in its one top folder.
    A zip too damaged to list is still claimed when its first bytes name one of
    those files, so that the importer can say what is wrong with it.

    Args:
        path: The export.
        head: Its first bytes (empty for a folder).

    Returns:
        Whether it looks like a Slack export.
    """
    if not head:
        return path.is_dir() and _looks_like_folder(path)
    if not head.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return _zip_prefix(archive.namelist()) is not None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return b"channels.json" in head or b"users.json" in head
