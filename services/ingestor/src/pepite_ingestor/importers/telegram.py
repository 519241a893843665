"""Stream a Telegram Desktop JSON export (``result.json``) as Pépite events.

Telegram Desktop ("Export chat history", format "Machine-readable JSON") writes
one of two shapes:

- one chat::

    {"name": "Rustaceans FR", "type": "public_supergroup", "id": 1234567890,
     "messages": [{...}, ...]}

- a whole account ("Export Telegram data"), whose chats sit in ``chats.list``
  (and ``left_chats.list`` for groups the account has left), each shaped like
  the single-chat export; other sections (contacts, sessions...) are skipped::

    {"about": "...", "personal_information": {...}, ...,
     "chats": {"about": "...", "list": [{"name": ..., "id": ..., "messages": [...]}]},
     "left_chats": {"about": "...", "list": [...]}}

Exports reach gigabytes, so messages are read one at a time with ijson: memory
stays flat whatever the size of the file. Telegram writes a chat's ``name``,
``type`` and ``id`` before its ``messages``, which is what lets a chat's
messages be filed as they stream by.

How messages map to the contracts:

- A chat is a :class:`ChannelRef` (its numeric id, its name). Message ids are
  per chat, so a message's native id is ``<chat id>:<message id>`` and its
  stable id ``telegram:<community>:<chat id>:<message id>``.
- Authors are identified by ``from_id`` (``user123``, ``channel456``), which
  is their native member id. Service messages are attributed to their
  ``actor_id``; those without one to a ``system`` member.
- ``text`` is a string or a list mixing strings and entities; it is flattened
  to plain text, and the entity list is kept in ``raw.text_entities`` when it
  holds any formatting. ``mention_name`` entities become mentions.
- Times come from ``date_unixtime`` (UTC). ``date`` is the exporter's local
  time without an offset; old exports have only that, and it is then taken as
  UTC (kept as written in ``raw.date``).
- ``reply_to_message_id`` becomes ``reply_to_id``. In forum supergroups a
  message whose parent is a topic's opening service message is filed in that
  topic (``thread``) rather than as a reply, and replies inherit their parent's
  topic.
- Service messages: joins (``join_group_by_link``, ``join_group_by_request``,
  ``invite_members``) become :class:`MemberJoined`, one per member, and
  removals (``remove_members``) :class:`MemberLeft`; ``pin_message`` is a
  ``PINNED_NOTICE`` pointing at the pinned message; ``topic_created`` a
  ``THREAD_STARTER``; ``create_group`` a ``SYSTEM`` message plus one join per
  founding member; every other action a ``SYSTEM`` message with the action in
  ``raw``.
- Telegram lists invited and removed members by display name only. A name is
  resolved to the member id seen with it earlier in the export (as an author
  or actor); failing that, the native id is ``name:<sha1 of the name>``, the
  same scheme as the WhatsApp importer.
- Messages of a type this importer does not know become ``SYSTEM`` messages
  with their ``type`` in ``raw``; those without any date (Telegram writes
  ``{"id": 5, "type": "unsupported"}`` for content it cannot export) are skipped,
  as there is nothing to file them under.
"""

from __future__ import annotations

import codecs
import hashlib
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import ijson
from pydantic import ValidationError

