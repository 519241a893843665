"""Webhook subscriptions of a community, their deliveries, redelivery and a test ping.

Routes only store and read: deliveries are attempted by the webhook worker
(``python -m pepite_api.worker``), never inside a request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Path, Query, Response

from pepite_api.communities import CommunityRepository
from pepite_api.deps import AdminKey, DbDep, PublisherDep, ReadKey, SettingsDep
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES, PROBLEM_JSON, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.settings import Settings
from pepite_api.webhooks.crypto import SECRETS_KEY_SETTING, SecretBox, new_secret
from pepite_api.webhooks.models import (
    CreatedWebhook,
    Delivery,
    DeliveryDetail,
    DeliveryStatus,
    PingSent,
    RotatedSecret,
    Webhook,
    WebhookCreate,
    WebhookUpdate,
)
from pepite_api.webhooks.repository import (
    DeliveryPendingError,
    DeliveryRepository,
    SubscriptionRepository,
)
from pepite_api.webhooks.service import DELIVERY_ID_PATTERN, WEBHOOK_ID_PATTERN, ping_event
from pepite_api.webhooks.targets import AllowedTargets, TargetRefusedError, checked_addresses
from pepite_contracts import NotificationType, Topic, partition_key

router = APIRouter(
    prefix="/v1/communities/{community_id}/webhooks",
    tags=["webhooks"],
    responses=COMMON_RESPONSES,
)

WebhookIdPath = Annotated[str, Path(pattern=WEBHOOK_ID_PATTERN)]
DeliveryIdPath = Annotated[str, Path(pattern=DELIVERY_ID_PATTERN)]


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


_NO_SECRETS_KEY: dict[int | str, dict[str, Any]] = {
    503: _problem_doc(f"Secrets cannot be stored: {SECRETS_KEY_SETTING} is unset.")
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem_doc("The subscription is disabled, or an attempt is already scheduled.")
}


async def get_subscriptions(db: DbDep) -> SubscriptionRepository:
    return SubscriptionRepository(db)


async def get_deliveries(db: DbDep) -> DeliveryRepository:
    return DeliveryRepository(db)


SubscriptionsDep = Annotated[SubscriptionRepository, Depends(get_subscriptions)]
DeliveriesDep = Annotated[DeliveryRepository, Depends(get_deliveries)]


def _now() -> datetime:
    return datetime.now(UTC)


def _box(settings: Settings) -> SecretBox:
    box = SecretBox.from_settings(settings)
    if box is None:
        raise ProblemError(
            503,
            f"webhook secrets cannot be stored: the server has no {SECRETS_KEY_SETTING} "
            "(at least 32 characters); ask its operator to set it",
        )
    return box


async def _check_target(url: str, settings: Settings) -> None:
    """Refuse a URL whose host resolves to an address webhooks may not reach."""
    try:
        await checked_addresses(
            httpx.URL(url),
            AllowedTargets.parse(settings.webhook_allowed_targets),
            timeout_s=settings.webhook_timeout_seconds,
        )
    except TargetRefusedError as exc:
        raise ProblemError(422, f"body.url refused: {exc}") from None


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    return None if cursor is None else decode_cursor(cursor, datetime, str)


async def _webhook(
    subscriptions: SubscriptionRepository, community_id: str, webhook_id: str
) -> Webhook:
    webhook = await subscriptions.get(community_id, webhook_id)
    if webhook is None:
        raise ProblemError(404, f"no webhook {webhook_id!r} in community {community_id!r}")
    return webhook


@router.post("", status_code=201, response_model=CreatedWebhook, responses=_NO_SECRETS_KEY)
async def create_webhook(
    community_id: CommunityIdPath,
    request: WebhookCreate,
    _: AdminKey,
    settings: SettingsDep,
    subscriptions: SubscriptionsDep,
    db: DbDep,
) -> CreatedWebhook:
    """Subscribe a URL to event types. The signing secret is in the answer, and only there."""
    box = _box(settings)
    await _check_target(request.url, settings)
    await CommunityRepository(db).ensure(community_id)
    secret = new_secret()
    webhook = await subscriptions.create(
        community_id, request, secret_sealed=box.seal(secret), now=_now()
    )
    return CreatedWebhook(**webhook.model_dump(), secret=secret)


@router.get("", response_model=Page[Webhook])
async def list_webhooks(
    community_id: CommunityIdPath,
    _: ReadKey,
    subscriptions: SubscriptionsDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Webhook]:
    """The community's subscriptions, newest first (never their secrets)."""
    items = await subscriptions.page(community_id, limit=limit + 1, after=_after(cursor))
    return page_of(items, limit, lambda w: encode_cursor(w.created_at, w.webhook_id))


@router.get("/{webhook_id}", response_model=Webhook)
async def get_webhook(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    _: ReadKey,
    subscriptions: SubscriptionsDep,
) -> Webhook:
    """A subscription, its state and why it was disabled, if it was."""
    return await _webhook(subscriptions, community_id, webhook_id)


