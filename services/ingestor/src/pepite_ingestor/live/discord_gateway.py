"""Live Discord: a gateway client that files one community's messages and members as events.

The bot connects to Discord's gateway with discord.py and turns what the gateway
pushes into the same events the DiscordChatExporter importer
(:mod:`pepite_ingestor.importers.discord`) makes from an export: the same stable
ids, the same channel and thread mapping (a thread's messages are filed under its
parent channel, the thread itself goes to ``thread``), the same member ids and
the same event ids. A message seen live and later imported from an export is one
message downstream, and the second copy is a no-op.

============================  =====================================================
gateway event                 Pépite event
============================  =====================================================
MESSAGE_CREATE                ``message.ingested`` (``member.joined`` for the
                              "joined the server" system message, like DCE's
                              ``GuildMemberJoin``)
MESSAGE_UPDATE                ``message.edited``, when the author edited the message
MESSAGE_DELETE(_BULK)         ``message.deleted``, one per message
GUILD_MEMBER_ADD / _REMOVE    ``member.joined`` / ``member.left``, community-wide
============================  =====================================================

Direct messages to the bot are not community content and are ignored.

Publishing and its failures: discord.py runs each event handler in a task of its
own and, should a handler raise, only calls :meth:`discord.Client.on_error`, which
logs; an exception cannot reach the service runner from there. And the gateway does
not replay events once a session is lost, so crashing the service would not bring
an event back either. So events are converted and queued as discord.py parses them,
and one publishing task sends the queue in order (a message's creation, edits and
deletion stay in order), retries a failed send with exponential backoff, and after
the last attempt logs the dropped event ids at error level and counts them in
:class:`GatewayStats`, so an operator can backfill that span from an export, which
yields the very same event ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import discord
from discord.raw_models import (
    RawBulkMessageDeleteEvent,
    RawMemberRemoveEvent,
    RawMessageDeleteEvent,
    RawMessageUpdateEvent,
)

from pepite_contracts import (
    Attachment,
    ChannelRef,
    Member,
    MemberJoined,
    MemberLeft,
    Mention,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageIngested,
    MessageType,
    NormalizedMessage,
    Platform,
    Reaction,
    ThreadRef,
    stable_id,
)
from pepite_ingestor.importers.common import (
    ImportedEvent,
    fast_event_id,
    message_event_id,
    validate_community_id,
)
from pepite_ingestor.live.sink import EventSink
from pepite_ingestor.settings import Settings

__all__ = [
    "DiscordGatewayClient",
    "GatewayStats",
    "RetryPolicy",
    "build_discord_gateway",
    "channel_refs",
    "gateway_intents",
    "member_joined_event",
    "member_left_event",
    "message_deleted_events",
    "message_edited_event",
    "message_event",
    "normalize_member",
    "normalize_message",
]

logger = logging.getLogger(__name__)

_PLATFORM = Platform.DISCORD

#: Gateway message types the contracts name, as the DCE importer maps DCE's names for them.
_MESSAGE_TYPES: dict[discord.MessageType, MessageType] = {
    discord.MessageType.default: MessageType.DEFAULT,
    discord.MessageType.reply: MessageType.REPLY,
    discord.MessageType.thread_created: MessageType.THREAD_STARTER,
    discord.MessageType.pins_add: MessageType.PINNED_NOTICE,
}
# Discord's usernames without discriminator report "0"; it says nothing, as in the importer.
_DEFAULT_DISCRIMINATORS = frozenset({"0", "0000"})
# A MESSAGE_UPDATE with all of these is the whole message, not only what changed.
_FULL_MESSAGE_FIELDS = frozenset(
    {"author", "timestamp", "content", "attachments", "embeds", "mentions", "type"}
)
# What the importer writes for a reaction whose emoji has no name.
_UNKNOWN_EMOJI = "<unknown emoji>"


def gateway_intents() -> discord.Intents:
    """The gateway intents the adapter needs, and no more.

    Guild messages (not direct messages: those are not community content), their
    content, and member joins and leaves. ``members`` and ``message_content`` are
    privileged: they must be switched on for the bot in Discord's developer portal,
    or the gateway refuses the connection.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.guild_messages = True
    intents.message_content = True
    return intents


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without empty ones: absent and empty say the same, events stay small."""
    return {key: value for key, value in values.items() if value}


def _snowflake(value: int | None) -> str | None:
    return str(value) if value is not None else None


def _stable(community_id: str, native_id: int | str) -> str:
    return stable_id(_PLATFORM.value, community_id, str(native_id))


def normalize_member(
    user: discord.User | discord.Member, community_id: str
) -> tuple[Member, dict[str, Any]]:
    """A Discord user as a contract member, and what the contract does not model.

    Same fields as the importer's: ``name`` is the username, ``display_name`` the
    name shown in the guild (nickname, else global display name, else username).

    Args:
        user: The author, mentioned or joining user; a ``Member`` when the guild is known.
        community_id: The Pépite community the guild is filed under.

    Returns:
        The member and its extra fields (discriminator, roles, colour, ...), for ``raw``.
    """
    member = Member(
        id=_stable(community_id, user.id),
        native_id=str(user.id),
        name=user.name,
        display_name=user.display_name,
        is_bot=user.bot,
        avatar_url=user.display_avatar.url,
    )
    discriminator = user.discriminator
    extras: dict[str, Any] = {
        "discriminator": None if discriminator in _DEFAULT_DISCRIMINATORS else discriminator,
        # The display name hides the global name behind a nickname; keep both.
        "global_name": user.global_name if user.global_name != user.display_name else None,
        "system": user.system,
    }
    if isinstance(user, discord.Member):
        extras["roles"] = [
            {"id": str(role.id), "name": role.name} for role in user.roles if not role.is_default()
        ]
        extras["color"] = str(user.color) if user.color.value else None
    return member, _compact(extras)


def channel_refs(channel: object) -> tuple[ChannelRef, ThreadRef | None]:
    """Where a message is filed: its channel, and its thread when it is in one.

    A thread's messages are filed under the thread's parent channel, so a channel's
    numbers include its threads, exactly as the importer files a DCE thread export.
    A channel discord.py has not cached (a ``PartialMessageable``) is named by its id.

    Args:
        channel: ``message.channel``, or a channel or thread from the client's cache.

    Returns:
        The channel reference and, for a thread, the thread reference.
    """
    if isinstance(channel, discord.Thread):
        thread = ThreadRef(id=str(channel.id), name=channel.name)
        parent = channel.parent
        if parent is None:
            # The parent is not cached; its id is on the thread, its name is not.
            return ChannelRef(id=str(channel.parent_id), name=str(channel.parent_id)), thread
        return _channel_ref(parent), thread
    return _channel_ref(channel), None


def _channel_ref(channel: object) -> ChannelRef:
    channel_id = str(getattr(channel, "id", ""))
    if isinstance(channel, discord.abc.GuildChannel):
        category = channel.category
        # Not every channel kind has a topic (voice channels do not).
        topic = getattr(channel, "topic", None)
        return ChannelRef(
            id=channel_id,
            name=channel.name,
            category=category.name if category is not None else None,
            topic=topic if isinstance(topic, str) and topic else None,
        )
    return ChannelRef(id=channel_id, name=channel_id)


def _attachments(attachments: Iterable[discord.Attachment]) -> tuple[list[Attachment], list[Any]]:
    out: list[Attachment] = []
    extras: list[Any] = []
    for item in attachments:
        out.append(
            Attachment(
                id=str(item.id),
                url=item.url,
                filename=item.filename,
                size_bytes=item.size,
                content_type=item.content_type,
            )
        )
        extras.append(
            _compact(
                {
                    "proxy_url": item.proxy_url,
                    "width": item.width,
                    "height": item.height,
                    "description": item.description,
                    "title": item.title,
                    "duration_secs": item.duration,
                    "ephemeral": item.ephemeral,
                    "spoiler": item.is_spoiler(),
                    "flags": item.flags.value,
                }
            )
        )
    return out, extras


def _reactions(reactions: Iterable[discord.Reaction]) -> tuple[list[Reaction], list[Any]]:
    out: list[Reaction] = []
    extras: list[Any] = []
    for item in reactions:
        emoji = item.emoji
        if isinstance(emoji, str):
            # A standard (unicode) emoji: the emoji itself, no id, as in the importer.
            out.append(Reaction(emoji=emoji, count=item.count))
            extra: dict[str, Any] = {}
        else:
            out.append(
                Reaction(
                    emoji=emoji.name or _UNKNOWN_EMOJI,
                    emoji_id=_snowflake(emoji.id),
                    count=item.count,
                )
            )
            extra = _compact({"animated": emoji.animated})
        extra.update(_compact({"burst_count": item.burst_count}))
        extras.append(extra)
    return out, extras


def _mentions(
    users: Iterable[discord.User | discord.Member], community_id: str
) -> tuple[list[Mention], list[Any]]:
    out: list[Mention] = []
    extras: list[Any] = []
    for user in users:
        out.append(Mention(member_id=_stable(community_id, user.id), name=user.name))
        _, extra = normalize_member(user, community_id)
        extras.append(extra)
    return out, extras


def _reply_to(message: discord.Message, community_id: str, raw: dict[str, Any]) -> str | None:
    """The stable id of the replied-to message; what that does not say goes to ``raw``.

    Same rule as the importer: a forward is a copy, not a reply, and a message of
    another guild has no stable id in this community.
    """
    reference = message.reference
    if reference is None:
        return None
    guild_id = message.guild.id if message.guild is not None else None
    is_reply = (
        reference.message_id is not None
        and reference.type is discord.MessageReferenceType.default
        and (reference.guild_id is None or guild_id is None or reference.guild_id == guild_id)
    )
    leftover = _compact(
        {
            "message_id": None if is_reply else _snowflake(reference.message_id),
            "channel_id": None
            if reference.channel_id == message.channel.id
            else _snowflake(reference.channel_id),
            "guild_id": None if reference.guild_id == guild_id else _snowflake(reference.guild_id),
            "type": None
            if reference.type is discord.MessageReferenceType.default
            else reference.type.name,
        }
    )
    if leftover:
        raw["reference"] = leftover
    if not is_reply or reference.message_id is None:
        return None
    return _stable(community_id, reference.message_id)


def _message_raw(message: discord.Message) -> dict[str, Any]:
    """What the gateway said about a message that the contract does not model.

    Keys follow the Discord API's field names; empty values are dropped.
    """
    raw: dict[str, Any] = {
        "webhook_id": _snowflake(message.webhook_id),
        "application_id": _snowflake(message.application_id),
        "flags": message.flags.value,
        "tts": message.tts,
        "mention_everyone": message.mention_everyone,
        "mention_roles": [
            {"id": str(role.id), "name": role.name} for role in message.role_mentions
        ],
        "embeds": [embed.to_dict() for embed in message.embeds],
        "sticker_items": [
            {"id": str(sticker.id), "name": sticker.name, "format_type": sticker.format.value}
            for sticker in message.stickers
        ],
        "components": _components(message.components),
        "activity": message.activity,
        "message_snapshots": [_snapshot(snapshot) for snapshot in message.message_snapshots],
        "position": message.position,
    }
    if message.poll is not None:
        poll = message.poll
        raw["poll"] = _compact(
            {
                "question": poll.question,
                "answers": [
                    {"text": answer.text, "votes": answer.vote_count} for answer in poll.answers
                ],
                "allow_multiselect": poll.multiple,
                "expiry": poll.expires_at.isoformat() if poll.expires_at else None,
            }
        )
    metadata = message.interaction_metadata
    if metadata is not None:
        raw["interaction_metadata"] = {
            "id": str(metadata.id),
            "type": metadata.type.name,
            "user_id": str(metadata.user.id),
        }
    started = message.thread
    if started is not None and started.id != message.channel.id:
        # The thread this message started (its messages carry ``thread`` themselves).
        raw["thread"] = {"id": str(started.id), "name": started.name}
    return _compact(raw)


def _components(components: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for component in components:
        try:
            out.append(component.to_dict())
        except NotImplementedError:
            # A component kind newer than this discord.py: its type is all it tells.
            out.append({"type": getattr(getattr(component, "type", None), "value", None)})
    return out


def _snapshot(snapshot: discord.MessageSnapshot) -> dict[str, Any]:
    """A forwarded message's copy; the forward itself usually has no text of its own."""
    attachments, _ = _attachments(snapshot.attachments)
    return _compact(
        {
            "type": snapshot.type.name,
            "content": snapshot.content,
            "timestamp": _utc(snapshot.created_at).isoformat(),
            "attachments": [item.model_dump(exclude_none=True) for item in attachments],
            "embeds": [embed.to_dict() for embed in snapshot.embeds],
        }
    )


