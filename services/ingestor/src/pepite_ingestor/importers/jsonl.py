"""Stream a generic JSON Lines export as Pépite events.

The generic format is for platforms Pépite has no dedicated importer for (Circle,
a home-grown forum, a bot's log): one JSON object per line, each a record whose
``"kind"`` says what it is::

    {"kind": "message", "id": "m1", "channel": {"id": "c1", "name": "general"},
     "author": {"id": "u1", "name": "ada"}, "text": "hi", "created_at": "2024-05-01T12:00:00Z"}
    {"kind": "edit", "id": "m1", "channel": {"id": "c1"}, "edited_at": "...", "text": "hi!"}
    {"kind": "deletion", "id": "m1", "channel": {"id": "c1"}, "deleted_at": "..."}
    {"kind": "member_joined", "member": {"id": "u2", "name": "bob"}, "at": "..."}

The record models below are the format's definition (docs/formats/jsonl.md shows
their JSON Schema) and are shared with the signed webhook, which accepts the same
records over HTTP. Fields a model does not name are accepted and kept in the
event's ``raw`` sub-document, so nothing a producer sends is lost.

The file is read one line at a time, so memory stays flat whatever its size. The
import stops at the first line it cannot read, naming the line and the field.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

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
    ThreadRef,
    stable_id,
)
from pepite_ingestor.importers._jsonstream import BACKEND, JSON_ERRORS, TrackingReader, open_export
from pepite_ingestor.importers.common import (
    ImportedEvent,
    fast_event_id,
    message_ingested,
    validate_community_id,
)
from pepite_ingestor.importers.errors import ExportFormatError

__all__ = [
    "KINDS",
    "RECORD_ADAPTER",
    "AttachmentSpec",
    "ChannelSpec",
    "DeletionRecord",
    "EditRecord",
    "JsonlConverter",
    "JsonlRecord",
    "MemberJoinedRecord",
    "MemberLeftRecord",
    "MentionSpec",
    "MessageRecord",
    "ReactionSpec",
    "ThreadSpec",
    "UserSpec",
    "describe_record_error",
    "iter_jsonl_export",
    "record_json_schema",
    "sniff_jsonl",
]

#: A platform's own id for something; numbers are accepted and read as strings.
NativeId = Annotated[str, StringConstraints(min_length=1)]


class _Spec(BaseModel):
    """Base of every record model.

    ``extra="allow"``: a field the format does not name is accepted and ends up in
    the event's ``raw``, because a producer's extra data is worth more than a
    rejected line. The price is that a misspelt optional field is kept rather than
    flagged; misspelt required fields are still reported.
    """

    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class ChannelSpec(_Spec):
    """Where a message was posted."""

    id: NativeId
    name: str | None = Field(default=None, description="Defaults to the id.")
    category: str | None = None
    topic: str | None = None


class UserSpec(_Spec):
    """A message author, a mentioned or a joining member."""

    id: NativeId
    name: str
    display_name: str | None = None
    is_bot: bool = False
    avatar_url: str | None = None


class ThreadSpec(_Spec):
    """The thread a message belongs to."""

    id: NativeId
    name: str | None = None


class AttachmentSpec(_Spec):
    """A file attached to a message."""

    id: str | None = None
    url: str | None = None
    filename: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    content_type: str | None = None


class ReactionSpec(_Spec):
    """An emoji and how many members reacted with it."""

    emoji: Annotated[str, StringConstraints(min_length=1)]
    emoji_id: str | None = None
    count: int = Field(ge=0)


class MentionSpec(_Spec):
    """A member named in a message."""

    id: NativeId
    name: str


class _RecordSpec(_Spec):
    platform: Platform = Field(
        default=Platform.GENERIC,
        description="Where the community lives; part of every stable id.",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Anything else; kept as-is in the event's raw."
    )


class MessageRecord(_RecordSpec):
    """A message, as it is now (with ``edited_at`` if it was edited)."""

    kind: Literal["message"]
    id: NativeId
    channel: ChannelSpec
    author: UserSpec
    text: str
    created_at: AwareDatetime
    edited_at: AwareDatetime | None = None
    type: MessageType | None = Field(
        default=None, description="Defaults to 'reply' when reply_to is set, else 'default'."
    )
    is_pinned: bool = False
    reply_to: NativeId | None = Field(default=None, description="Native id of the parent.")
    thread: ThreadSpec | None = None
    attachments: list[AttachmentSpec] = Field(default_factory=list)
    reactions: list[ReactionSpec] = Field(default_factory=list)
    mentions: list[MentionSpec] = Field(default_factory=list)


class EditRecord(_RecordSpec):
    """A message's new content; fields left out did not change."""

    kind: Literal["edit"]
    id: NativeId
    channel: ChannelSpec
    edited_at: AwareDatetime
    text: str | None = None
    attachments: list[AttachmentSpec] | None = None
    mentions: list[MentionSpec] | None = None