from pepite_contracts import (
    ChannelRef,
    Member,
    MemberJoined,
    MemberLeft,
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

__all__ = ["CHAT_TYPES", "TelegramEvent", "iter_telegram_export", "sniff_telegram"]

#: What a Telegram export yields.
TelegramEvent = MessageIngested | MemberJoined | MemberLeft

_PLATFORM = Platform.TELEGRAM.value

#: The chat types Telegram Desktop writes in a chat's ``type``.
CHAT_TYPES = frozenset(
    {
        "personal_chat",
        "bot_chat",
        "private_group",
        "private_supergroup",
        "public_supergroup",
        "private_channel",
        "public_channel",
        "saved_messages",
        "replies",
    }
)

# Sections of a whole-account export; one of them after "about" identifies the shape.
_ACCOUNT_KEYS = frozenset(
    {
        "personal_information",
        "profile_pictures",
        "stories",
        "contacts",
        "frequent_contacts",
        "sessions",
        "web_sessions",
        "other_data",
        "chats",
        "left_chats",
    }
)
# Where a whole-account export keeps its chats.
_CHAT_LISTS = ("chats", "left_chats")
# Keys of every message Telegram Desktop writes, and keys that only it writes.
_MESSAGE_KEYS = frozenset({"id", "type", "date"})
_MESSAGE_MARKERS = frozenset({"date_unixtime", "from_id", "actor_id"})
# Chats with no "name" in the export: Telegram shows them under these titles.
_UNNAMED_CHATS = {"saved_messages": "Saved Messages", "replies": "Replies"}

_JOIN_ACTIONS = frozenset({"join_group_by_link", "join_group_by_request"})

# Source fields the contracts model; anything else with a value goes to ``raw``.
_MESSAGE_FIELDS = frozenset(
    {
        "id",
        "type",
        "date",
        "date_unixtime",
        "edited",
        "edited_unixtime",
        "from",
        "from_id",
        "actor",
        "actor_id",
        "text",
        "text_entities",
        "reply_to_message_id",
        "reply_to_peer_id",
        "photo",
        "photo_file_size",
        "file",
        "file_name",
        "file_size",
        "mime_type",
        "reactions",
    }
)
_REACTION_FIELDS = frozenset({"emoji", "count", "document_id"})
# Modeled fields most messages lack.
_OPTIONAL_FIELDS = frozenset(
    {"reply_to_message_id", "edited", "edited_unixtime", "photo", "file", "reactions"}
)

#: Same ids as ``deterministic_event_id``, computed faster (see ``fast_event_id``).
_event_id = fast_event_id

# Bounds the caches (members, names, topics) so memory stays flat on huge exports.
_CACHE_SIZE = 16384
# How many parse events are fed to the message builder between two deliveries
# of finished messages, in whole-account exports: a few dozen messages' worth.
_BATCH_EVENTS = 4096


def sniff_telegram(path: Path, head: bytes) -> bool:
    """Recognise a Telegram Desktop JSON export.

    A single chat is a JSON object whose first message looks like one Telegram
    Desktop writes: ``id``, ``type`` and ``date``, and ``date_unixtime`` (every
    export since 2021) or the ``from_id``/``actor_id`` older ones have. With no
    message to look at, a ``type`` among :data:`CHAT_TYPES` and an ``id`` decide.
    A whole-account export starts with ``about`` followed by sections such as
    ``personal_information`` or ``chats``.

    Args:
        path: The export (unused: the head is enough).
        head: The first bytes of the file.

    Returns:
        Whether the file looks like a Telegram Desktop JSON export.
    """
    del path
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not text.startswith(b"{"):
        return False
    chat = {"type": False, "id": False}
    try:
        return _sniff_events(BACKEND.parse(io.BytesIO(text)), chat)
    except JSON_ERRORS:
        # Invalid JSON, or the head ends inside a (long) first message: the chat
        # header seen so far decides.
        return chat["type"] and chat["id"]


def _sniff_events(events: Iterator[tuple[str, str, Any]], chat: dict[str, bool]) -> bool:
    keys: list[str] = []
    first_message: set[str] = set()
    for prefix, event, value in events:
        if event == "map_key" and prefix == "":
            keys.append(value)
            if value in _ACCOUNT_KEYS and keys[0] == "about":
                return True
            chat["id"] = chat["id"] or value == "id"
        elif prefix == "type" and event == "string":
            chat["type"] = value in CHAT_TYPES
        elif event == "map_key" and prefix == "messages.item":
            first_message.add(value)
        elif event == "end_map" and prefix == "messages.item":
            return first_message >= _MESSAGE_KEYS and bool(first_message & _MESSAGE_MARKERS)
        elif event == "end_array" and prefix == "messages":
            return chat["type"] and chat["id"]
    return False


def iter_telegram_export(path: Path | str, community_id: str) -> Iterator[TelegramEvent]:
    """Read a Telegram Desktop JSON export and yield its events, in file order.

    The community id and the file's shape are checked before this returns;
    messages are then read lazily, one at a time, as the iterator is consumed.

    Args:
        path: The ``result.json`` Telegram Desktop wrote (one chat or a whole account).
        community_id: The Pépite community the messages belong to.

    Returns:
        An iterator of events: :class:`MessageIngested` for messages,
        :class:`MemberJoined` and :class:`MemberLeft` for membership changes.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file is missing, not JSON, truncated, not shaped
            like a Telegram export, or a message lacks a required field. Raised
            while iterating for problems found in the messages.
    """
    validate_community_id(community_id)
    path = Path(path)
    header = _read_header(path)
    context = _Context(path, community_id)
    if header is None:
        return _stream_account(context)
    return _stream_chat(context, _ChatConverter(context, header, "header"))


# --------------------------------------------------------------------------- reading


def _scalar(events: Iterator[tuple[str, str, Any]]) -> Any:
    """The next value if it is a scalar; a nested value is skipped and read as None."""
    for _prefix, event, value in events:
        if event in ("start_map", "start_array"):
            skip_value(events, opened=True)
            return None
        return value
    return None


def _json_error(
    path: Path, reader: TrackingReader, exc: Exception, where: str | None = None
) -> ExportFormatError:
    position = None if reader.is_empty else reader.error_position(exc)
    problem = describe_json_error(exc, reader)
    if "invalid bytes in UTF8" in str(exc):
        # yajl reports bad UTF-8 as a lexical error; say what it means, and where.
        problem = "the file is not UTF-8 text (Telegram Desktop writes UTF-8)"
        offset = _first_invalid_utf8(reader.chunk)
        if offset is not None:
            position = f"byte {reader.chunk_start + offset}"
    if where and position:
        position = f"{position}, {where}"
    return ExportFormatError(path, problem, position)


def _first_invalid_utf8(chunk: bytes) -> int | None:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A chunk may end inside a character: that is not the fault.
        if exc.reason != "unexpected end of data":
            return exc.start
    return None


def _read_header(path: Path) -> dict[str, Any] | None:
    """Check the file's shape: a chat's header (name, type, id), or None for an account."""
    with open_export(path) as reader:
        start = reader.read(4)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in start:
        # An editor re-saved it; the JSON parser would only see an invalid character.
        raise ExportFormatError(
            path,
            "the file is UTF-16 text, but Telegram Desktop writes UTF-8: "
            "re-export the chat, or save the file as UTF-8",
            "byte 0",
        )
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
                    "not a Telegram export: the top-level JSON value is "
                    f"{json_kind(first[1])}, not an object",
                )
            for _prefix, event, key in events:
                if event == "end_map":
                    break
                if key in _CHAT_LISTS or (key == "about" and not found):
                    return None
                if key == "messages":
                    opening = next(events, None)
                    if opening is None or opening[1] != "start_array":
                        kind = "nothing" if opening is None else json_kind(opening[1])
                        raise ExportFormatError(path, f"'messages' is {kind}, not an array")
                    if "id" not in found:
                        raise ExportFormatError(
                            path,
                            "not a Telegram chat export: the chat 'id' must come before "
                            "'messages' (Telegram Desktop writes name, type and id first)",
                        )
                    return found
                if key in ("name", "type", "id"):
                    found[key] = _scalar(events)
                else:
                    skip_value(events)
        except JSON_ERRORS as exc:
            raise _json_error(path, reader, exc) from exc
    raise ExportFormatError(path, "not a Telegram export: no 'messages' array and no 'chats' list")


