"""The normalized message and member shapes every ingestor produces."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from pepite_contracts.ids import CommunityId


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: Sources give times in many offsets; everything downstream compares UTC instants.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Platform(StrEnum):
    """Where a community lives."""

    DISCORD = "discord"
    SLACK = "slack"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    DISCOURSE = "discourse"
    CIRCLE = "circle"
    GENERIC = "generic"


class MessageType(StrEnum):
    """What a message is on its platform, before any analysis."""

    DEFAULT = "default"
    REPLY = "reply"
    THREAD_STARTER = "thread_starter"
    PINNED_NOTICE = "pinned_notice"
    SYSTEM = "system"


class ContractModel(BaseModel):
    """Base for contract models: tolerant of fields added by newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ChannelRef(ContractModel):
    """The channel a message was posted in."""

    id: str
    name: str
    category: str | None = None
    topic: str | None = None


class ThreadRef(ContractModel):
    """The thread a message belongs to, when the platform has threads."""

    id: str
    name: str | None = None


class Member(ContractModel):
    """One identity on one platform; ``id`` is its stable id."""

    id: str
    native_id: str
    name: str
    display_name: str | None = None
    is_bot: bool = False
    avatar_url: str | None = None


class Attachment(ContractModel):
    """A file attached to a message."""

    id: str | None = None
    url: str | None = None
    filename: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    content_type: str | None = None


class Reaction(ContractModel):
    """An emoji reaction and how many members used it."""

    emoji: str
    emoji_id: str | None = None
    count: int = Field(ge=0)


class Mention(ContractModel):
    """A member named in a message."""

    member_id: str
    name: str


class NormalizedMessage(ContractModel):
    """A message from any platform, in the one shape every service reads.

    Anything the source had that this model does not name is kept in ``raw``.
    """

    id: str = Field(description="Stable id: platform:community:native_id.")
    platform: Platform
    community_id: CommunityId
    native_id: str
    channel: ChannelRef
    thread: ThreadRef | None = None
    reply_to_id: str | None = Field(default=None, description="Stable id of the parent message.")
    author: Member
    text: str
    type: MessageType = MessageType.DEFAULT
    created_at: UtcDatetime
    edited_at: UtcDatetime | None = None
    is_pinned: bool = False
    attachments: list[Attachment] = Field(default_factory=list)
    reactions: list[Reaction] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)


class MembershipChange(ContractModel):
    """A member joining or leaving a community (or one of its channels)."""

    member: Member
    platform: Platform
    community_id: CommunityId
    at: UtcDatetime
    channel: ChannelRef | None = None
    source_id: str | None = Field(
        default=None, description="Stable id of the platform record this came from, if any."
    )
    raw: dict[str, Any] = Field(
        default_factory=dict, description="What the source said that this model does not name."
    )


class MessageEdit(ContractModel):
    """A message's new content after its author edited it.

    Fields left ``None`` did not change (live platforms often send only what did).
    """

    id: str = Field(description="Stable id of the edited message.")
    platform: Platform
    community_id: CommunityId
    native_id: str
    channel: ChannelRef
    edited_at: UtcDatetime
    text: str | None = None
    attachments: list[Attachment] | None = None
    mentions: list[Mention] | None = None
    message: NormalizedMessage | None = Field(
        default=None,
        description="The whole message after the edit, when the source sent it; lets a "
        "consumer that never saw the original store it.",
    )
    raw: dict[str, Any] = Field(default_factory=dict)


class MessageDeletion(ContractModel):
    """A message removed from its platform: its text must disappear downstream too."""

    id: str = Field(description="Stable id of the deleted message.")
    platform: Platform
    community_id: CommunityId
    native_id: str
    channel: ChannelRef
    deleted_at: UtcDatetime
    raw: dict[str, Any] = Field(default_factory=dict)
