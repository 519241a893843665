"""Stored digests as the API reads them: the community's (``digests``) and members'
personalized ones (``personal_digests``), both written by the digest service; and the
digests asked for through the API (``digest_requests``), which that service builds."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pepite_api.pagination import after_descending
from pepite_kit import Database
from pepite_reports.digests import Digest, to_html, to_markdown

DIGESTS = "digests"
PERSONAL_DIGESTS = "personal_digests"

_SUMMARY_FIELDS = {
    "title": 1,
    "period_start": 1,
    "period_end": 1,
    "timezone": 1,
    "summary": 1,
    "writer": 1,
    "generated_at": 1,
}


class DigestSummary(BaseModel):
    """A digest in a list: what it covers, without its sections."""

    digest_id: str
    title: str
    period_start: datetime
    period_end: datetime = Field(description="End of the period (excluded).")
    timezone: str
    summary: str
    writer: str = Field(description="extractive, or the LLM model that wrote it.")
    generated_at: datetime


class DigestFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


#: Media type and renderer of each text format (JSON is the stored digest itself).
RENDERINGS = {
    DigestFormat.MARKDOWN: ("text/markdown; charset=utf-8", to_markdown),
    DigestFormat.HTML: ("text/html; charset=utf-8", to_html),
}


class DigestReader:
    """Reads the community's digests, or one member's personalized digests."""

    def __init__(self, db: Database, *, member_id: str | None = None) -> None:
        self._collection = db[PERSONAL_DIGESTS if member_id else DIGESTS]
        self._member_id = member_id

    def _scope(self, community_id: str) -> dict[str, Any]:
        scope: dict[str, Any] = {"community_id": community_id}
        if self._member_id:
            scope["member_id"] = self._member_id
        return scope

    async def page(
        self, community_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[DigestSummary]:
        """Up to ``limit`` digests, newest period first, after the cursor's ``after``."""
        query = self._scope(community_id)
        if after is not None:
            query.update(after_descending("period_start", *after))
        cursor = (
            self._collection.find(query, _SUMMARY_FIELDS)
            .sort([("period_start", -1), ("_id", -1)])
            .limit(limit)
        )
        return [DigestSummary(digest_id=doc.pop("_id"), **doc) async for doc in cursor]

    async def get(self, community_id: str, digest_id: str) -> Digest | None:
        """The digest, or ``None`` when this community (or member) has none by that id."""
        doc = await self._collection.find_one({"_id": digest_id, **self._scope(community_id)})
        if doc is None:
            return None
        doc["digest_id"] = doc.pop("_id")
        return Digest.model_validate(doc)


# ----- digests asked for through the API, built by the digest service -----

#: Written here when a digest is asked for, then updated by the digest service.
DIGEST_REQUESTS = "digest_requests"
#: The longest period a digest may be asked for (a quarter).
MAX_REQUESTED_DAYS = 92
#: Nowhere on Earth is it later than UTC+14: a period starting after that day starts in
#: the future whatever the community's time zone.
_LATEST_UTC_OFFSET = timedelta(hours=14)


def latest_today(now: datetime) -> date:
    """The latest calendar day it is anywhere at ``now``."""
    return (now.astimezone(UTC) + _LATEST_UTC_OFFSET).date()


class DigestPeriod(BaseModel):
    """The days a digest is asked for, both included, in the community's time zone."""

    model_config = ConfigDict(populate_by_name=True)

    first: date = Field(alias="from", description="First day (YYYY-MM-DD).")
    last: date = Field(
        alias="to",
        description=f"Last day (YYYY-MM-DD), at most {MAX_REQUESTED_DAYS} days after 'from'.",
    )

    @field_validator("first")
    @classmethod
    def _not_in_the_future(cls, first: date) -> date:
        if first > latest_today(datetime.now(UTC)):
            raise ValueError(f"the period starts in the future ({first})")
        return first

    @field_validator("last")
    @classmethod
    def _after_first_and_not_too_long(cls, last: date, info: ValidationInfo) -> date:
        first = info.data.get("first")
        if first is None:
            return last
        if last < first:
            raise ValueError(f"the period ends ({last}) before it starts ({first})")
        days = (last - first).days + 1
        if days > MAX_REQUESTED_DAYS:
            raise ValueError(
                f"the period is {days} days long; at most {MAX_REQUESTED_DAYS} may be asked for"
            )
        return last


class DigestRequestStatus(StrEnum):
    #: Queued: the digest service has not built it yet.
    PENDING = "pending"
    #: Built and stored: ``digest_id`` names it.
    DONE = "done"
    #: Nothing was said in the community during the period: no digest.
    EMPTY = "empty"
    #: The digest could not be built: ``error`` says why.
    FAILED = "failed"


class DigestRequestState(BaseModel):
    """A digest asked for and where it stands."""

    request_id: str
    community_id: str
    first: date
    last: date
    status: DigestRequestStatus
    requested_at: datetime
    finished_at: datetime | None = None
    digest_id: str | None = Field(default=None, description="Set once the digest is done.")
    error: str | None = Field(default=None, description="Why it failed.")


class DigestRequestRepository:
    """The ``digest_requests`` documents: written here, finished by the digest service."""

    def __init__(self, db: Database) -> None:
        self._collection = db[DIGEST_REQUESTS]

    async def create(self, community_id: str, period: DigestPeriod) -> DigestRequestState:
        """Record a new pending request for ``period``."""
        request = DigestRequestState(
            request_id=uuid.uuid4().hex,
            community_id=community_id,
            first=period.first,
            last=period.last,
            status=DigestRequestStatus.PENDING,
            # Milliseconds: what MongoDB keeps, so the stored and answered times agree.
            requested_at=_to_millis(datetime.now(UTC)),
        )
        document = request.model_dump(mode="json", exclude={"request_id"})
        document["requested_at"] = request.requested_at
        await self._collection.insert_one({"_id": request.request_id, **document})
        return request

    async def fail(self, request_id: str, error: str) -> None:
        """Mark a request that could not even be queued as failed."""
        await self._collection.update_one(
            {"_id": request_id, "status": DigestRequestStatus.PENDING.value},
            {
                "$set": {
                    "status": DigestRequestStatus.FAILED.value,
                    "error": error,
                    "finished_at": datetime.now(UTC),
                }
            },
        )

    async def get(self, community_id: str, request_id: str) -> DigestRequestState | None:
        """The request, or ``None`` when this community has none by that id."""
        doc = await self._collection.find_one({"_id": request_id, "community_id": community_id})
        if doc is None:
            return None
        return DigestRequestState.model_validate({"request_id": doc.pop("_id"), **doc})


def _to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