def _stream_chat(context: _Context, converter: _ChatConverter) -> Iterator[TelegramEvent]:
    """Yield the events of a single-chat export, reading the file lazily."""
    with open_export(context.path) as reader:
        number = 0
        message: Any = None
        try:
            # The C parser builds each message on its own: the fast path.
            for message in BACKEND.items(reader, "messages.item", use_float=True):
                number += 1
                yield from converter.convert(message, number)
        except JSON_ERRORS as exc:
            raise _json_error(context.path, reader, exc, _after(number, message)) from exc


def _after(number: int, last: Any) -> str:
    if number == 0:
        return "before the first message"
    last_id = last.get("id") if isinstance(last, dict) else None
    return f"after message #{number}" + (f" (id {last_id})" if last_id is not None else "")


def _stream_account(context: _Context) -> Iterator[TelegramEvent]:
    """Yield the events of every chat of a whole-account export, one chat after another."""
    path = context.path
    with open_export(path) as reader:
        events = BACKEND.parse(reader, use_float=True)
        walker = _AccountWalker(context, events)
        try:
            next(events)  # the top-level "{", checked by _read_header
            for _prefix, event, key in events:
                if event == "end_map":
                    break
                if key in _CHAT_LISTS:
                    yield from walker.chat_list(key)
                else:
                    skip_value(events)
        except JSON_ERRORS as exc:
            raise _json_error(path, reader, exc, walker.where()) from exc