class DeletionRecord(_RecordSpec):
    """A message removed from its platform."""

    kind: Literal["deletion"]
    id: NativeId
    channel: ChannelSpec
    deleted_at: AwareDatetime


class _MembershipRecord(_RecordSpec):
    id: NativeId | None = Field(
        default=None, description="The platform's id of this join/leave record, if any."
    )
    member: UserSpec
    at: AwareDatetime
    channel: ChannelSpec | None = Field(
        default=None, description="Set when the member joined or left one channel only."
    )


class MemberJoinedRecord(_MembershipRecord):
    """A member joined the community (or one of its channels)."""

    kind: Literal["member_joined"]


class MemberLeftRecord(_MembershipRecord):
    """A member left the community (or one of its channels)."""

    kind: Literal["member_left"]


#: One line of a JSON Lines export, or one record posted to the webhook.
JsonlRecord = Annotated[
    MessageRecord | EditRecord | DeletionRecord | MemberJoinedRecord | MemberLeftRecord,
    Field(discriminator="kind"),
]

#: Validates a record from JSON bytes or from parsed JSON.
RECORD_ADAPTER: TypeAdapter[JsonlRecord] = TypeAdapter(JsonlRecord)

#: Every value ``"kind"`` may take.
KINDS: tuple[str, ...] = ("message", "edit", "deletion", "member_joined", "member_left")
_KIND_SET = frozenset(KINDS)


