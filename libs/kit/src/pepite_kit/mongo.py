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
from pymongo.errors import OperationFailure

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


#: Server codes for "an index of this name exists with other keys or options".
_INDEX_CONFLICTS = frozenset({85, 86})
_INDEX_NOT_FOUND = 27


async def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> None:
    """Create declared indexes (a no-op for those that already exist).

    Indexes are declared in code: when one of the same name exists with other keys or
    options (the declaration changed), it is rebuilt as declared.
    """
    by_collection: dict[str, list[IndexModel]] = {}
    for spec in specs:
        by_collection.setdefault(spec.collection, []).append(spec.model())
    for collection, models in by_collection.items():
        try:
            await db[collection].create_indexes(models)
        except OperationFailure as exc:
            if exc.code not in _INDEX_CONFLICTS:
                raise
            for model in models:
                await _replace_index(db, collection, model)
    if by_collection:
        logger.info("indexes ensured", extra={"collections": sorted(by_collection)})


async def drop_obsolete_indexes(db: Database, collection: str, names: Iterable[str]) -> None:
    """Drop indexes an earlier version declared and this one no longer reads.

    An index nobody reads still costs every write and its share of memory.
    """
    for name in names:
        try:
            await db[collection].drop_index(name)
        except OperationFailure as exc:
            if exc.code != _INDEX_NOT_FOUND:
                raise
        else:
            logger.warning("dropped an obsolete index", extra={"index": name})


async def _replace_index(db: Database, collection: str, model: IndexModel) -> None:
    try:
        await db[collection].create_indexes([model])
    except OperationFailure as exc:
        if exc.code not in _INDEX_CONFLICTS:
            raise
        name = model.document["name"]
        try:
            await db[collection].drop_index(name)
        except OperationFailure as missing:
            if missing.code != _INDEX_NOT_FOUND:
                raise
            # The same keys are indexed under another name: that index serves as well.
            logger.warning("index exists under another name", extra={"index": name})
            return
        logger.warning("rebuilt an index whose declaration changed", extra={"index": name})
        await db[collection].create_indexes([model])


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
