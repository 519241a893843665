"""Response bodies of the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CommunityStatus(BaseModel):
    """What is stored for one community: enough for an operator to check an import."""

    community_id: str
    messages: int
    members: int
    channels: int
    first_message_at: datetime | None
    last_message_at: datetime | None


class HealthStatus(BaseModel):
    """Outcome of health or readiness checks."""

    status: str
    service: str
    checks: dict[str, str]