class _AccountWalker:
    """Walks the chat lists of a whole-account export, one chat at a time."""

    def __init__(self, context: _Context, events: Iterator[tuple[str, str, Any]]) -> None:
        self.context = context
        self.events = events
        self.chat_number = 0
        self.chat_label: str | None = None
        self.converter: _ChatConverter | None = None
        self.message_number = 0

    def where(self) -> str:
        """Where the walk is, for errors: the chat and the last message read."""
        if self.converter is not None:
            return f"in {self.converter.label}, {_after(self.message_number, None)}"
        if self.chat_label is not None:
            return f"in {self.chat_label}, before its messages"
        return "before the first chat"

    def _expect(self, opening: str, what: str) -> None:
        found = next(self.events, None)
        if found is None or found[1] != opening:
            kind = "nothing" if found is None else json_kind(found[1])
            raise ExportFormatError(
                self.context.path, f"{what} is {kind}, not {json_kind(opening)}"
            )

    def chat_list(self, section: str) -> Iterator[TelegramEvent]:
        """Yield the events of the chats of ``section`` (``chats`` or ``left_chats``)."""
        events = self.events
        self._expect("start_map", f"'{section}'")
        for _prefix, event, key in events:
            if event == "end_map":
                return
            if key != "list":
                skip_value(events)
                continue
            self._expect("start_array", f"'{section}.list'")
            for _p, item_event, _v in events:
                if item_event == "end_array":
                    break
                if item_event != "start_map":
                    raise ExportFormatError(
                        self.context.path,
                        f"'{section}.list' holds {json_kind(item_event)}, not chat objects",
                    )
                yield from self._chat(section)

    def _chat(self, section: str) -> Iterator[TelegramEvent]:
        """Yield one chat's events; its opening ``{`` has been read."""
        events = self.events
        self.chat_number += 1
        self.converter = None
        self.message_number = 0
        header: dict[str, Any] = {}
        label = self.chat_label = f"chat #{self.chat_number} of '{section}'"
        for _prefix, event, key in events:
            if event == "end_map":
                return
            if key in ("name", "type", "id"):
                header[key] = _scalar(events)
            elif key == "messages":
                self._expect("start_array", f"'messages' of {label}")
                if "id" not in header:
                    raise ExportFormatError(
                        self.context.path, "missing the chat 'id' before 'messages'", label
                    )
                self.converter = _ChatConverter(self.context, header, label)
                yield from self._messages(f"{section}.list.item.messages")
            else:
                skip_value(events)

    def _messages(self, prefix: str) -> Iterator[TelegramEvent]:
        """Build and convert the messages of the current chat, up to the array's end."""
        converter = self.converter
        assert converter is not None
        # The parse events of this chat's messages only: the iterator stops at the
        # array's closing event. Both this and the builder fed below run in C, so
        # a message costs about what it does in a single-chat export.
        chat_events = iter(self.events.__next__, (prefix, "end_array", None))
        built = ijson.utils.sendable_list()
        send = BACKEND.items_basecoro(built, prefix + ".item").send
        failure: Exception | None = None
        while failure is None:
            try:
                fed = len(list(map(send, islice(chat_events, _BATCH_EVENTS))))
            except JSON_ERRORS as exc:
                # Messages completed before the damage are delivered first, as they
                # are in single-chat exports; the error is then raised as it came.
                failure = exc
            for message in built:
                self.message_number += 1
                yield from converter.convert(message, self.message_number)
            del built[:]
            if failure is None and fed < _BATCH_EVENTS:
                return
        raise failure


# --------------------------------------------------------------------------- converting


class _FieldError(ValueError):
    """A source field has the wrong shape."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}' {problem}")
        self.field = field


class _MissingFieldError(_FieldError):
    """A required source field is absent."""

    def __init__(self, field: str) -> None:
        ValueError.__init__(self, f"missing required field '{field}'")
        self.field = field


def _int_id(value: Any, field: str) -> int:
    """A Telegram numeric id (message, chat, user), as written or as a digit string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if value is None:
        raise _MissingFieldError(field)
    raise _FieldError(field, "must be a numeric id")


def _from_unix(value: Any, field: str) -> datetime:
    try:
        # Telegram writes a string of digits; a number from another tool is fine too.
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _FieldError(field, "must be a Unix time in seconds") from None