def normalize_message(message: discord.Message, community_id: str) -> NormalizedMessage:
    """A gateway message as a contract message, filed like the importer files it.

    Args:
        message: A guild message parsed by discord.py.
        community_id: The Pépite community the guild is filed under.

    Returns:
        The normalized message; ``raw`` keeps embeds, stickers, flags and the rest.
    """
    native_id = str(message.id)
    channel, thread = channel_refs(message.channel)
    author, author_extra = normalize_member(message.author, community_id)
    raw = _message_raw(message)
    message_type = _MESSAGE_TYPES.get(message.type)
    if message_type is None:
        message_type = MessageType.SYSTEM
        raw["type"] = message.type.name
    if author_extra:
        raw["author"] = author_extra
    attachments, attachment_extras = _attachments(message.attachments)
    if any(attachment_extras):
        # Same order as ``attachments``.
        raw["attachments"] = attachment_extras
    reactions, reaction_extras = _reactions(message.reactions)
    if any(reaction_extras):
        raw["reactions"] = reaction_extras
    mentions, mention_extras = _mentions(message.mentions, community_id)
    if any(mention_extras):
        raw["mentions"] = mention_extras
    return NormalizedMessage(
        id=_stable(community_id, native_id),
        platform=_PLATFORM,
        community_id=community_id,
        native_id=native_id,
        channel=channel,
        thread=thread,
        reply_to_id=_reply_to(message, community_id, raw),
        author=author,
        text=message.content,
        type=message_type,
        created_at=_utc(message.created_at),
        edited_at=_utc(message.edited_at) if message.edited_at else None,
        is_pinned=message.pinned,
        attachments=attachments,
        reactions=reactions,
        mentions=mentions,
        raw=raw,
    )


