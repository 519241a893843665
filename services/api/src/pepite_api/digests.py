"""Stored digests as the API reads them: the community's (``digests``) and members'
personalized ones (``personal_digests``), both written by the digest service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

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
