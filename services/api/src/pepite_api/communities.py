"""Communities and their settings: the ``communities`` collection."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pymongo.errors import DuplicateKeyError

from pepite_contracts import CommunityId
from pepite_kit import Database

COMMUNITIES = "communities"


def _known_timezone(name: str) -> str:
    # available_timezones() rejects odd spellings ZoneInfo would load from a path.
    if name not in available_timezones():
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'")
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_known_timezone)]
LanguageCode = Annotated[
    str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1 code of the main language.")
]


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class DigestSchedule(BaseModel):
    """When the weekly digest goes out, in the community's time zone."""

    model_config = ConfigDict(extra="forbid")

    weekday: Weekday = Weekday.MONDAY
    hour: int = Field(default=9, ge=0, le=23)
    enabled: bool = True


class CommunitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    timezone: TimeZoneName = "UTC"
    language: LanguageCode = "en"
    digest: DigestSchedule = Field(default_factory=DigestSchedule)


class CommunityCreate(CommunitySettings):
    """A community to create; its id is the one imports and keys use."""

    community_id: CommunityId


class CommunityUpdate(BaseModel):
    """Settings to change; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    timezone: TimeZoneName | None = None
    language: LanguageCode | None = None
    digest: DigestSchedule | None = None


class Community(CommunitySettings):
    model_config = ConfigDict(extra="ignore")

    community_id: str
    created_at: datetime
    updated_at: datetime


class CommunityExistsError(Exception):
    """A community with this id already exists."""


def _community(doc: dict[str, Any]) -> Community:
    return Community(community_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


class CommunityRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, request: CommunityCreate) -> Community:
        """Raises: CommunityExistsError."""
        now = datetime.now(UTC)
        doc = {
            "_id": request.community_id,
            **request.model_dump(exclude={"community_id"}, mode="json"),
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._db[COMMUNITIES].insert_one(doc)
        except DuplicateKeyError:
            raise CommunityExistsError(request.community_id) from None
        return _community(doc)

    async def ensure(self, community_id: str) -> None:
        """Create the community with default settings unless it exists."""
        now = datetime.now(UTC)
        defaults = CommunitySettings().model_dump(mode="json")
        await self._db[COMMUNITIES].update_one(
            {"_id": community_id},
            {"$setOnInsert": {**defaults, "created_at": now, "updated_at": now}},
            upsert=True,
        )

    async def get(self, community_id: str) -> Community | None:
        doc = await self._db[COMMUNITIES].find_one({"_id": community_id})
        return None if doc is None else _community(doc)

    async def list(
        self, *, limit: int, after: str | None = None, only: str | None = None
    ) -> list[Community]:
        query: dict[str, Any] = {}
        if after is not None:
            query["_id"] = {"$gt": after}
        if only is not None:
            query = {"$and": [query, {"_id": only}]} if query else {"_id": only}
        cursor = self._db[COMMUNITIES].find(query).sort("_id", 1).limit(limit)
        return [_community(doc) async for doc in cursor]

    async def update(self, community_id: str, changes: CommunityUpdate) -> Community | None:
        values = changes.model_dump(exclude_unset=True, exclude_none=True, mode="json")
        values["updated_at"] = datetime.now(UTC)
        await self._db[COMMUNITIES].update_one({"_id": community_id}, {"$set": values})
        return await self.get(community_id)