def message_event(message: discord.Message, community_id: str) -> MessageIngested | MemberJoined:
    """The event for a new gateway message, with the importer's event id.

    The "joined the server" system message becomes a ``member.joined``, as DCE's
    ``GuildMemberJoin`` does in the importer. Every other message becomes a
    ``message.ingested`` whose event id depends only on the message and its edit
    time, so the same message from an export is the same event.

    Args:
        message: A guild message parsed by discord.py.
        community_id: The Pépite community the guild is filed under.

    Returns:
        The event to publish.
    """
    sid = _stable(community_id, message.id)
    created_at = _utc(message.created_at)
    if message.type is discord.MessageType.new_member:
        member, _ = normalize_member(message.author, community_id)
        channel, _thread = channel_refs(message.channel)
        return MemberJoined(
            event_id=fast_event_id("member.joined", sid),
            occurred_at=created_at,
            community_id=community_id,
            payload={
                "member": member,
                "platform": _PLATFORM,
                "community_id": community_id,
                "at": created_at,
                "channel": channel,
                "source_id": sid,
            },
        )
    normalized = normalize_message(message, community_id)
    return MessageIngested(
        event_id=message_event_id(sid, normalized.edited_at),
        occurred_at=created_at,
        community_id=community_id,
        payload=normalized,
    )


