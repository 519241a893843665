"""What the classifier does with events, as pure functions (no I/O here)."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar

from pepite_contracts import (
    ChannelRef,
    ConsentChange,
    Event,
    Member,
    MemberConsentChanged,
    MemberErased,
    MemberErasure,
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageIngested,
    NormalizedMessage,
)
from pepite_kit.search import SEARCH_TERMS, search_terms

K = TypeVar("K", bound=Hashable)


def message_version(message: NormalizedMessage) -> datetime:
    """The instant this copy of a message was true: an edit is newer than its original."""
    return message.edited_at or message.created_at


def content_digest(message: NormalizedMessage) -> str:
    """A digest of everything the message says, to tell a replay from a change.

    Reactions or pins change without an edit time, so the version alone cannot tell
    whether a re-imported copy carries news.
    """
    return hashlib.blake2b(message.model_dump_json().encode(), digest_size=16).hexdigest()


def message_document(message: NormalizedMessage, digest: str) -> dict[str, Any]:
    """The stored form of a message; ``_id`` is its stable id."""
    document = message.model_dump(mode="python", exclude={"id"})
    document["_id"] = message.id
    document["version_at"] = message_version(message)
    document["content_digest"] = digest
    document[SEARCH_TERMS] = search_terms(message.text)
    return document


@dataclass(frozen=True)
class StoredVersion:
    """What the database holds of a message, enough to decide whether to overwrite it."""

    version_at: datetime
    content_digest: str | None


def supersedes(message: NormalizedMessage, digest: str, stored: StoredVersion) -> bool:
    """Whether an incoming copy must replace the stored one.

    Newer wins; the same version wins only if its content differs (a reaction added);
    an older copy never does, so replaying an old export cannot revert an edit.
    """
    version = message_version(message)
    if version != stored.version_at:
        return version > stored.version_at
    return digest != stored.content_digest


@dataclass
class MemberSighting:
    """What one batch tells about one member."""

    member: Member
    platform: str
    community_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None

    def see(self, at: datetime) -> None:
        self.first_seen_at = min(self.first_seen_at, at)
        self.last_seen_at = max(self.last_seen_at, at)

    def covered_by(self, written: MemberSighting) -> bool:
        """Whether writing this would change nothing over ``written`` (already stored)."""
        return (
            self.member == written.member
            and self.first_seen_at >= written.first_seen_at
            and self.last_seen_at <= written.last_seen_at
            and (self.joined_at is None or (written.joined_at or self.joined_at) <= self.joined_at)
            and (self.left_at is None or (written.left_at or self.left_at) >= self.left_at)
        )

    def merged(self, written: MemberSighting | None) -> MemberSighting:
        """What the database holds after this sighting is written over ``written``."""
        if written is None:
            return self
        joins = [at for at in (self.joined_at, written.joined_at) if at]
        lefts = [at for at in (self.left_at, written.left_at) if at]
        return MemberSighting(
            member=self.member,
            platform=self.platform,
            community_id=self.community_id,
            first_seen_at=min(self.first_seen_at, written.first_seen_at),
            last_seen_at=max(self.last_seen_at, written.last_seen_at),
            joined_at=min(joins) if joins else None,
            left_at=max(lefts) if lefts else None,
        )


@dataclass
class ChannelSighting:
    """What one batch tells about one channel."""

    channel: ChannelRef
    platform: str
    community_id: str
    first_message_at: datetime
    last_message_at: datetime

    def covered_by(self, written: ChannelSighting) -> bool:
        return (
            self.channel == written.channel
            and self.first_message_at >= written.first_message_at
            and self.last_message_at <= written.last_message_at
        )

    def merged(self, written: ChannelSighting | None) -> ChannelSighting:
        if written is None:
            return self
        return ChannelSighting(
            channel=self.channel,
            platform=self.platform,
            community_id=self.community_id,
            first_message_at=min(self.first_message_at, written.first_message_at),
            last_message_at=max(self.last_message_at, written.last_message_at),
        )


@dataclass
class BatchWrites:
    """Everything one batch of events asks to store, deduplicated."""

    messages: dict[str, NormalizedMessage] = field(default_factory=dict)
    #: Edits that carry only what changed, for messages not in this batch.
    edits: dict[str, MessageEdit] = field(default_factory=dict)
    deletions: dict[str, MessageDeletion] = field(default_factory=dict)
    members: dict[str, MemberSighting] = field(default_factory=dict)
    channels: dict[tuple[str, str], ChannelSighting] = field(default_factory=dict)
    #: The newest consent change per member.
    consents: dict[str, ConsentChange] = field(default_factory=dict)
    erasures: dict[str, MemberErasure] = field(default_factory=dict)
    #: Messages stored anonymized: their author was erased.
    anonymized: set[str] = field(default_factory=set)

    def communities(self) -> set[str]:
        """Every community something in this batch belongs to."""
        return {
            *(message.community_id for message in self.messages.values()),
            *(edit.community_id for edit in self.edits.values()),
            *(seen.community_id for seen in self.members.values()),
            *(change.community_id for change in self.consents.values()),
            *(erasure.community_id for erasure in self.erasures.values()),
        }

    def stores_people(self) -> bool:
        """Whether writing this batch may store who someone is or what they wrote."""
        return bool(self.messages or self.edits or self.members or self.consents)


class Sighting(Protocol):
    """A partial view of a document that only grows, as members and channels do."""

    def covered_by(self, written: Self) -> bool: ...

    def merged(self, written: Self | None) -> Self: ...


S = TypeVar("S", bound=Sighting)


class WrittenCache(Generic[K, S]):
    """What this process last wrote per key, to skip writes that would change nothing.

    Member and channel documents only grow (``$min``/``$max``), so a sighting covered by
    what was already written is a no-op; skipping it saves most member writes of a
    busy channel. Bounded: past ``capacity`` entries it starts over.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._entries: dict[K, S] = {}

    def unwritten(self, sightings: dict[K, S]) -> dict[K, S]:
        """The sightings that would change what was written."""
        return {
            key: seen
            for key, seen in sightings.items()
            if (written := self._entries.get(key)) is None or not seen.covered_by(written)
        }

    def remember_all(self, written: dict[K, S]) -> None:
        """Record sightings once their write succeeded."""
        if len(self._entries) + len(written) > self._capacity:
            self._entries.clear()
        for key, seen in written.items():
            self._entries[key] = seen.merged(self._entries.get(key))


