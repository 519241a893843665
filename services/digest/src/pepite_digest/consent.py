"""Who agreed to what, as the digest service must know it before touching a member.

The API records each member's choices and announces them with
``member.consent_changed``; this service keeps its own copy (``digest_consents``) so that
a journal or a personalized digest is never computed for someone who has not opted in,
even while the API is down. A member absent from the collection has consented to
nothing: per-member features are off until the member turns them on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import UpdateOne

from pepite_contracts import ConsentChange, ConsentFlags, MemberErasure
from pepite_kit import Database, IndexSpec

DIGEST_CONSENTS = "digest_consents"

CONSENT_INDEXES = (
    IndexSpec(DIGEST_CONSENTS, [("community_id", 1), ("journal", 1)], "community_journal"),
    IndexSpec(
        DIGEST_CONSENTS,
        [("community_id", 1), ("personalization", 1)],
        "community_personalization",
    ),
)


class PerMemberFeature(StrEnum):
    """The features that read one member's data for that member, each behind its flag."""

    JOURNAL = "journal"
    PERSONALIZATION = "personalization"


class ConsentRepository:
    """Reads and writes ``digest_consents``: one document per member who ever chose."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, changes: Iterable[ConsentChange]) -> None:
        """Store each member's flags; a change older than the one stored is ignored.

        The comparison runs on the server (a pipeline update), so a replayed old event
        never undoes a newer choice, whichever consumer writes first.
        """
        requests = []
        for change in changes:
            newer: dict[str, Any] = {
                "$or": [
                    {"$eq": [{"$type": "$changed_at"}, "missing"]},
                    {"$lt": ["$changed_at", change.changed_at]},
                ]
            }
            fields = {
                "community_id": change.community_id,
                "changed_at": change.changed_at,
                **change.consent.model_dump(),
            }
            requests.append(
                UpdateOne(
                    {"_id": change.member_id},
                    [
                        {
                            "$set": {
                                key: {"$cond": [newer, {"$literal": value}, f"${key}"]}
                                for key, value in fields.items()
                            }
                        }
                    ],
                    upsert=True,
                )
            )
        if requests:
            await self._db[DIGEST_CONSENTS].bulk_write(requests, ordered=False)

    async def flags(self, member_id: str) -> ConsentFlags:
        """The member's flags; all per-member features off when they never chose."""
        doc = await self._db[DIGEST_CONSENTS].find_one({"_id": member_id})
        if doc is None:
            return ConsentFlags()
        return ConsentFlags.model_validate(
            {key: doc[key] for key in ConsentFlags.model_fields if key in doc}
        )

    async def allows(self, member_id: str, feature: PerMemberFeature) -> bool:
        doc = await self._db[DIGEST_CONSENTS].find_one({"_id": member_id}, {feature.value: 1})
        return bool(doc and doc.get(feature.value) is True)

    async def consenting(self, community_id: str, feature: PerMemberFeature) -> list[str]:
        """The members of a community who turned ``feature`` on, by id."""
        cursor = (
            self._db[DIGEST_CONSENTS]
            .find({"community_id": community_id, feature.value: True}, {"_id": 1})
            .sort("_id", 1)
        )
        return [doc["_id"] async for doc in cursor]

    async def changed_at(self, member_id: str) -> datetime | None:
        doc = await self._db[DIGEST_CONSENTS].find_one({"_id": member_id}, {"changed_at": 1})
        return doc.get("changed_at") if doc else None

    async def erase(self, erasure: MemberErasure) -> None:
        """Turn every flag off as of the erasure request.

        A tombstone rather than a deletion: a consent event older than the erasure,
        replayed later, then loses against it and cannot turn anything back on.
        """
        await self.record(
            [
                ConsentChange(
                    member_id=erasure.member_id,
                    community_id=erasure.community_id,
                    consent=ConsentFlags(journal=False, personalization=False, ai_processing=False),
                    changed_at=erasure.requested_at,
                )
            ]
        )