def _apply_edit(
    before: NormalizedMessage,
    data: dict[str, Any],
    *,
    edited_at: datetime,
    text: str | None,
    attachments: list[Attachment] | None,
    mentions: list[Mention] | None,
    embeds: list[Any] | None,
) -> NormalizedMessage:
    """The cached message with what a partial update changed."""
    changes: dict[str, Any] = {"edited_at": edited_at}
    if text is not None:
        changes["text"] = text
    if attachments is not None:
        changes["attachments"] = attachments
    if mentions is not None:
        changes["mentions"] = mentions
    if "pinned" in data:
        changes["is_pinned"] = bool(data["pinned"])
    if embeds is not None:
        raw = dict(before.raw)
        raw.pop("embeds", None)
        if embeds:
            raw["embeds"] = embeds
        changes["raw"] = raw
    return before.model_copy(update=changes)


def message_edited_event(payload: RawMessageUpdateEvent, community_id: str) -> MessageEdited | None:
    """The event for a MESSAGE_UPDATE, or None when it is not an edit by the author.

    Discord also sends MESSAGE_UPDATE when it unfurls a link into an embed, or a
    poll's votes change; those carry no ``edited_timestamp`` and change nothing the
    author wrote, so they publish nothing.

    Discord now sends the whole message, which goes along in ``message``. An update
    may still be partial (only the changed fields; discord.py parses one that has
    ``type`` and ``content``): then the whole message is rebuilt from discord.py's
    cached copy if it has one, else the event says only what changed.

    Args:
        payload: What discord.py hands ``on_raw_message_edit``.
        community_id: The Pépite community the guild is filed under.

    Returns:
        The ``message.edited`` event, or None.
    """
    data: dict[str, Any] = dict(payload.data)
    updated = payload.message
    if updated.edited_at is None or updated.type is discord.MessageType.new_member:
        return None
    edited_at = _utc(updated.edited_at)
    sid = _stable(community_id, payload.message_id)
    channel, thread = channel_refs(updated.channel)
    whole: NormalizedMessage | None = None
    text: str | None
    attachments: list[Attachment] | None = None
    mentions: list[Mention] | None = None
    raw: dict[str, Any] = {}
    if data.keys() >= _FULL_MESSAGE_FIELDS:
        whole = normalize_message(updated, community_id)
        text, attachments, mentions = whole.text, whole.attachments, whole.mentions
    else:
        # Only the fields present changed; discord.py filled the others with defaults.
        text = data.get("content")
        if "attachments" in data:
            attachments, _ = _attachments(updated.attachments)
        if "mentions" in data:
            mentions, _ = _mentions(updated.mentions, community_id)
        embeds = [embed.to_dict() for embed in updated.embeds] if "embeds" in data else None
        raw = _compact({"embeds": embeds, "flags": data.get("flags"), "pinned": data.get("pinned")})
        if payload.cached_message is not None:
            whole = _apply_edit(
                normalize_message(payload.cached_message, community_id),
                data,
                edited_at=edited_at,
                text=text,
                attachments=attachments,
                mentions=mentions,
                embeds=embeds,
            )
    if thread is not None:
        raw["thread"] = thread.model_dump(exclude_none=True)
    return MessageEdited(
        event_id=fast_event_id("message.edited", sid, edited_at.isoformat()),
        occurred_at=edited_at,
        community_id=community_id,
        payload=MessageEdit(
            id=sid,
            platform=_PLATFORM,
            community_id=community_id,
            native_id=str(payload.message_id),
            channel=channel,
            edited_at=edited_at,
            text=text,
            attachments=attachments,
            mentions=mentions,
            message=whole,
            raw=raw,
        ),
    )


