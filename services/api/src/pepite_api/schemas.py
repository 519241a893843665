"""Response bodies of the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pepite_contracts import ConsentFlags


class CommunityStatus(BaseModel):
    """What is stored for one community: enough for an operator to check an import."""

    community_id: str
    messages: int
    analyzed: int = Field(
        default=0, description="Messages analyzed and counted in the insight rollups."
    )
    awaiting_topic: int = Field(
        default=0,
        description="Insight messages still to be embedded, refined and placed in a topic"
        " (done in bulk when the stream is quiet).",
    )
    members: int
    channels: int
    first_message_at: datetime | None
    last_message_at: datetime | None


class HealthStatus(BaseModel):
    """Outcome of health or readiness checks."""

    status: str
    service: str
    checks: dict[str, str]


class Identity(BaseModel):
    """One platform identity of a member, as the classifier stored it."""

    member_id: str
    platform: str
    native_id: str
    name: str | None = None
    display_name: str | None = None
    is_bot: bool = False
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None


class Person(BaseModel):
    """One human behind several platform identities of a community."""

    person_id: str
    community_id: str
    display_name: str | None
    identities: list[Identity]
    created_at: datetime
    updated_at: datetime


class MemberActivity(BaseModel):
    """What a member wrote, counted."""

    messages: int
    first_message_at: datetime | None
    last_message_at: datetime | None
    kinds: dict[str, int] = Field(default_factory=dict, description="Messages per kind.")
    channels: dict[str, int] = Field(
        default_factory=dict, description="Messages per channel id (the 10 most used)."
    )


class MemberProfile(BaseModel):
    """A platform identity, and the person it is linked to, if any."""

    identity: Identity
    person: Person | None
    activity: MemberActivity | None = None
    consent: ConsentFlags | None = None


class LinkRequest(BaseModel):
    """Identities to link as one person (they may already belong to people: these merge)."""

    member_ids: list[str] = Field(min_length=2, max_length=50)
    display_name: str | None = Field(default=None, max_length=200)


class LinkSuggestion(BaseModel):
    """Identities on different platforms that look like one person (same name)."""

    key: str
    identities: list[Identity]
