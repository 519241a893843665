"""Event envelopes and the one decoder every consumer uses."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pepite_contracts.analysis import AnalyzedMessage
from pepite_contracts.ids import CommunityId
from pepite_contracts.messages import (
    ContractModel,
    MembershipChange,
    MessageDeletion,
    MessageEdit,
    NormalizedMessage,
    UtcDatetime,
)
from pepite_contracts.notifications import (
    AlertNotice,
    DigestNotice,
    InsightsReportNotice,
    LeaderboardNotice,
    ModerationNotice,
)
from pepite_contracts.privacy import ConsentChange, MemberErasure

#: Namespace for deterministic event ids, so a replayed import yields the same ids.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a4e-5d0b-4c8e-9a57-2f7d3b1e9c40")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_event_id() -> str:
    return uuid.uuid4().hex


def deterministic_event_id(*parts: str) -> str:
    """An event id derived from what the event is about, stable across replays."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)).hex


class EventEnvelope(BaseModel):
    """Fields every event carries; subclasses fix ``type`` and ``payload``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(default_factory=_new_event_id)
    schema_version: int = 1
    occurred_at: UtcDatetime = Field(default_factory=_utcnow)
    community_id: CommunityId


class MessageIngested(EventEnvelope):
    """A message read from a platform, normalized."""

    type: Literal["message.ingested"] = "message.ingested"
    payload: NormalizedMessage


class MemberJoined(EventEnvelope):
    """A member joined the community."""

    type: Literal["member.joined"] = "member.joined"
    payload: MembershipChange


class MemberLeft(EventEnvelope):
    """A member left the community."""

    type: Literal["member.left"] = "member.left"
    payload: MembershipChange


class MessageEdited(EventEnvelope):
    """A message's author changed it."""

    type: Literal["message.edited"] = "message.edited"
    payload: MessageEdit


class MessageDeleted(EventEnvelope):
    """A message was deleted on its platform."""

    type: Literal["message.deleted"] = "message.deleted"
    payload: MessageDeletion


class MessageAnalyzed(EventEnvelope):
    """The classifier analyzed a message (again, when it was edited)."""

    type: Literal["message.analyzed"] = "message.analyzed"
    payload: AnalyzedMessage


class MemberConsentChanged(EventEnvelope):
    """A member changed their consent flags."""

    type: Literal["member.consent_changed"] = "member.consent_changed"
    payload: ConsentChange


class MemberErased(EventEnvelope):
    """A member asked to be erased: every service removes or anonymizes them."""

    type: Literal["member.erased"] = "member.erased"
    payload: MemberErasure


class DigestRequest(ContractModel):
    """Payload of ``digest.requested``: build the community's digest of these days."""

    request_id: str
    first: date = Field(description="First day of the period, in the community's time zone.")
    last: date = Field(description="Last day of the period (included).")
    requested_at: UtcDatetime


class DigestRequested(EventEnvelope):
    """Someone asked for the community's digest of a period (``digests.requests``)."""

    type: Literal["digest.requested"] = "digest.requested"
    payload: DigestRequest


class DigestPublished(EventEnvelope):
    type: Literal["digest.published"] = "digest.published"
    payload: DigestNotice


class AlertRaised(EventEnvelope):
    type: Literal["alert.raised"] = "alert.raised"
    payload: AlertNotice


class ModerationFlagged(EventEnvelope):
    type: Literal["moderation.flagged"] = "moderation.flagged"
    payload: ModerationNotice


class LeaderboardUpdated(EventEnvelope):
    type: Literal["leaderboard.updated"] = "leaderboard.updated"
    payload: LeaderboardNotice


class InsightsReportPublished(EventEnvelope):
    type: Literal["insights.report"] = "insights.report"
    payload: InsightsReportNotice


#: Events sent out of Pépite to webhook subscribers (the ``notifications`` topic).
Notification = (
    DigestPublished | AlertRaised | ModerationFlagged | LeaderboardUpdated | InsightsReportPublished
)

#: Events about one message; they share its channel's partition, so they stay in order.
MessageEvent = MessageIngested | MessageEdited | MessageDeleted

Event = Annotated[
    MessageIngested
    | MessageEdited
    | MessageDeleted
    | MemberJoined
    | MemberLeft
    | MemberConsentChanged
    | MemberErased
    | MessageAnalyzed
    | DigestPublished
    | AlertRaised
    | ModerationFlagged
    | LeaderboardUpdated
    | InsightsReportPublished
    | DigestRequested,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def decode_event(data: bytes | str) -> Event:
    """Parse one event from its JSON bytes.

    Raises:
        pydantic.ValidationError: the bytes are not JSON, or not a known event.
    """
    return EVENT_ADAPTER.validate_json(data)


def encode_event(event: EventEnvelope) -> bytes:
    """Serialize an event to the JSON bytes put on a topic."""
    return event.model_dump_json().encode()