def _deleted_event(
    message_id: int,
    located: tuple[ChannelRef, ThreadRef | None],
    community_id: str,
    at: datetime,
) -> MessageDeleted:
    sid = _stable(community_id, message_id)
    channel, thread = located
    return MessageDeleted(
        # A message is deleted once: a redelivered deletion is the same event.
        event_id=fast_event_id("message.deleted", sid),
        occurred_at=at,
        community_id=community_id,
        payload=MessageDeletion(
            id=sid,
            platform=_PLATFORM,
            community_id=community_id,
            native_id=str(message_id),
            channel=channel,
            deleted_at=at,
            raw={"thread": thread.model_dump(exclude_none=True)} if thread is not None else {},
        ),
    )


def _locate(
    guild: discord.Guild | None, channel_id: int, cached: discord.Message | None
) -> tuple[ChannelRef, ThreadRef | None]:
    """Where a deleted message was filed, from what the client has cached.

    The deletion must be filed under the same channel as the message (a thread's
    parent), so it lands on the same partition and after it.
    """
    if cached is not None:
        return channel_refs(cached.channel)
    channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
    if channel is not None:
        return channel_refs(channel)
    # Not cached (e.g. an archived thread): the id is all the gateway says.
    return ChannelRef(id=str(channel_id), name=str(channel_id)), None


