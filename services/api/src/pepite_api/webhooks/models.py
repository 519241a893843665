"""What the webhook routes take and answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from pepite_api.webhooks.targets import MAX_URL_CHARS, check_url
from pepite_contracts import NotificationType

WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="Where deliveries are POSTed: an http(s) URL with a public host.",
        examples=["https://hooks.example.com/pepite"],
    ),
    AfterValidator(check_url),
]


def _distinct(types: list[NotificationType]) -> list[NotificationType]:
    return list(dict.fromkeys(types))


EventTypes = Annotated[
    list[NotificationType],
    Field(
        min_length=1,
        max_length=len(NotificationType),
        description="The event types delivered to this subscription.",
    ),
    AfterValidator(_distinct),
]
Description = Annotated[str, Field(max_length=500)]


class WebhookCreate(BaseModel):
    url: WebhookUrl
    event_types: EventTypes
    description: Description = ""
    active: bool = True


class WebhookUpdate(BaseModel):
    """Fields to change; those left out keep their value."""

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    active: bool | None = Field(
        default=None,
        description="false pauses deliveries; true re-enables (and resets the failure count).",
    )


class Webhook(BaseModel):
    """A webhook subscription, as listed: never its secret."""

    webhook_id: str
    community_id: str
    url: str
    event_types: list[NotificationType]
    description: str
    active: bool
    consecutive_failures: int = Field(
        description="Failed attempts since the last success; at the limit, it is disabled."
    )
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None


class CreatedWebhook(Webhook):
    """A new subscription: ``secret`` is shown this once and cannot be recovered."""

    secret: str = Field(description="Signs every delivery (see Pepite-Signature).")


class RotatedSecret(BaseModel):
    """A new signing secret, shown this once."""

    webhook_id: str
    secret: str
    rotated_at: datetime
    previous_secret_valid_until: datetime | None = Field(
        description="Until then deliveries are signed with both the new and the previous secret."
    )


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryAttempt(BaseModel):
    """One POST of a delivery to its receiver."""

    number: int = Field(description="1 for the first attempt.")
    started_at: datetime
    duration_ms: float
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why the attempt failed; null when it succeeded.")
    manual: bool = Field(description="Asked for with a redelivery.")


class Delivery(BaseModel):
    """One event for one subscription, and where its delivery stands."""

    delivery_id: str = Field(description="Also sent as the Pepite-Delivery header.")
    webhook_id: str
    event_id: str
    event_type: NotificationType
    status: DeliveryStatus
    attempt_count: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None


class DeliveryDetail(Delivery):
    """A delivery with its attempts (oldest first) and the event it carries."""

    attempts: list[DeliveryAttempt]
    event: dict[str, Any] = Field(description="The JSON body POSTed to the receiver.")


class PingSent(BaseModel):
    """A test notification on its way to one subscription."""

    event_id: str
    event_type: NotificationType
