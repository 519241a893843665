"""Alerts as people review them: listed, acknowledged ("someone is on it") and resolved.

The leaderboard service raises alerts (spikes, crisis signals) into ``alerts`` and sends
each once as ``alert.raised``; this is where a human records what became of one. Nothing
here acts on the community: the status is a note for the team and for the dashboards
(an alert neither acknowledged nor resolved counts as open).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ReturnDocument

from pepite_api.pagination import after_descending
from pepite_contracts import ChannelRef
from pepite_kit import Database, IndexSpec

ALERTS = "alerts"

ALERT_REVIEW_INDEXES = (
    # The review list: a community's alerts of a status, newest first.
    IndexSpec(
        ALERTS, [("community_id", 1), ("status", 1), ("raised_at", -1), ("_id", -1)], "review"
    ),
    IndexSpec(ALERTS, [("community_id", 1), ("raised_at", -1), ("_id", -1)], "community_raised"),
)


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertReview(BaseModel):
    """What a reviewer records: a short note, optional."""

    note: str | None = Field(default=None, max_length=2000)


class Alert(BaseModel):
    """An alert and what became of it."""

    alert_id: str
    kind: str = Field(description="E.g. volume_spike, complaints_spike, member_distress.")
    severity: str = Field(description="info, warning or critical.")
    title: str
    detail: str
    channel: ChannelRef | None
    metrics: dict[str, float]
    message_ids: list[str] = Field(description="The messages behind the alert.")
    member_id: str | None = Field(description="The member concerned, for a crisis signal.")
    hour: datetime | None = Field(description="The hour the signal starts (UTC).")
    raised_at: datetime
    status: AlertStatus
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="The id of the API key that did it.")
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None


def _status_query(status: AlertStatus) -> dict[str, Any]:
    # Alerts stored before reviews existed have no status: they are open.
    if status is AlertStatus.OPEN:
        return {"status": {"$in": [AlertStatus.OPEN.value, None]}}
    return {"status": status.value}


def _alert(doc: dict[str, Any]) -> Alert:
    channel = doc.get("channel")
    return Alert(
        alert_id=doc["_id"],
        kind=doc["kind"],
        severity=doc["severity"],
        title=doc.get("title") or doc["kind"].replace("_", " "),
        detail=doc.get("detail") or "",
        channel=ChannelRef.model_validate(channel) if channel else None,
        metrics=doc.get("metrics") or {},
        message_ids=doc.get("message_ids") or [],
        member_id=doc.get("member_id"),
        hour=doc.get("hour"),
        raised_at=doc.get("raised_at") or doc.get("hour") or datetime.now(UTC),
        status=AlertStatus(doc.get("status") or AlertStatus.OPEN.value),
        acknowledged_at=doc.get("acknowledged_at"),
        acknowledged_by=doc.get("acknowledged_by"),
        resolved_at=doc.get("resolved_at"),
        resolved_by=doc.get("resolved_by"),
        note=doc.get("note"),
    )


class AlertReviewRepository:
    """All MongoDB calls of alert reviews."""

    def __init__(self, db: Database) -> None:
        self._alerts = db[ALERTS]

    async def page(
        self,
        community_id: str,
        *,
        status: AlertStatus | None,
        kind: str | None,
        severity: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Alert]:
        """A page of the community's alerts, newest first."""
        query: dict[str, Any] = {"community_id": community_id}
        if status is not None:
            query.update(_status_query(status))
        if kind is not None:
            query["kind"] = kind
        if severity is not None:
            query["severity"] = severity
        if after is not None:
            query = {"$and": [query, after_descending("raised_at", after[0], after[1])]}
        cursor = self._alerts.find(query).sort([("raised_at", -1), ("_id", -1)]).limit(limit)
        return [_alert(doc) async for doc in cursor]

    async def get(self, community_id: str, alert_id: str) -> Alert | None:
        doc = await self._alerts.find_one({"_id": alert_id, "community_id": community_id})
        return _alert(doc) if doc else None

    async def acknowledge(
        self, community_id: str, alert_id: str, key_id: str, note: str | None
    ) -> Alert | None:
        """Mark an open alert acknowledged; an acknowledged or resolved one is left as it is.

        Returns:
            The alert as it now stands, or None if the community has no such alert.
        """
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "status": AlertStatus.ACKNOWLEDGED.value,
            "acknowledged_at": now,
            "acknowledged_by": key_id,
        }
        if note is not None:
            values["note"] = note
        doc = await self._alerts.find_one_and_update(
            {"_id": alert_id, "community_id": community_id, **_status_query(AlertStatus.OPEN)},
            {"$set": values},
            return_document=ReturnDocument.AFTER,
        )
        return _alert(doc) if doc else await self.get(community_id, alert_id)

    async def resolve(
        self, community_id: str, alert_id: str, key_id: str, note: str | None
    ) -> Alert | None:
        """Mark an alert resolved (acknowledged on the way if nobody had); resolving
        it again changes nothing but the note.

        Returns:
            The alert as it now stands, or None if the community has no such alert.
        """
        now = {"$literal": datetime.now(UTC)}
        by = {"$literal": key_id}

        def first(field: str, value: dict[str, Any]) -> dict[str, Any]:
            # Evaluated on the alert as it was: the first acknowledgement or resolution stays.
            return {"$ifNull": [f"${field}", value]}

        def first_by(field: str, by_field: str) -> dict[str, Any]:
            return {
                "$cond": [{"$eq": [{"$ifNull": [f"${field}", None]}, None]}, by, f"${by_field}"]
            }

        review: dict[str, Any] = {
            "status": AlertStatus.RESOLVED.value,
            "acknowledged_at": first("acknowledged_at", now),
            "acknowledged_by": first_by("acknowledged_at", "acknowledged_by"),
            "resolved_at": first("resolved_at", now),
            "resolved_by": first_by("resolved_at", "resolved_by"),
        }
        if note is not None:
            review["note"] = {"$literal": note}
        # One update: no moment where the alert is acknowledged but not yet resolved.
        doc = await self._alerts.find_one_and_update(
            {"_id": alert_id, "community_id": community_id},
            [{"$set": review}],
            return_document=ReturnDocument.AFTER,
        )
        return _alert(doc) if doc else None