def message_deleted_events(
    payload: RawMessageDeleteEvent | RawBulkMessageDeleteEvent,
    guild: discord.Guild | None,
    community_id: str,
    *,
    at: datetime | None = None,
) -> list[MessageDeleted]:
    """The events for a MESSAGE_DELETE or MESSAGE_DELETE_BULK, one per message.

    Args:
        payload: What discord.py hands ``on_raw_message_delete`` or
            ``on_raw_bulk_message_delete``.
        guild: The guild from the client's cache, to name the channel; None if unknown.
        community_id: The Pépite community the guild is filed under.
        at: When the deletion happened; the gateway does not say, so now by default.

    Returns:
        The ``message.deleted`` events, in message id (that is, creation) order.
    """
    when = _utc(at) if at is not None else datetime.now(UTC)
    if isinstance(payload, RawMessageDeleteEvent):
        located = _locate(guild, payload.channel_id, payload.cached_message)
        return [_deleted_event(payload.message_id, located, community_id, when)]
    cached = {message.id: message for message in payload.cached_messages}
    return [
        _deleted_event(
            message_id,
            _locate(guild, payload.channel_id, cached.get(message_id)),
            community_id,
            when,
        )
        for message_id in sorted(payload.message_ids)
    ]


def member_joined_event(member: discord.Member, community_id: str) -> MemberJoined:
    """The community-wide ``member.joined`` event for a GUILD_MEMBER_ADD.

    Args:
        member: The member discord.py built from the event.
        community_id: The Pépite community the guild is filed under.

    Returns:
        The event; its id depends on the member and join time, so a redelivery is a no-op.
    """
    contract_member, _ = normalize_member(member, community_id)
    at = _utc(member.joined_at) if member.joined_at is not None else datetime.now(UTC)
    return MemberJoined(
        event_id=fast_event_id("member.joined", contract_member.id, at.isoformat()),
        occurred_at=at,
        community_id=community_id,
        payload={
            "member": contract_member,
            "platform": _PLATFORM,
            "community_id": community_id,
            "at": at,
        },
    )