def record_json_schema() -> dict[str, Any]:
    """The JSON Schema of one record, as published in docs/formats/jsonl.schema.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pépite generic JSON Lines record",
        "description": "One line of a generic JSON Lines export, or one webhook record. "
        "Fields not named here are accepted and kept in the event's raw sub-document.",
        **RECORD_ADAPTER.json_schema(),
    }


# ----------------------------------------------------------------------------- errors


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``("author", "id")`` -> ``author.id``; ``("reactions", 0)`` -> ``reactions[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def describe_record_error(exc: ValidationError) -> str:
    """Say in one line what is wrong with a record, naming the field.

    Args:
        exc: The error from validating one record with :data:`RECORD_ADAPTER`.

    Returns:
        E.g. ``"missing required field 'author.id'"`` or
        ``"unknown kind 'note' (expected one of: message, edit, ...)"``.
    """
    error = exc.errors(include_url=False)[0]
    kind = error["type"]
    loc = error["loc"]
    expected = ", ".join(KINDS)
    if kind == "json_invalid":
        detail = error.get("ctx", {}).get("error", error["msg"])
        return f"invalid JSON ({detail})"
    if kind == "union_tag_not_found":
        return f"missing required field 'kind' (one of: {expected})"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        return f"unknown kind {tag!r} (expected one of: {expected})"
    if not loc:
        return "a record must be a JSON object"
    # The first part of the location is the record's kind (the union member).
    field = _field_path(loc[1:]) if loc[0] in _KIND_SET else _field_path(loc)
    if kind == "missing":
        return f"missing required field '{field}'"
    return f"invalid value for '{field}': {error['msg']}"


# ------------------------------------------------------------------------- conversion

# Bounds the member and channel caches so memory stays flat on huge communities.
_CACHE_SIZE = 4096
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _kept(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values worth keeping in ``raw``: empty ones say nothing and are dropped.

    ``False`` and ``0`` are kept: in data a producer chose to send, they say something.
    """
    if not values:
        return {}
    return {key: value for key, value in values.items() if value not in _EMPTY}


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class JsonlConverter:
    """Turns validated records of one community into contract events.

    Members and channels repeat from record to record; they are built once and
    reused, which is most of what makes the conversion fast.
    """

    def __init__(self, community_id: str) -> None:
        """Prepare a converter.

        Args:
            community_id: The Pépite community the records belong to.

        Raises:
            ValueError: ``community_id`` is not a valid community id.
        """
        validate_community_id(community_id)
        self.community_id = community_id
        self._members: dict[tuple[Any, ...], Member] = {}
        self._channels: dict[tuple[Any, ...], ChannelRef] = {}
        self._prefixes: dict[str, str] = {}

    def convert(self, record: JsonlRecord) -> ImportedEvent:
        """Turn one record into its event.

        Args:
            record: A record validated by :data:`RECORD_ADAPTER`.

        Returns:
            ``MessageIngested``, ``MessageEdited``, ``MessageDeleted``,
            ``MemberJoined`` or ``MemberLeft``, with a deterministic event id.

        Raises:
            pydantic.ValidationError: the record holds a value the contracts refuse.
        """
        if isinstance(record, MessageRecord):
            return self._message(record)
        if isinstance(record, EditRecord):
            return self._edit(record)
        if isinstance(record, DeletionRecord):
            return self._deletion(record)
        return self._membership(record)

    def _member(self, platform: str, user: UserSpec) -> Member:
        key = (platform, user.id, user.name, user.display_name, user.is_bot, user.avatar_url)
        member = self._members.get(key)
        if member is None:
            if len(self._members) >= _CACHE_SIZE:
                self._members.clear()
            member = self._members[key] = Member(
                id=stable_id(platform, self.community_id, user.id),
                native_id=user.id,
                name=user.name,
                display_name=user.display_name,
                is_bot=user.is_bot,
                avatar_url=user.avatar_url,
            )
        return member

    def _channel(self, channel: ChannelSpec) -> ChannelRef:
        key = (channel.id, channel.name, channel.category, channel.topic)
        ref = self._channels.get(key)
        if ref is None:
            if len(self._channels) >= _CACHE_SIZE:
                self._channels.clear()
            ref = self._channels[key] = ChannelRef(
                id=channel.id,
                name=channel.name if channel.name is not None else channel.id,
                category=channel.category,
                topic=channel.topic,
            )
        return ref

    def _prefix(self, platform: str) -> str:
        """``<platform>:<community>:``, which a native id completes into a stable id."""
        prefix = self._prefixes.get(platform)
        if prefix is None:
            prefix = self._prefixes[platform] = stable_id(platform, self.community_id, "")
        return prefix

    @staticmethod
    def _raw(record: _RecordSpec) -> dict[str, Any]:
        """Unknown top-level fields, then ``extra`` (which wins on a clash)."""
        raw = _kept(record.__pydantic_extra__)
        if record.extra:
            raw.update(_kept(record.extra))
        return raw

    @staticmethod
    def _keep(raw: dict[str, Any], name: str, spec: _Spec | None) -> None:
        """Keep the unknown fields of a nested object under its name."""
        if spec is not None:
            extra = _kept(spec.__pydantic_extra__)
            if extra:
                raw[name] = extra

    @staticmethod
    def _nested_extras(raw: dict[str, Any], name: str, specs: list[Any] | None) -> None:
        """Keep the unknown fields of list items, in the same order as the payload's list."""
        if not specs:
            return
        extras = [_kept(spec.__pydantic_extra__) for spec in specs]
        if any(extras):
            raw[name] = extras

    def _mentions(self, platform: str, mentions: list[MentionSpec]) -> list[Mention]:
        return [
            Mention(member_id=self._prefix(platform) + item.id, name=item.name) for item in mentions
        ]

    @staticmethod
    def _attachments(attachments: list[AttachmentSpec]) -> list[dict[str, Any]]:
        return [
            {
                "id": item.id,
                "url": item.url,
                "filename": item.filename,
                "size_bytes": item.size_bytes,
                "content_type": item.content_type,
            }
            for item in attachments
        ]

    def _message(self, record: MessageRecord) -> MessageIngested:
        # The enum itself: its value costs a descriptor call, and it formats as its value.
        platform = record.platform
        prefix = self._prefix(platform)
        sid = prefix + record.id
        # The contracts convert to UTC; doing it here too would only cost time.
        created_at = record.created_at
        edited_at = record.edited_at.astimezone(UTC) if record.edited_at is not None else None
        raw = self._raw(record)
        author, channel, thread = record.author, record.channel, record.thread
        # Most records carry no unknown nested fields: one truth test each, then done.
        if author.__pydantic_extra__:
            self._keep(raw, "author", author)
        if channel.__pydantic_extra__:
            self._keep(raw, "channel", channel)
        if thread is not None and thread.__pydantic_extra__:
            self._keep(raw, "thread", thread)
        self._nested_extras(raw, "attachments", record.attachments)
        self._nested_extras(raw, "reactions", record.reactions)
        self._nested_extras(raw, "mentions", record.mentions)

        message_type = record.type
        if message_type is None:
            message_type = MessageType.REPLY if record.reply_to else MessageType.DEFAULT
        payload: dict[str, Any] = {
            "id": sid,
            "platform": platform,
            "community_id": self.community_id,
            "native_id": record.id,
            "channel": self._channel(channel),
            "author": self._member(platform, author),
            "text": record.text,
            "type": message_type,
            "created_at": created_at,
            "edited_at": edited_at,
            "is_pinned": record.is_pinned,
            "raw": raw,
        }
        if thread is not None:
            payload["thread"] = ThreadRef(id=thread.id, name=thread.name)
        if record.reply_to:
            payload["reply_to_id"] = prefix + record.reply_to
        if record.attachments:
            payload["attachments"] = self._attachments(record.attachments)
        if record.reactions:
            payload["reactions"] = [
                {"emoji": item.emoji, "emoji_id": item.emoji_id, "count": item.count}
                for item in record.reactions
            ]
        if record.mentions:
            payload["mentions"] = self._mentions(platform, record.mentions)
        return message_ingested(
            self.community_id, payload, created_at=created_at, edited_at=edited_at
        )

    def _edit(self, record: EditRecord) -> MessageEdited:
        platform = record.platform.value
        sid = stable_id(platform, self.community_id, record.id)
        edited_at = _utc(record.edited_at)
        raw = self._raw(record)
        self._keep(raw, "channel", record.channel)
        self._nested_extras(raw, "attachments", record.attachments)
        self._nested_extras(raw, "mentions", record.mentions)
        payload: dict[str, Any] = {
            "id": sid,
            "platform": platform,
            "community_id": self.community_id,
            "native_id": record.id,
            "channel": self._channel(record.channel),
            "edited_at": edited_at,
            "text": record.text,
            "raw": raw,
        }
        if record.attachments is not None:
            payload["attachments"] = self._attachments(record.attachments)
        if record.mentions is not None:
            payload["mentions"] = self._mentions(platform, record.mentions)
        return MessageEdited.model_validate(
            {
                "event_id": fast_event_id("message.edited", sid, edited_at.isoformat()),
                "occurred_at": edited_at,
                "community_id": self.community_id,
                "payload": payload,
            }
        )

    def _deletion(self, record: DeletionRecord) -> MessageDeleted:
        platform = record.platform.value
        sid = stable_id(platform, self.community_id, record.id)
        deleted_at = _utc(record.deleted_at)
        raw = self._raw(record)
        self._keep(raw, "channel", record.channel)
        return MessageDeleted.model_validate(
            {
                "event_id": fast_event_id("message.deleted", sid),
                "occurred_at": deleted_at,
                "community_id": self.community_id,
                "payload": {
                    "id": sid,
                    "platform": platform,
                    "community_id": self.community_id,
                    "native_id": record.id,
                    "channel": self._channel(record.channel),
                    "deleted_at": deleted_at,
                    "raw": raw,
                },
            }
        )

    def _membership(self, record: MemberJoinedRecord | MemberLeftRecord) -> ImportedEvent:
        platform = record.platform.value
        member = self._member(platform, record.member)
        at = _utc(record.at)
        channel = self._channel(record.channel) if record.channel is not None else None
        event_type = "member.joined" if isinstance(record, MemberJoinedRecord) else "member.left"
        # The same join read twice (a re-import) gets the same event id. The contract
        # has no raw for membership changes yet, so their extra fields are not carried.
        event_id = fast_event_id(
            event_type, member.id, at.isoformat(), channel.id if channel else ""
        )
        data = {
            "event_id": event_id,
            "occurred_at": at,
            "community_id": self.community_id,
            "payload": {
                "member": member,
                "platform": platform,
                "community_id": self.community_id,
                "at": at,
                "channel": channel,
                "source_id": stable_id(platform, self.community_id, record.id)
                if record.id
                else None,
            },
        }
        if event_type == "member.joined":
            return MemberJoined.model_validate(data)
        return MemberLeft.model_validate(data)


