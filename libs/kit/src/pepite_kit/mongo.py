"""MongoDB client lifespan and index declarations.

Repositories declare the indexes they rely on as :class:`IndexSpec` values; the
service creates them at start-up, so a fresh database is usable at once and an
index is never something an operator has to remember.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from pepite_kit.settings import MongoSettings

logger = logging.getLogger(__name__)

Document = dict[str, Any]
Database = AsyncDatabase[Document]


@dataclass(frozen=True)
class IndexSpec:
    """One index a repository needs."""

    collection: str
    keys: Sequence[tuple[str, int | str]]
    name: str
    unique: bool = False
    partial_filter: Mapping[str, Any] | None = None
    expire_after_seconds: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def model(self) -> IndexModel:
        kwargs: dict[str, Any] = {"name": self.name, "unique": self.unique, **self.options}
        if self.partial_filter is not None:
            kwargs["partialFilterExpression"] = dict(self.partial_filter)
        if self.expire_after_seconds is not None:
            kwargs["expireAfterSeconds"] = self.expire_after_seconds
        return IndexModel(list(self.keys), **kwargs)


def create_client(settings: MongoSettings, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client with timezone-aware datetimes (everything stored is UTC)."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
    )


async def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> None:
    """Create declared indexes (a no-op for those that already exist)."""
    by_collection: dict[str, list[IndexModel]] = {}
    for spec in specs:
        by_collection.setdefault(spec.collection, []).append(spec.model())
    for collection, models in by_collection.items():
        await db[collection].create_indexes(models)
    if by_collection:
        logger.info("indexes ensured", extra={"collections": sorted(by_collection)})


@asynccontextmanager
async def mongo_database(
    settings: MongoSettings, *, app_name: str, indexes: Iterable[IndexSpec] = ()
) -> AsyncIterator[Database]:
    """Connect, check the server answers, create indexes; close on exit."""
    client = create_client(settings, app_name=app_name)
    try:
        await client.admin.command("ping")
        db = client[settings.mongodb_db]
        await ensure_indexes(db, indexes)
        yield db
    finally:
        await client.close()


async def ping(db: Database) -> bool:
    """Whether the server answers right now."""
    try:
        await db.client.admin.command("ping")
    except Exception:
        return False
    return True