def member_left_event(
    payload: RawMemberRemoveEvent, community_id: str, *, at: datetime | None = None
) -> MemberLeft:
    """The community-wide ``member.left`` event for a GUILD_MEMBER_REMOVE.

    Args:
        payload: What discord.py hands ``on_raw_member_remove``.
        community_id: The Pépite community the guild is filed under.
        at: When the member left; the gateway does not say, so now by default.

    Returns:
        The event.
    """
    member, _ = normalize_member(payload.user, community_id)
    when = _utc(at) if at is not None else datetime.now(UTC)
    return MemberLeft(
        event_id=fast_event_id("member.left", member.id, when.isoformat()),
        occurred_at=when,
        community_id=community_id,
        payload={
            "member": member,
            "platform": _PLATFORM,
            "community_id": community_id,
            "at": when,
        },
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries to publish a batch before it counts it as dropped.

    The defaults ride out a broker restart of about two minutes.
    """

    attempts: int = 8
    first_delay_s: float = 0.5
    max_delay_s: float = 30.0


@dataclass
class GatewayStats:
    """What the client did since it started; the error logs repeat the totals."""

    received: int = 0
    published: int = 0
    retries: int = 0
    dropped: int = 0
    unconvertible: int = 0


class DiscordGatewayClient(discord.Client):
    """A discord.py client that publishes one community's guild events to a sink.

    Events are converted in :meth:`dispatch`, the moment discord.py has parsed the
    payload, not in ``on_*`` handlers: discord.py runs handlers later, in tasks of
    their own, and by then a later MESSAGE_UPDATE may already have changed the
    cached ``Message`` a handler was given. Converting at dispatch also queues the
    events in exactly the order the gateway sent them.

    Args:
        sink: Where events go; ``send`` returns once the broker has them.
        community_id: The Pépite community every event is filed under.
        guild_ids: The guilds to listen to; None for every guild the bot is in.
        retry: How failed sends are retried.
        max_batch: Most events sent (and acknowledged) together.
        backlog_warning: Queued events above which each new batch logs a warning.
        drain_timeout_s: How long :meth:`close` waits for queued events to be sent.
    """

    def __init__(
        self,
        *,
        sink: EventSink,
        community_id: str,
        guild_ids: Collection[int] | None = None,
        retry: RetryPolicy | None = None,
        max_batch: int = 500,
        backlog_warning: int = 10_000,
        drain_timeout_s: float = 10.0,
    ) -> None:
        validate_community_id(community_id)
        # Without chunking: messages carry their author's member data, and asking the
        # gateway for every member of a large guild at start-up costs time and memory.
        super().__init__(intents=gateway_intents(), chunk_guilds_at_startup=False)
        self.community_id = community_id
        self.stats = GatewayStats()
        self._sink = sink
        self._guild_ids = frozenset(guild_ids) if guild_ids is not None else None
        self._retry = retry or RetryPolicy()
        self._max_batch = max_batch
        self._backlog_warning = backlog_warning
        self._drain_timeout_s = drain_timeout_s
        # Unbounded: dispatch cannot wait. The backlog only grows while the broker is
        # down, and the retry policy bounds how long that is waited out.
        self._queue: asyncio.Queue[Sequence[ImportedEvent]] = asyncio.Queue()
        self._queued = 0
        self._publisher: asyncio.Task[None] | None = None
        self._converters: dict[str, Callable[..., Sequence[ImportedEvent]]] = {
            "message": self._on_message,
            "raw_message_edit": self._on_raw_message_edit,
            "raw_message_delete": self._on_raw_message_delete,
            "raw_bulk_message_delete": self._on_raw_message_delete,
            "member_join": self._on_member_join,
            "raw_member_remove": self._on_raw_member_remove,
        }

    # Lifecycle

    async def setup_hook(self) -> None:
        """Start the publishing task; discord.py calls this at login, before any event."""
        self.start_publishing()

    def start_publishing(self) -> None:
        """Start the task that sends queued events, if it is not running."""
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_loop(), name="discord-publisher")

    async def drain(self) -> None:
        """Wait until every queued event has been sent (or counted as dropped)."""
        await self._queue.join()

    async def close(self) -> None:
        """Leave the gateway, then send what is still queued, within ``drain_timeout_s``."""
        await super().close()
        publisher, self._publisher = self._publisher, None
        if publisher is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=self._drain_timeout_s)
        except TimeoutError:
            logger.error(
                "discord events still queued at shutdown were not published",
                extra={"queued": self._queued, **vars(self.stats)},
            )
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)

    # Gateway events

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        """Convert and queue the events Pépite files, then let discord.py dispatch as usual."""
        converter = self._converters.get(event)
        if converter is not None:
            try:
                events = converter(*args)
            except Exception:
                # Raising here would break discord.py's gateway loop for one bad payload.
                self.stats.unconvertible += 1
                logger.exception(
                    "discord event could not be converted",
                    extra={"event": event, **vars(self.stats)},
                )
            else:
                self._enqueue(events)
        super().dispatch(event, *args, **kwargs)

    def _wanted(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return False  # a direct message
        return self._guild_ids is None or guild_id in self._guild_ids

    def _on_message(self, message: discord.Message) -> Sequence[ImportedEvent]:
        """MESSAGE_CREATE: a new message, or a member's "joined" notice."""
        if not self._wanted(message.guild.id if message.guild is not None else None):
            return ()
        return (message_event(message, self.community_id),)

    def _on_raw_message_edit(self, payload: RawMessageUpdateEvent) -> Sequence[ImportedEvent]:
        """MESSAGE_UPDATE, whether or not discord.py had the message cached."""
        if not self._wanted(payload.guild_id):
            return ()
        event = message_edited_event(payload, self.community_id)
        return (event,) if event is not None else ()

    def _on_raw_message_delete(
        self, payload: RawMessageDeleteEvent | RawBulkMessageDeleteEvent
    ) -> Sequence[ImportedEvent]:
        """MESSAGE_DELETE and MESSAGE_DELETE_BULK (a moderator's purge)."""
        if not self._wanted(payload.guild_id):
            return ()
        guild = self.get_guild(payload.guild_id) if payload.guild_id is not None else None
        return message_deleted_events(payload, guild, self.community_id)

    def _on_member_join(self, member: discord.Member) -> Sequence[ImportedEvent]:
        """GUILD_MEMBER_ADD."""
        if not self._wanted(member.guild.id):
            return ()
        return (member_joined_event(member, self.community_id),)

    def _on_raw_member_remove(self, payload: RawMemberRemoveEvent) -> Sequence[ImportedEvent]:
        """GUILD_MEMBER_REMOVE, whether or not discord.py had the member cached."""
        if not self._wanted(payload.guild_id):
            return ()
        return (member_left_event(payload, self.community_id),)

    async def on_ready(self) -> None:
        """Log what the bot listens to; several guilds would share one community."""
        guilds = [str(guild.id) for guild in self.guilds if self._wanted(guild.id)]
        logger.info(
            "discord gateway ready", extra={"guilds": guilds, "community": self.community_id}
        )
        if len(guilds) > 1:
            logger.warning(
                "the bot is in several guilds; all are filed under one community",
                extra={"guilds": guilds, "community": self.community_id},
            )

    # Publishing

    def _enqueue(self, events: Sequence[ImportedEvent]) -> None:
        if not events:
            return
        self.stats.received += len(events)
        self._queued += len(events)
        self._queue.put_nowait(events)
        if self._queued > self._backlog_warning:
            logger.warning(
                "discord events are piling up: the broker is not taking them",
                extra={"queued": self._queued},
            )

    async def _publish_loop(self) -> None:
        while True:
            batch = list(await self._queue.get())
            taken = 1
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.extend(self._queue.get_nowait())
                taken += 1
            try:
                await self._send(batch)
            finally:
                self._queued -= len(batch)
                for _ in range(taken):
                    self._queue.task_done()

    async def _send(self, events: Sequence[ImportedEvent]) -> None:
        delay = self._retry.first_delay_s
        for attempt in range(1, self._retry.attempts + 1):
            try:
                await self._sink.send(events)
            except Exception as exc:
                if attempt >= self._retry.attempts:
                    self.stats.dropped += len(events)
                    logger.error(
                        "discord events dropped: the broker did not take them; "
                        "backfill this span from an export",
                        exc_info=exc,
                        extra={
                            "attempts": attempt,
                            "event_ids": [event.event_id for event in events],
                            "first_at": events[0].occurred_at.isoformat(),
                            "last_at": events[-1].occurred_at.isoformat(),
                            **vars(self.stats),
                        },
                    )
                    return
                self.stats.retries += 1
                logger.warning(
                    "publishing discord events failed, retrying",
                    extra={"attempt": attempt, "events": len(events), "error": repr(exc)},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry.max_delay_s)
            else:
                self.stats.published += len(events)
                return


def build_discord_gateway(
    settings: Settings, sink: EventSink
) -> Callable[[], Awaitable[None]] | None:
    """The background job that runs the Discord gateway client, if it is configured.

    Args:
        settings: The ingestor's settings; ``discord_bot_token`` and
            ``discord_community_id`` switch the adapter on.
        sink: Where the events go.

    Returns:
        None when the bot token or the community is not set; else a coroutine
        function that runs the client until it is cancelled, then closes it. It
        raises if Discord refuses the token or the privileged intents.

    Raises:
        ValueError: the community id could not be part of a stable id.
    """
    token = settings.discord_bot_token.get_secret_value() if settings.discord_bot_token else ""
    community_id = settings.discord_community_id
    if not token or not community_id:
        return None
    validate_community_id(community_id)

    async def run_discord_gateway() -> None:
        client = DiscordGatewayClient(
            sink=sink, community_id=community_id, guild_ids=settings.discord_guild_ids or None
        )
        try:
            # Reconnects and resumes on its own; returns or raises only when it cannot.
            await client.start(token)
        finally:
            await client.close()

    return run_discord_gateway