# ---------------------------------------------------------------------------- reading

_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
_LINE_SUFFIXES = frozenset({".jsonl", ".ndjson"})
_CHUNK_SIZE = 1 << 16
_SNIFF_ERRORS: tuple[type[Exception], ...] = (*JSON_ERRORS, StopIteration)


def sniff_jsonl(path: Path, head: bytes) -> bool:
    """Recognise a generic JSON Lines export.

    The first non-empty line must be a JSON object with a string ``"kind"``, in a
    ``.jsonl``, ``.ndjson`` or ``.json`` file. In a ``.json`` file the kind must
    be a known one, so a JSON document of another format is never taken; in a
    ``.jsonl``/``.ndjson`` file any kind will do, so the importer can name an
    unknown kind instead of detection calling the file unknown.

    Args:
        path: The export file.
        head: Its first bytes.

    Returns:
        Whether the file looks like a generic JSON Lines export.
    """
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        return False
    text = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    if not text.startswith(b"{"):
        return False
    first_line = text.split(b"\n", 1)[0]
    try:
        events = BACKEND.parse(io.BytesIO(first_line))
        for prefix, event, value in events:
            if prefix == "" and event == "map_key" and value == "kind":
                _prefix, value_event, kind = next(events)
                if value_event != "string":
                    return False
                return suffix in _LINE_SUFFIXES or kind in _KIND_SET
    except _SNIFF_ERRORS:
        # Not one JSON object on the first line (a pretty-printed document, say).
        return False
    return False