def plan_writes(events: Sequence[Event]) -> BatchWrites:
    """Fold a batch of events into the writes it needs.

    A message seen twice in one batch (a replay, or an edit after its original) is
    written once, in its newest version. A deletion wins over everything else about its
    message, whatever the order: a re-imported old export must not bring a deleted text back.
    Of a member's consent changes the newest counts. Erasures are only collected here:
    what they remove depends on what is stored (see :mod:`pepite_classifier.privacy`).
    """
    writes = BatchWrites()
    for event in events:
        if isinstance(event, MessageIngested):
            if event.payload.id not in writes.deletions:
                _fold_message(writes, event.payload)
        elif isinstance(event, MessageEdited):
            if event.payload.id not in writes.deletions:
                _fold_edit(writes, event.payload)
        elif isinstance(event, MessageDeleted):
            deletion = event.payload
            writes.messages.pop(deletion.id, None)
            writes.edits.pop(deletion.id, None)
            known = writes.deletions.get(deletion.id)
            if known is None or deletion.deleted_at < known.deleted_at:
                writes.deletions[deletion.id] = deletion
        elif isinstance(event, MemberJoined | MemberLeft):
            change = event.payload
            sighting = _sighting(
                writes, change.member, change.platform, change.community_id, change.at
            )
            if isinstance(event, MemberJoined):
                sighting.joined_at = min(filter(None, (sighting.joined_at, change.at)))
            else:
                sighting.left_at = max(filter(None, (sighting.left_at, change.at)))
        elif isinstance(event, MemberConsentChanged | MemberErased):
            _fold_privacy(writes, event)
    return writes


