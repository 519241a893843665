"""API keys: how clients prove who they are, and what each key may do.

A key is ``pep_<key id>_<secret>``. Only a SHA-256 digest of the whole key is stored:
keys are 256-bit random strings, so a fast digest is as safe as a slow password hash
and keeps authentication within a millisecond. A key belongs to one community or, for
operators, to none (an admin key), and carries scopes: ``read`` ⊂ ``write`` ⊂ ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from pepite_kit import Database, IndexSpec

API_KEYS = "api_keys"
KEY_PREFIX = "pep_"

KEY_INDEXES = (
    IndexSpec(API_KEYS, [("digest", 1)], "digest_unique", unique=True),
    IndexSpec(API_KEYS, [("community_id", 1), ("created_at", -1)], "community_created"),
)


class Scope(StrEnum):
    """What a key may do; each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)


def grants(scopes: frozenset[Scope], needed: Scope) -> bool:
    """Whether a key with ``scopes`` may do what ``needed`` allows."""
    return any(scope.rank >= needed.rank for scope in scopes)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its id: ``pep_<12 hex>_<43 url-safe characters>``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def looks_like_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX) and key.count("_") >= 2 and len(key) < 200


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its key says."""

    key_id: str
    community_id: str | None
    scopes: frozenset[Scope]
    rate_limit_per_minute: int | None

    @property
    def is_operator(self) -> bool:
        """An admin key of no community: manages every community."""
        return self.community_id is None and Scope.ADMIN in self.scopes

    def may_access(self, community_id: str) -> bool:
        return self.community_id is None or self.community_id == community_id


class ApiKeyInfo(BaseModel):
    """An API key as listed: never the key itself."""

    key_id: str
    name: str
    community_id: str | None = Field(description="Null for an operator key of every community.")
    scopes: list[Scope]
    rate_limit_per_minute: int | None = Field(
        description="Requests per minute; null uses the server's default."
    )
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class CreatedApiKey(ApiKeyInfo):
    """A new key: ``key`` is shown this once and cannot be recovered."""

    key: str


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


def _info(doc: dict[str, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=doc["_id"],
        name=doc["name"],
        community_id=doc.get("community_id"),
        scopes=[Scope(s) for s in doc["scopes"]],
        rate_limit_per_minute=doc.get("rate_limit_per_minute"),
        created_at=doc["created_at"],
        last_used_at=doc.get("last_used_at"),
        revoked_at=doc.get("revoked_at"),
    )


class KeyRepository:
    """The ``api_keys`` collection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        name: str,
        community_id: str | None,
        scopes: list[Scope],
        rate_limit_per_minute: int | None = None,
    ) -> CreatedApiKey:
        key_id, key = new_key()
        doc = {
            "_id": key_id,
            "digest": key_digest(key),
            "name": name,
            "community_id": community_id,
            "scopes": sorted({s.value for s in scopes}, key=lambda s: Scope(s).rank),
            "rate_limit_per_minute": rate_limit_per_minute,
            "created_at": datetime.now(UTC),
        }
        await self._db[API_KEYS].insert_one(doc)
        return CreatedApiKey(key=key, **_info(doc).model_dump())

    async def principal(self, key: str) -> Principal | None:
        """The live key matching ``key``, or None."""
        if not looks_like_key(key):
            return None
        digest = key_digest(key)
        doc = await self._db[API_KEYS].find_one({"digest": digest, "revoked_at": None})
        # The lookup is by digest; comparing again in constant time costs nothing.
        if doc is None or not hmac.compare_digest(doc["digest"], digest):
            return None
        return Principal(
            key_id=doc["_id"],
            community_id=doc.get("community_id"),
            scopes=frozenset(Scope(s) for s in doc["scopes"]),
            rate_limit_per_minute=doc.get("rate_limit_per_minute"),
        )

    async def list(
        self, community_id: str | None, *, limit: int, after: str | None = None
    ) -> list[ApiKeyInfo]:
        """Keys of a community (or operator keys when ``community_id`` is None), by id."""
        query: dict[str, Any] = {"community_id": community_id}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._db[API_KEYS].find(query, {"digest": 0}).sort("_id", 1).limit(limit)
        return [_info(doc) async for doc in cursor]

    async def get(self, community_id: str | None, key_id: str) -> ApiKeyInfo | None:
        doc = await self._db[API_KEYS].find_one(
            {"_id": key_id, "community_id": community_id}, {"digest": 0}
        )
        return None if doc is None else _info(doc)

    async def revoke(self, community_id: str | None, key_id: str) -> ApiKeyInfo | None:
        await self._db[API_KEYS].update_one(
            {"_id": key_id, "community_id": community_id, "revoked_at": None},
            {"$set": {"revoked_at": datetime.now(UTC)}},
        )
        return await self.get(community_id, key_id)

    async def touch(self, key_id: str, when: datetime) -> None:
        await self._db[API_KEYS].update_one({"_id": key_id}, {"$max": {"last_used_at": when}})


class KeyCache:
    """Verified keys kept a few seconds, so most requests cost no database read.

    A revoked key keeps working for at most ``ttl_s`` seconds in each process.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        """``(found, principal)``; an unknown key is cached as None too (brute force)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: str, principal: Principal | None) -> None:
        if self._ttl_s <= 0:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl_s, principal)