def iter_jsonl_export(path: Path | str, community_id: str) -> Iterator[ImportedEvent]:
    """Read a generic JSON Lines export and yield one event per record, in file order.

    Blank lines are skipped; an empty file yields nothing. Reading stops at the
    first line that is not a valid record, with an error naming the line and the
    field: events before it have been yielded already (the import command says
    how many were published), and importing the fixed file again is safe since
    event and message ids are deterministic.

    Args:
        path: The ``.jsonl`` file.
        community_id: The Pépite community the records belong to.

    Returns:
        An iterator of events, read lazily from the file.

    Raises:
        ValueError: ``community_id`` is not a valid community id.
        ExportFormatError: the file cannot be opened (raised at once), or a line
            is not a valid record (raised while iterating).
    """
    converter = JsonlConverter(community_id)
    path = Path(path)
    with open_export(path):
        # Opened once up front so a missing file fails here, not at the first next().
        pass
    return _stream(path, converter)


def _lines(reader: TrackingReader) -> Iterator[bytes]:
    """The file's lines without their ``\n``, read in chunks (so a long line costs no more)."""
    pending: list[bytes] = []
    while chunk := reader.read(_CHUNK_SIZE):
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
            pending = []
        pending.append(parts.pop())
        yield from parts
    last = b"".join(pending)
    if last:
        yield last


def _stream(path: Path, converter: JsonlConverter) -> Iterator[ImportedEvent]:
    validate = RECORD_ADAPTER.validate_json
    convert = converter.convert
    with open_export(path) as reader:
        # The reader skips a UTF-8 byte order mark, so line 1 needs no special case.
        for number, line in enumerate(_lines(reader), 1):
            if not line.strip():
                continue
            try:
                event = convert(validate(line))
            except ValidationError as exc:
                problem, column = _problem(exc, line)
                position = f"line {number}" + (f", column {column}" if column else "")
                raise ExportFormatError(path, problem, position) from exc
            yield event


# The JSON parser counts lines within the record; the file's line is known already.
_JSON_LOCATION = re.compile(r" at line \d+ column (\d+)\)$")


def _problem(exc: ValidationError, line: bytes) -> tuple[str, str | None]:
    """What is wrong with a line, and the column for JSON syntax errors."""
    problem = describe_record_error(exc)
    if not problem.startswith("invalid JSON"):
        return problem, None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid JSON (the line is not UTF-8 text)", None
    found = _JSON_LOCATION.search(problem)
    if found is None:
        return problem, None
    return problem[: found.start()] + ")", found.group(1)