def _fold_privacy(writes: BatchWrites, event: MemberConsentChanged | MemberErased) -> None:
    if isinstance(event, MemberConsentChanged):
        consent = event.payload
        known_consent = writes.consents.get(consent.member_id)
        if known_consent is None or consent.changed_at > known_consent.changed_at:
            writes.consents[consent.member_id] = consent
    else:
        erasure = event.payload
        known_erasure = writes.erasures.get(erasure.member_id)
        if known_erasure is None or erasure.requested_at < known_erasure.requested_at:
            writes.erasures[erasure.member_id] = erasure


def edited_message(message: NormalizedMessage, edit: MessageEdit) -> NormalizedMessage:
    """``message`` with what ``edit`` changed."""
    changes: dict[str, Any] = {"edited_at": edit.edited_at}
    if edit.text is not None:
        changes["text"] = edit.text
    if edit.attachments is not None:
        changes["attachments"] = edit.attachments
    if edit.mentions is not None:
        changes["mentions"] = edit.mentions
    return message.model_copy(update=changes)


def _fold_edit(writes: BatchWrites, edit: MessageEdit) -> None:
    if edit.message is not None:
        # The whole message after the edit: store it like any copy, newest wins.
        message = edit.message
        if message.edited_at is None or message.edited_at < edit.edited_at:
            message = message.model_copy(update={"edited_at": edit.edited_at})
        _fold_message(writes, message)
        return
    current = writes.messages.get(edit.id)
    if current is not None:
        if edit.edited_at > message_version(current):
            writes.messages[edit.id] = edited_message(current, edit)
        return
    known = writes.edits.get(edit.id)
    if known is None or edit.edited_at > known.edited_at:
        writes.edits[edit.id] = edit


def _fold_message(writes: BatchWrites, message: NormalizedMessage) -> None:
    current = writes.messages.get(message.id)
    if current is None or message_version(message) >= message_version(current):
        pending = writes.edits.get(message.id)
        if pending is not None and pending.edited_at > message_version(message):
            message = edited_message(message, pending)
        writes.messages[message.id] = message
    writes.edits.pop(message.id, None)
    _sighting(writes, message.author, message.platform, message.community_id, message.created_at)
    key = (message.community_id, message.channel.id)
    channel = writes.channels.get(key)
    if channel is None:
        channel = writes.channels[key] = ChannelSighting(
            channel=message.channel,
            platform=message.platform,
            community_id=message.community_id,
            first_message_at=message.created_at,
            last_message_at=message.created_at,
        )
    channel.first_message_at = min(channel.first_message_at, message.created_at)
    channel.last_message_at = max(channel.last_message_at, message.created_at)


def _sighting(
    writes: BatchWrites, member: Member, platform: str, community_id: str, at: datetime
) -> MemberSighting:
    sighting = writes.members.get(member.id)
    if sighting is None:
        sighting = writes.members[member.id] = MemberSighting(
            member=member,
            platform=platform,
            community_id=community_id,
            first_seen_at=at,
            last_seen_at=at,
        )
    else:
        sighting.see(at)
    return sighting


def analysis_digest(text: str, attachment_count: int) -> str:
    """What an analysis depends on, digested: an unchanged digest means no new analysis.

    A reaction added or a replay leaves the digest alone, so neither is analyzed (nor paid
    for) twice; an edit of the text changes it. The reply context is left out on purpose:
    a parent edited later does not make its replies worth paying for again.
    """
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(text.encode())
    hasher.update(b"\x1f%d" % attachment_count)
    return hasher.hexdigest()
