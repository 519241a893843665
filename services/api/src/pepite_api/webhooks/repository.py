"""The webhook collections: subscriptions and their deliveries. All MongoDB calls are here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from pepite_api.pagination import after_descending
from pepite_api.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryDetail,
    DeliveryStatus,
    Webhook,
    WebhookCreate,
)
from pepite_api.webhooks.service import MAX_LOGGED_ATTEMPTS, new_webhook_id, short_error
from pepite_kit import Database, IndexSpec

SUBSCRIPTIONS = "webhook_subscriptions"
DELIVERIES = "webhook_deliveries"

#: How long a finished delivery stays in the log (and can be redelivered).
DELIVERY_LOG_RETENTION_S = 30 * 24 * 3600
FINISHED_AT = "finished_at"

WEBHOOK_INDEXES = (
    IndexSpec(
        SUBSCRIPTIONS, [("community_id", 1), ("created_at", -1), ("_id", -1)], "community_created"
    ),
    # Fan-out: the active subscriptions of a community that want an event type.
    IndexSpec(
        SUBSCRIPTIONS, [("community_id", 1), ("event_types", 1), ("active", 1)], "community_type"
    ),
    # The worker's poll for deliveries due; pending ones are few, the others are history.
    IndexSpec(DELIVERIES, [("status", 1), ("next_attempt_at", 1)], "status_due"),
    IndexSpec(DELIVERIES, [("webhook_id", 1), ("created_at", -1), ("_id", -1)], "webhook_created"),
    IndexSpec(
        DELIVERIES,
        [("webhook_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)],
        "webhook_status_created",
    ),
    # The delivery log is history: a delivery is dropped once it has been finished
    # (delivered or failed) this long. A pending one has no end and is never dropped.
    IndexSpec(
        DELIVERIES,
        [(FINISHED_AT, 1)],
        "finished_ttl",
        expire_after_seconds=DELIVERY_LOG_RETENTION_S,
    ),
)

_NOT_SECRET = {"secret_sealed": 0, "previous_secret_sealed": 0}
_SUMMARY = {"body": 0, "attempts": 0, "lease_token": 0, "lease_owner": 0}
_DISABLED_BY_API = "disabled through the API"


class DeliveryPendingError(Exception):
    """A redelivery asked for a delivery that is already waiting for an attempt."""


def _webhook(doc: dict[str, Any]) -> Webhook:
    return Webhook(
        webhook_id=doc["_id"],
        community_id=doc["community_id"],
        url=doc["url"],
        event_types=doc["event_types"],
        description=doc.get("description", ""),
        active=doc["active"],
        consecutive_failures=doc.get("consecutive_failures", 0),
        disabled_at=doc.get("disabled_at"),
        disabled_reason=doc.get("disabled_reason"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        secret_rotated_at=doc.get("secret_rotated_at"),
    )


def _delivery_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": doc["_id"],
        "webhook_id": doc["webhook_id"],
        "event_id": doc["event_id"],
        "event_type": doc["event_type"],
        "status": doc["status"],
        "attempt_count": doc.get("attempt_count", 0),
        "created_at": doc["created_at"],
        # A claimed delivery's next_attempt_at is its lease's end: an attempt is under way.
        "next_attempt_at": doc.get("next_attempt_at")
        if doc["status"] == DeliveryStatus.PENDING
        else None,
        "last_attempt_at": doc.get("last_attempt_at"),
        "last_status_code": doc.get("last_status_code"),
        "last_error": doc.get("last_error"),
        "delivered_at": doc.get("delivered_at"),
        "failed_at": doc.get("failed_at"),
    }


def _literal(values: dict[str, Any]) -> dict[str, Any]:
    # In an update pipeline a string starting with "$" would be read as a field path.
    return {key: {"$literal": value} for key, value in values.items()}


@dataclass(frozen=True)
class Target:
    """A subscription as the worker needs it to deliver."""

    webhook_id: str
    community_id: str
    url: str
    active: bool
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_until: datetime | None


@dataclass(frozen=True)
class NewDelivery:
    """An event to deliver to one subscription."""

    delivery_id: str
    community_id: str
    webhook_id: str
    event_id: str
    event_type: str
    body: str


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this worker holds the lease of: nobody else attempts it meanwhile."""

    delivery_id: str
    webhook_id: str
    event_type: str
    body: str
    attempt_count: int
    retry_until: datetime | None
    manual: bool
    lease_token: str