def _from_local(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise _FieldError(field, "must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError(field, f"is not a valid date ({value!r})") from None
    if parsed.tzinfo is None:
        # Without date_unixtime the exporter's offset is unknown: UTC is the
        # least surprising guess, and the text as written is kept in raw.
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _name_id(name: str) -> str:
    """The native id of a member known only by name (see the module docstring)."""
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    return f"name:{digest[:16]}"


def _peer_chat_id(value: Any) -> str:
    """The bare chat id of a peer written as ``channel123``, ``chat123`` or ``user123``."""
    text = str(value)
    return text.lstrip("abcdefghijklmnopqrstuvwxyz_") or text


def _flatten(text: Any) -> tuple[str, list[Any] | None]:
    """Plain text and, when the source had them, the entity parts it was made of."""
    if isinstance(text, str):
        return text, None
    if text is None:
        return "", None
    if isinstance(text, list):
        parts: list[str] = []
        for part in text:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                parts.append(str(part.get("text") or ""))
            else:
                raise _FieldError("text", "must hold strings and entity objects")
        return "".join(parts), text
    raise _FieldError("text", "must be a string or a list")


def _formatted(entities: list[Any]) -> bool:
    """Whether an entity list says more than its plain text."""
    return any(not isinstance(item, str) and item.get("type") != "plain" for item in entities)


class _Context:
    """What every chat of one export shares: where it comes from, and who is who."""

    def __init__(self, path: Path, community_id: str) -> None:
        self.path = path
        self.community_id = community_id
        self._members: dict[tuple[str, str], Member] = {}
        # (xxx_id, name) as written -> member: authors repeat from message to message.
        self._people: dict[tuple[Any, Any], Member] = {}
        # Display name -> native id, learned from authors and actors, to identify
        # members that service messages list by name only.
        self._names: dict[str, str] = {}
        self.system = self.member("system", "Telegram")

    def stable(self, native_id: str) -> str:
        """The stable id of a Telegram native id in this community."""
        return stable_id(_PLATFORM, self.community_id, native_id)

    def member(self, native_id: str, name: str) -> Member:
        """The member with this id and name; built once, then reused."""
        key = (native_id, name)
        member = self._members.get(key)
        if member is None:
            if len(self._members) >= _CACHE_SIZE:
                self._members.clear()
            member = Member(id=self.stable(native_id), native_id=native_id, name=name)
            self._members[key] = member
        return member

    def person(self, native: Any, name: Any, field: str) -> Member:
        """A member from an ``xxx_id``/name pair (``from_id``/``from``, ``actor_id``/``actor``)."""
        if name is not None and type(name) is not str:
            raise _FieldError(field, "must be a string")
        if isinstance(native, list | dict):
            raise _FieldError(f"{field}_id", "must be a string id")
        known = self._people.get((native, name))
        if known is not None:
            return known
        member = self._person(native, name, field)
        if len(self._people) >= _CACHE_SIZE:
            self._people.clear()
        self._people[(native, name)] = member
        return member

    def _person(self, native: Any, name: Any, field: str) -> Member:
        if isinstance(native, int) and not isinstance(native, bool):
            # Exports before 2021 wrote bare user ids.
            native = f"user{native}"
        if not native:
            if not name:
                return self.system
            return self.named(name)
        if not isinstance(native, str):
            raise _FieldError(f"{field}_id", "must be a string id")
        if not name:
            # A deleted account has a null name; Telegram shows it so. Many share
            # that name, so it identifies no one.
            return self.member(native, "Deleted Account")
        if self._names.get(name) != native:
            if len(self._names) >= _CACHE_SIZE:
                self._names.clear()
            self._names[name] = native
        return self.member(native, name)

    def named(self, name: str, actor: Member | None = None) -> Member:
        """A member known only by display name."""
        if actor is not None and name == actor.name:
            return actor
        native = self._names.get(name) or _name_id(name)
        return self.member(native, name)


class _ChatConverter:
    """Turns the message objects of one chat into events."""

    def __init__(self, context: _Context, header: dict[str, Any], label: str) -> None:
        self.context = context
        self.path = context.path
        self.community_id = context.community_id
        try:
            chat_id = _int_id(header.get("id"), "id")
        except _FieldError as exc:
            raise ExportFormatError(self.path, f"chat {exc}", label) from exc
        self.chat_id = str(chat_id)
        kind = header.get("type")
        name = header.get("name")
        if not isinstance(name, str) or not name:
            name = _UNNAMED_CHATS.get(str(kind), f"Telegram chat {chat_id}")
        self.channel = ChannelRef(id=self.chat_id, name=name)
        self._sid_prefix = context.stable("")
        self.label = f"{label} (chat {name!r}, id {chat_id})" if label != "header" else "chat"
        # Forum topics: id of a topic's opening message -> the topic; and the topic
        # of messages posted in one, so that replies to them land in it too.
        self._topics: dict[int, ThreadRef] = {}
        self._in_topic: dict[int, ThreadRef] = {}

    def _stable(self, message_id: int | str, chat_id: str | None = None) -> str:
        return f"{self._sid_prefix}{chat_id or self.chat_id}:{message_id}"

    def convert(self, message: Any, number: int) -> Sequence[TelegramEvent]:
        """Turn one message object into its events (none, one, or one per member).

        Args:
            message: The message object as parsed from the file.
            number: Its position in the chat's ``messages``, counted from 1, for errors.

        Returns:
            The events the message stands for.

        Raises:
            ExportFormatError: the message lacks a required field or has a bad value.
        """
        try:
            return self._convert(message)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # ValueError covers pydantic's ValidationError and bad dates.
            raise self._explain(message, number, exc) from exc

    def _convert(self, message: Any) -> Sequence[TelegramEvent]:
        if not isinstance(message, dict):
            raise _FieldError("message", "is not a JSON object")
        message_id = _int_id(message.get("id"), "id")
        kind = message.get("type") or "message"
        unix = message.get("date_unixtime")
        raw_date: str | None = None
        if unix is not None:
            created_at = _from_unix(unix, "date_unixtime")
        elif message.get("date") is not None:
            created_at = _from_local(message["date"], "date")
            raw_date = message["date"]
        elif kind in ("message", "service"):
            raise _MissingFieldError("date")
        else:
            # "unsupported" and other content Telegram could not export: no date,
            # nothing to say, nowhere to file it.
            return ()

        if kind == "service":
            return self._service(message, message_id, created_at, raw_date)
        author = self.context.person(message.get("from_id"), message.get("from"), "from")
        if kind == "message":
            event = self._message(message, message_id, created_at, author, raw_date)
        else:
            # A kind this importer does not know yet: kept, but not analysed as chat.
            event = self._message(
                message,
                message_id,
                created_at,
                author,
                raw_date,
                message_type=MessageType.SYSTEM,
                raw_type=str(kind),
            )
        return (event,)

    def _message(
        self,
        message: dict[str, Any],
        message_id: int,
        created_at: datetime,
        author: Member,
        raw_date: str | None,
        *,
        message_type: MessageType = MessageType.DEFAULT,
        raw_type: str | None = None,
        reply_to: int | None = None,
    ) -> MessageIngested:
        """Build the ``MessageIngested`` of a message (or of a service message kept as one).

        ``raw_type`` is the source ``type`` to keep in ``raw`` (it is implied for
        plain messages); ``reply_to`` the message a service message is about.
        """
        native_id = f"{self.chat_id}:{message_id}"
        sid = self._sid_prefix + native_id
        raw = unmodeled(message, _MESSAGE_FIELDS)
        if raw_type is not None:
            raw["type"] = raw_type
        if raw_date is not None:
            raw["date"] = raw_date
        payload: dict[str, Any] = {
            "id": sid,
            "platform": Platform.TELEGRAM,
            "community_id": self.community_id,
            "native_id": native_id,
            "channel": self.channel,
            "author": author,
            "type": message_type,
            "created_at": created_at,
            "raw": raw,
        }
        text = message.get("text")
        entities = message.get("text_entities")
        if type(text) is str and (type(entities) is not list or len(entities) < 2):
            # The common case: Telegram writes a plain string when there is no formatting.
            payload["text"] = text
        else:
            payload["text"], parts = _flatten(text)
            if not isinstance(entities, list) and parts is not None:
                # Exports before text_entities existed: the text list is the entity list.
                entities = [
                    {"type": "plain", "text": part} if isinstance(part, str) else part
                    for part in parts
                ]
            if entities and _formatted(entities):
                raw["text_entities"] = entities
                payload["mentions"] = self._mentions(entities)

        edited_at: datetime | None = None
        # Most messages have none of these: one set operation skips them all.
        if message.keys() & _OPTIONAL_FIELDS:
            if message.get("reply_to_message_id") is not None:
                payload["thread"], reply_to_id = self._parent(message, message_id, raw)
                payload["reply_to_id"] = reply_to_id
                if reply_to_id is not None and message_type is MessageType.DEFAULT:
                    payload["type"] = MessageType.REPLY
            edited_at = _edited_at(message, raw)
            if message.get("photo") or message.get("file"):
                payload["attachments"] = self._attachments(message, raw)
            reactions = message.get("reactions")
            if reactions:
                payload["reactions"] = self._reactions(reactions, raw)
        if reply_to is not None:
            payload["reply_to_id"] = self._stable(reply_to)
        payload["edited_at"] = edited_at
        return message_ingested(
            self.community_id, payload, created_at=created_at, edited_at=edited_at
        )

    def _parent(
        self, message: dict[str, Any], message_id: int, raw: dict[str, Any]
    ) -> tuple[ThreadRef | None, str | None]:
        """The forum topic a message is in, and the stable id of the message it replies to."""
        parent_id = _int_id(message["reply_to_message_id"], "reply_to_message_id")
        peer = message.get("reply_to_peer_id")
        peer_chat = _peer_chat_id(peer) if peer else self.chat_id
        if peer_chat != self.chat_id:
            # A reply to a message of another chat (a channel's discussion group...).
            raw["reply_to_peer_id"] = peer
            return None, self._stable(parent_id, peer_chat)
        reply_to_id: str | None = None
        thread = self._topics.get(parent_id)
        if thread is None:
            reply_to_id = self._stable(parent_id)
            thread = self._in_topic.get(parent_id)
        if thread is not None:
            if len(self._in_topic) >= _CACHE_SIZE:
                # Forgetting old messages only costs replies to them their topic.
                self._in_topic.clear()
            self._in_topic[message_id] = thread
        return thread, reply_to_id

    def _mentions(self, entities: list[Any]) -> list[Mention]:
        mentions: list[Mention] = []
        seen: set[str] = set()
        for index, entity in enumerate(entities):
            if isinstance(entity, str) or entity.get("type") != "mention_name":
                continue
            user_id = _int_id(entity.get("user_id"), f"text_entities[{index}].user_id")
            member_id = self.context.stable(f"user{user_id}")
            if member_id not in seen:
                seen.add(member_id)
                name = str(entity.get("text") or "").removeprefix("@")
                mentions.append(Mention(member_id=member_id, name=name))
        return mentions

    def _attachments(self, message: dict[str, Any], raw: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        extras: list[dict[str, Any]] = []
        photo = message.get("photo")
        if photo:
            out.append(
                _attachment(
                    photo,
                    name=None,
                    size=message.get("photo_file_size"),
                    content_type=None,
                    extras=extras,
                    kind="photo",
                )
            )
        file = message.get("file")
        if file:
            out.append(
                _attachment(
                    file,
                    name=message.get("file_name"),
                    size=message.get("file_size"),
                    content_type=message.get("mime_type"),
                    extras=extras,
                    kind="file",
                )
            )
        # Same order as payload.attachments.
        raw["attachments"] = extras
        return out

    def _reactions(self, reactions: Any, raw: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(reactions, list):
            raise _FieldError("reactions", "must be a list of objects")
        out: list[dict[str, Any]] = []
        extras: list[dict[str, Any]] = []
        for index, item in enumerate(reactions):
            if not isinstance(item, dict):
                raise _FieldError(f"reactions[{index}]", "must be an object")
            kind = item.get("type") or "emoji"
            document_id = item.get("document_id")
            if kind == "emoji":
                emoji = item.get("emoji") or "<unknown emoji>"
            elif kind == "custom_emoji":
                emoji = "<custom emoji>"
            elif kind == "paid":
                emoji = "⭐"  # paid reactions are Telegram Stars
            else:
                emoji = f"<{kind}>"
            out.append(
                {
                    "emoji": emoji,
                    "emoji_id": str(document_id) if document_id not in (None, "") else None,
                    "count": item.get("count"),
                }
            )
            extra = unmodeled(item, _REACTION_FIELDS)
            if extra.get("type") == "emoji":
                del extra["type"]
            extras.append(extra)
        if any(extras):
            # Same order as payload.reactions (who reacted recently, when).
            raw["reactions"] = extras
        return out

    # ----------------------------------------------------------------- service messages

    def _service(
        self,
        message: dict[str, Any],
        message_id: int,
        created_at: datetime,
        raw_date: str | None,
    ) -> Sequence[TelegramEvent]:
        action = message.get("action")
        actor = self.context.person(message.get("actor_id"), message.get("actor"), "actor")
        sid = self._stable(message_id)
        if action in _JOIN_ACTIONS:
            return (self._membership(MemberJoined, "member.joined", actor, sid, created_at),)
        if action in ("invite_members", "remove_members"):
            names = _member_names(message)
            if names:
                joined = action == "invite_members"
                kind = MemberJoined if joined else MemberLeft
                event_type = "member.joined" if joined else "member.left"
                return tuple(
                    self._membership(
                        kind, event_type, self.context.named(name, actor), sid, created_at
                    )
                    for name in names
                )
        reply_to: int | None = None
        if action == "pin_message":
            message_type = MessageType.PINNED_NOTICE
            pinned = message.get("message_id")
            if pinned is not None:
                reply_to = _int_id(pinned, "message_id")
                # Said by reply_to_id: not worth a copy in raw.
                message = {key: value for key, value in message.items() if key != "message_id"}
        elif action == "topic_created":
            message_type = MessageType.THREAD_STARTER
            title = message.get("title")
            self._topics[message_id] = ThreadRef(
                id=sid, name=title if isinstance(title, str) and title else None
            )
        else:
            message_type = MessageType.SYSTEM
        event = self._message(
            message,
            message_id,
            created_at,
            actor,
            raw_date,
            message_type=message_type,
            raw_type="service" if message_type is MessageType.SYSTEM else None,
            reply_to=reply_to,
        )
        if action == "create_group":
            # The founding members joined when the group was created.
            founders = [
                self._membership(
                    MemberJoined, "member.joined", self.context.named(name, actor), sid, created_at
                )
                for name in _member_names(message)
            ]
            return (event, *founders)
        return (event,)

    def _membership(
        self,
        kind: type[MemberJoined] | type[MemberLeft],
        event_type: str,
        member: Member,
        source_id: str,
        at: datetime,
    ) -> MemberJoined | MemberLeft:
        # One service message can list several members: the member is part of the id.
        return kind.model_validate(
            {
                "event_id": _event_id(event_type, source_id, member.id),
                "occurred_at": at,
                "community_id": self.community_id,
                "payload": {
                    "member": member,
                    "platform": Platform.TELEGRAM,
                    "community_id": self.community_id,
                    "at": at,
                    "channel": self.channel,
                    "source_id": source_id,
                },
            }
        )

    # ------------------------------------------------------------------------- errors

    def _explain(self, message: Any, number: int, exc: Exception) -> ExportFormatError:
        """Build the error for a message that could not be converted."""
        position = f"message #{number}"
        if self.label != "chat":
            position = f"{self.label}, {position}"
        if not isinstance(message, dict):
            return ExportFormatError(self.path, "message is not a JSON object", position)
        message_id = message.get("id")
        if isinstance(message_id, str | int) and not isinstance(message_id, bool):
            position += f" (id {message_id})"
        if isinstance(exc, _FieldError):
            problem = str(exc)
        elif isinstance(exc, ValidationError):
            problem = describe_contract_error(exc)
        else:
            problem = f"cannot read message ({type(exc).__name__}: {exc})"
        return ExportFormatError(self.path, problem, position)


def _edited_at(message: dict[str, Any], raw: dict[str, Any]) -> datetime | None:
    edited_unix = message.get("edited_unixtime")
    if edited_unix is not None:
        return _from_unix(edited_unix, "edited_unixtime")
    edited = message.get("edited")
    if edited is None:
        return None
    raw["edited"] = edited
    return _from_local(edited, "edited")


def _member_names(message: dict[str, Any]) -> list[str]:
    """The names a service message lists; deleted accounts (null) cannot be identified."""
    members = message.get("members")
    if not isinstance(members, list):
        return []
    return [name for name in members if isinstance(name, str) and name]


def _attachment(
    location: Any,
    *,
    name: Any,
    size: Any,
    content_type: Any,
    extras: list[dict[str, Any]],
    kind: str,
) -> dict[str, Any]:
    """One attachment; where the file is (or why it is missing) goes to ``extras``."""
    location = str(location)
    extra: dict[str, Any] = {"kind": kind}
    if location.startswith("("):
        # "(File not included. Change data exporting settings to download.)"
        extra["not_included"] = location
        filename = name
    else:
        # A path relative to the export folder, e.g. "photos/photo_1@01-01-2024.jpg".
        extra["path"] = location
        filename = name or location.rsplit("/", 1)[-1]
    extras.append(extra)
    return {
        "filename": filename or None,
        "size_bytes": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "content_type": content_type or None,
    }