@router.patch("/{webhook_id}", response_model=Webhook)
async def update_webhook(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    changes: WebhookUpdate,
    _: AdminKey,
    settings: SettingsDep,
    subscriptions: SubscriptionsDep,
) -> Webhook:
    """Change the URL, event types, description, or pause (active=false) and re-enable.

    Re-enabling a disabled subscription resets its count of failed attempts.
    """
    values = {
        key: value
        for key, value in changes.model_dump(exclude_unset=True, mode="json").items()
        if value is not None
    }
    if "url" in values:
        await _check_target(values["url"], settings)
    webhook = await subscriptions.update(community_id, webhook_id, values, now=_now())
    if webhook is None:
        raise ProblemError(404, f"no webhook {webhook_id!r} in community {community_id!r}")
    return webhook


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    _: AdminKey,
    subscriptions: SubscriptionsDep,
    deliveries: DeliveriesDep,
) -> Response:
    """Delete a subscription and its delivery log; nothing more is sent to it."""
    if not await subscriptions.delete(community_id, webhook_id):
        raise ProblemError(404, f"no webhook {webhook_id!r} in community {community_id!r}")
    await deliveries.delete_for(webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", response_model=RotatedSecret, responses=_NO_SECRETS_KEY)
async def rotate_webhook_secret(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    _: AdminKey,
    settings: SettingsDep,
    subscriptions: SubscriptionsDep,
) -> RotatedSecret:
    """Replace the signing secret; the new one is in the answer, and only there.

    For ``webhook_secret_grace_hours`` deliveries carry a signature with each secret.
    """
    box = _box(settings)
    now = _now()
    grace = timedelta(hours=settings.webhook_secret_grace_hours)
    previous_until = now + grace if grace > timedelta(0) else None
    secret = new_secret()
    if not await subscriptions.rotate_secret(
        community_id,
        webhook_id,
        secret_sealed=box.seal(secret),
        previous_valid_until=previous_until,
        now=now,
    ):
        raise ProblemError(404, f"no webhook {webhook_id!r} in community {community_id!r}")
    return RotatedSecret(
        webhook_id=webhook_id,
        secret=secret,
        rotated_at=now,
        previous_secret_valid_until=previous_until,
    )


@router.get("/{webhook_id}/deliveries", response_model=Page[Delivery])
async def list_deliveries(
    *,
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    _: ReadKey,
    subscriptions: SubscriptionsDep,
    deliveries: DeliveriesDep,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Delivery]:
    """The subscription's deliveries, newest first."""
    await _webhook(subscriptions, community_id, webhook_id)
    items = await deliveries.page(
        community_id, webhook_id, status=status, limit=limit + 1, after=_after(cursor)
    )
    return page_of(items, limit, lambda d: encode_cursor(d.created_at, d.delivery_id))


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    delivery_id: DeliveryIdPath,
    _: ReadKey,
    deliveries: DeliveriesDep,
) -> DeliveryDetail:
    """A delivery with each attempt (time, status code or error, duration) and its event."""
    delivery = await deliveries.get(community_id, webhook_id, delivery_id)
    if delivery is None:
        raise ProblemError(404, f"no delivery {delivery_id!r} for webhook {webhook_id!r}")
    return delivery


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Delivery,
    responses=_CONFLICT,
)
async def redeliver(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    delivery_id: DeliveryIdPath,
    _: AdminKey,
    subscriptions: SubscriptionsDep,
    deliveries: DeliveriesDep,
) -> Delivery:
    """Schedule one more attempt of a delivered or failed delivery; the worker makes it.

    Its outcome becomes the delivery's status: delivered on a 2xx, failed otherwise
    (a redelivery is not retried).
    """
    webhook = await _webhook(subscriptions, community_id, webhook_id)
    if not webhook.active:
        raise ProblemError(
            409, f"webhook {webhook_id!r} is disabled: re-enable it (PATCH active=true) first"
        )
    try:
        delivery = await deliveries.request_redelivery(
            community_id, webhook_id, delivery_id, _now()
        )
    except DeliveryPendingError:
        raise ProblemError(
            409, f"delivery {delivery_id!r} already has an attempt scheduled"
        ) from None
    if delivery is None:
        raise ProblemError(404, f"no delivery {delivery_id!r} for webhook {webhook_id!r}")
    return delivery


@router.post(
    "/{webhook_id}/ping",
    status_code=202,
    response_model=PingSent,
    responses={**_CONFLICT, 503: _problem_doc("The broker is unavailable; try again.")},
)
async def ping_webhook(
    community_id: CommunityIdPath,
    webhook_id: WebhookIdPath,
    _: AdminKey,
    settings: SettingsDep,
    subscriptions: SubscriptionsDep,
    publisher: PublisherDep,
) -> PingSent:
    """Send this subscription (only) a test ``alert.raised`` of kind ``webhook_test``.

    It goes through the notifications topic like any event, whatever event types the
    subscription asked for; follow it in the delivery log.
    """
    webhook = await _webhook(subscriptions, community_id, webhook_id)
    if not webhook.active:
        raise ProblemError(
            409, f"webhook {webhook_id!r} is disabled: re-enable it (PATCH active=true) first"
        )
    event = ping_event(community_id, webhook_id)
    try:
        await publisher.publish(
            settings.topic_name(Topic.NOTIFICATIONS),
            event,
            key=partition_key(community_id, "webhooks"),
        )
        await publisher.flush()
    except KafkaError:
        raise ProblemError(503, "the event broker is unavailable; try again") from None
    return PingSent(event_id=event.event_id, event_type=NotificationType(event.type))