class SubscriptionRepository:
    """The ``webhook_subscriptions`` collection."""

    def __init__(self, db: Database) -> None:
        self._collection = db[SUBSCRIPTIONS]

    async def create(
        self, community_id: str, request: WebhookCreate, *, secret_sealed: str, now: datetime
    ) -> Webhook:
        doc: dict[str, Any] = {
            "_id": new_webhook_id(),
            "community_id": community_id,
            "url": request.url,
            "event_types": [t.value for t in request.event_types],
            "description": request.description,
            "active": request.active,
            "secret_sealed": secret_sealed,
            "previous_secret_sealed": None,
            "previous_secret_until": None,
            "consecutive_failures": 0,
            "disabled_at": None if request.active else now,
            "disabled_reason": None if request.active else _DISABLED_BY_API,
            "created_at": now,
            "updated_at": now,
            "secret_rotated_at": None,
        }
        await self._collection.insert_one(doc)
        return _webhook(doc)

    async def page(
        self, community_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Webhook]:
        """Subscriptions of a community, newest first."""
        query: dict[str, Any] = {"community_id": community_id}
        if after is not None:
            query.update(after_descending("created_at", *after))
        cursor = (
            self._collection.find(query, _NOT_SECRET)
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        return [_webhook(doc) async for doc in cursor]

    async def get(self, community_id: str, webhook_id: str) -> Webhook | None:
        doc = await self._collection.find_one(
            {"_id": webhook_id, "community_id": community_id}, _NOT_SECRET
        )
        return None if doc is None else _webhook(doc)

    async def update(
        self, community_id: str, webhook_id: str, values: dict[str, Any], *, now: datetime
    ) -> Webhook | None:
        """Change fields; turning ``active`` on or off also records or clears why.

        One pipeline update, so the change is judged against the stored state
        atomically: re-enabling a disabled subscription resets its failure count, and
        disabling an already disabled one keeps the reason it was disabled for.
        """
        was_active = {"$eq": ["$active", True]}
        stages: list[dict[str, Any]] = []
        if values.get("active") is True:
            stages.append(
                {
                    "$set": {
                        "consecutive_failures": {"$cond": [was_active, "$consecutive_failures", 0]},
                        "disabled_at": {"$cond": [was_active, "$disabled_at", None]},
                        "disabled_reason": {"$cond": [was_active, "$disabled_reason", None]},
                    }
                }
            )
        elif values.get("active") is False:
            stages.append(
                {
                    "$set": {
                        "disabled_at": {"$cond": [was_active, now, "$disabled_at"]},
                        "disabled_reason": {
                            "$cond": [
                                was_active,
                                {"$literal": _DISABLED_BY_API},
                                "$disabled_reason",
                            ]
                        },
                    }
                }
            )
        stages.append({"$set": {**_literal(values), "updated_at": now}})
        doc = await self._collection.find_one_and_update(
            {"_id": webhook_id, "community_id": community_id},
            stages,
            projection=_NOT_SECRET,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _webhook(doc)

    async def rotate_secret(
        self,
        community_id: str,
        webhook_id: str,
        *,
        secret_sealed: str,
        previous_valid_until: datetime | None,
        now: datetime,
    ) -> bool:
        """Replace the secret; the previous one keeps signing until ``previous_valid_until``."""
        keep_previous = previous_valid_until is not None
        result = await self._collection.update_one(
            {"_id": webhook_id, "community_id": community_id},
            [
                {
                    "$set": {
                        "previous_secret_sealed": "$secret_sealed" if keep_previous else None,
                        "previous_secret_until": previous_valid_until,
                    }
                },
                {
                    "$set": {
                        "secret_sealed": {"$literal": secret_sealed},
                        "secret_rotated_at": now,
                        "updated_at": now,
                    }
                },
            ],
        )
        return result.matched_count == 1

    async def delete(self, community_id: str, webhook_id: str) -> bool:
        result = await self._collection.delete_one(
            {"_id": webhook_id, "community_id": community_id}
        )
        return result.deleted_count == 1

    async def wanting(self, community_id: str, event_type: str) -> list[str]:
        """Ids of the community's active subscriptions that asked for ``event_type``."""
        cursor = self._collection.find(
            {"community_id": community_id, "event_types": event_type, "active": True},
            {"_id": 1},
        )
        return [doc["_id"] async for doc in cursor]

    async def is_active(self, community_id: str, webhook_id: str) -> bool:
        doc = await self._collection.find_one(
            {"_id": webhook_id, "community_id": community_id, "active": True}, {"_id": 1}
        )
        return doc is not None

    async def target(self, webhook_id: str) -> Target | None:
        doc = await self._collection.find_one({"_id": webhook_id})
        if doc is None:
            return None
        return Target(
            webhook_id=doc["_id"],
            community_id=doc["community_id"],
            url=doc["url"],
            active=doc["active"],
            secret_sealed=doc["secret_sealed"],
            previous_secret_sealed=doc.get("previous_secret_sealed"),
            previous_secret_until=doc.get("previous_secret_until"),
        )

    async def record_success(self, webhook_id: str, now: datetime) -> None:
        await self._collection.update_one(
            {"_id": webhook_id}, {"$set": {"consecutive_failures": 0, "last_success_at": now}}
        )

    async def record_failure(
        self, webhook_id: str, now: datetime, *, error: str, disable_after: int
    ) -> bool:
        """Count a failed attempt; disable the subscription at ``disable_after`` in a row.

        Returns:
            Whether this failure disabled the subscription.
        """
        doc = await self._collection.find_one_and_update(
            {"_id": webhook_id},
            {"$inc": {"consecutive_failures": 1}, "$set": {"last_failure_at": now}},
            projection={"consecutive_failures": 1, "active": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None or not doc["active"] or doc["consecutive_failures"] < disable_after:
            return False
        failures = doc["consecutive_failures"]
        result = await self._collection.update_one(
            # Only the worker that crosses the line disables it (and says so once).
            {"_id": webhook_id, "active": True},
            {
                "$set": {
                    "active": False,
                    "disabled_at": now,
                    "disabled_reason": short_error(
                        f"disabled automatically after {failures} failed delivery attempts "
                        f"in a row; last: {error}"
                    ),
                    "updated_at": now,
                }
            },
        )
        return result.modified_count == 1


class DeliveryRepository:
    """The ``webhook_deliveries`` collection: one document per event and subscription."""

    def __init__(self, db: Database) -> None:
        self._collection = db[DELIVERIES]

    async def insert_new(self, deliveries: Sequence[NewDelivery], now: datetime) -> int:
        """Store deliveries not stored yet, due now; returns how many were new.

        Keyed by the delivery id (event and subscription), so a replayed event
        finds its deliveries stored and creates none.
        """
        if not deliveries:
            return 0
        operations = [
            UpdateOne(
                {"_id": item.delivery_id},
                {
                    "$setOnInsert": {
                        "community_id": item.community_id,
                        "webhook_id": item.webhook_id,
                        "event_id": item.event_id,
                        "event_type": item.event_type,
                        "body": item.body,
                        "status": DeliveryStatus.PENDING.value,
                        "attempt_count": 0,
                        "attempts": [],
                        "created_at": now,
                        "next_attempt_at": now,
                        "retry_until": None,
                        "manual": False,
                    }
                },
                upsert=True,
            )
            for item in deliveries
        ]
        result = await self._collection.bulk_write(operations, ordered=False)
        return result.upserted_count

    async def page(
        self,
        community_id: str,
        webhook_id: str,
        *,
        status: DeliveryStatus | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> list[Delivery]:
        """A subscription's deliveries, newest first."""
        query: dict[str, Any] = {"webhook_id": webhook_id, "community_id": community_id}
        if status is not None:
            query["status"] = status.value
        if after is not None:
            query.update(after_descending("created_at", *after))
        cursor = (
            self._collection.find(query, _SUMMARY)
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        return [Delivery(**_delivery_fields(doc)) async for doc in cursor]

    async def get(
        self, community_id: str, webhook_id: str, delivery_id: str
    ) -> DeliveryDetail | None:
        doc = await self._collection.find_one(
            {"_id": delivery_id, "webhook_id": webhook_id, "community_id": community_id}
        )
        if doc is None:
            return None
        return DeliveryDetail(
            **_delivery_fields(doc),
            attempts=[DeliveryAttempt(**attempt) for attempt in doc.get("attempts", [])],
            event=_json_object(doc["body"]),
        )

    async def request_redelivery(
        self, community_id: str, webhook_id: str, delivery_id: str, now: datetime
    ) -> Delivery | None:
        """Schedule one more attempt, now; it decides the delivery's status.

        Returns:
            The delivery, or None if there is none with this id.

        Raises:
            DeliveryPendingError: an attempt is already scheduled.
        """
        key = {"_id": delivery_id, "webhook_id": webhook_id, "community_id": community_id}
        doc = await self._collection.find_one_and_update(
            {**key, "status": {"$ne": DeliveryStatus.PENDING.value}},
            {
                "$set": {
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": now,
                    # One attempt: if it fails, the delivery is failed again at once.
                    "retry_until": now,
                    "manual": True,
                    "failed_at": None,
                    FINISHED_AT: None,
                }
            },
            projection=_SUMMARY,
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return Delivery(**_delivery_fields(doc))
        if await self._collection.find_one(key, {"_id": 1}) is not None:
            raise DeliveryPendingError(delivery_id)
        return None

    async def claim(self, now: datetime, *, lease_s: float, owner: str) -> ClaimedDelivery | None:
        """Take the most overdue delivery, if any, for ``lease_s`` seconds.

        The claim moves ``next_attempt_at`` to the end of the lease in the same atomic
        update, so other workers skip it; if this worker dies, the delivery is due
        again when the lease ends.
        """
        token = uuid.uuid4().hex
        doc = await self._collection.find_one_and_update(
            {"status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
            {
                "$set": {
                    "next_attempt_at": now + timedelta(seconds=lease_s),
                    "lease_token": token,
                    "lease_owner": owner,
                }
            },
            sort=[("next_attempt_at", 1)],
            projection={"attempts": 0},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return ClaimedDelivery(
            delivery_id=doc["_id"],
            webhook_id=doc["webhook_id"],
            event_type=doc["event_type"],
            body=doc["body"],
            attempt_count=doc.get("attempt_count", 0),
            retry_until=doc.get("retry_until"),
            manual=bool(doc.get("manual")),
            lease_token=token,
        )

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (a lease's end for one in flight)."""
        doc = await self._collection.find_one(
            {"status": DeliveryStatus.PENDING.value},
            {"next_attempt_at": 1},
            sort=[("next_attempt_at", 1)],
        )
        return None if doc is None else doc.get("next_attempt_at")

    async def record_attempt(
        self,
        claim: ClaimedDelivery,
        attempt: DeliveryAttempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
        retry_until: datetime,
        now: datetime,
    ) -> bool:
        """Log an attempt and its consequence; False if the lease was lost meanwhile."""
        values: dict[str, Any] = {
            "status": status.value,
            "next_attempt_at": next_attempt_at,
            "retry_until": retry_until,
            "manual": False,
            "last_attempt_at": attempt.started_at,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
            values[FINISHED_AT] = now
        elif status is DeliveryStatus.FAILED:
            values["failed_at"] = now
            values[FINISHED_AT] = now
        result = await self._collection.update_one(
            {"_id": claim.delivery_id, "lease_token": claim.lease_token},
            {
                "$set": values,
                "$unset": {"lease_token": "", "lease_owner": ""},
                "$inc": {"attempt_count": 1},
                "$push": {
                    "attempts": {"$each": [attempt.model_dump()], "$slice": -MAX_LOGGED_ATTEMPTS}
                },
            },
        )
        return result.matched_count == 1

    async def give_up(self, claim: ClaimedDelivery, reason: str, now: datetime) -> None:
        """Fail a delivery without an attempt (its subscription is disabled)."""
        await self._collection.update_one(
            {"_id": claim.delivery_id, "lease_token": claim.lease_token},
            {
                "$set": {
                    "status": DeliveryStatus.FAILED.value,
                    "next_attempt_at": None,
                    "manual": False,
                    "last_error": reason,
                    "failed_at": now,
                    FINISHED_AT: now,
                },
                "$unset": {"lease_token": "", "lease_owner": ""},
            },
        )

    async def drop(self, claim: ClaimedDelivery) -> None:
        """Delete a delivery whose subscription was deleted."""
        await self._collection.delete_one(
            {"_id": claim.delivery_id, "lease_token": claim.lease_token}
        )

    async def delete_for(self, webhook_id: str) -> int:
        result = await self._collection.delete_many({"webhook_id": webhook_id})
        return result.deleted_count


def _json_object(body: str) -> dict[str, Any]:
    value = json.loads(body)
    return value if isinstance(value, dict) else {"value": value}
