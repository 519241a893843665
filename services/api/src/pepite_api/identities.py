"""Linking the platform identities of one person: all MongoDB access for people.

Every platform identity is its own member document (``platform:community:native_id``),
written by the classifier. A person groups identities of one community; each linked
member document carries the ``person_id`` too, so reads by member need no join. Links
are made by people who know (an admin, or the member), never guessed: suggestions
only propose.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pepite_api.schemas import Identity, LinkSuggestion, MemberActivity, Person
from pepite_kit import Database, IndexSpec

MEMBERS = "members"
PEOPLE = "people"

INDEXES = (
    # A member belongs to at most one person.
    IndexSpec(PEOPLE, [("member_ids", 1)], "member_ids_unique", unique=True),
    IndexSpec(PEOPLE, [("community_id", 1)], "community"),
    IndexSpec(
        MEMBERS,
        [("person_id", 1)],
        "person",
        partial_filter={"person_id": {"$exists": True}},
    ),
)

_IDENTITY_FIELDS = {
    "platform": 1,
    "native_id": 1,
    "name": 1,
    "display_name": 1,
    "is_bot": 1,
    "first_seen_at": 1,
    "last_seen_at": 1,
    "community_id": 1,
    "person_id": 1,
}


class UnknownMembersError(LookupError):
    """Some member ids are not identities of the community."""

    def __init__(self, community_id: str, member_ids: list[str]) -> None:
        self.member_ids = member_ids
        super().__init__(
            f"not members of community {community_id!r}: {', '.join(sorted(member_ids))}"
        )


def _identity(document: dict[str, Any]) -> Identity:
    return Identity(
        member_id=document["_id"],
        platform=document.get("platform") or "unknown",
        native_id=document.get("native_id") or document["_id"],
        name=document.get("name"),
        display_name=document.get("display_name"),
        is_bot=bool(document.get("is_bot")),
        first_seen_at=document.get("first_seen_at"),
        last_seen_at=document.get("last_seen_at"),
    )


def name_key(name: str) -> str:
    """A name folded for comparison across platforms: case, accents and symbols dropped."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    return re.sub(r"[\W_]+", "", "".join(c for c in folded if not unicodedata.combining(c)))


class IdentityRepository:
    """People and their identities, for one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def link(
        self, community_id: str, member_ids: list[str], display_name: str | None = None
    ) -> Person:
        """Make ``member_ids`` one person, merging the people they already belong to.

        Raises:
            UnknownMembersError: an id is not a member of the community.
        """
        wanted = list(dict.fromkeys(member_ids))
        async with self._db.client.start_session() as session, await session.start_transaction():
            found = {
                doc["_id"]
                async for doc in self._db[MEMBERS].find(
                    {"_id": {"$in": wanted}, "community_id": community_id},
                    {"_id": 1},
                    session=session,
                )
            }
            missing = [member_id for member_id in wanted if member_id not in found]
            if missing:
                raise UnknownMembersError(community_id, missing)
            existing = await (
                self._db[PEOPLE]
                .find({"member_ids": {"$in": wanted}}, session=session)
                .sort("created_at", 1)
                .to_list()
            )
            now = datetime.now(UTC)
            members = list(dict.fromkeys([m for p in existing for m in p["member_ids"]] + wanted))
            if existing:
                # Merging keeps the oldest person: links others made stay valid.
                keep = existing[0]
                person_id = keep["_id"]
                others = [p["_id"] for p in existing[1:]]
                if others:
                    await self._db[PEOPLE].delete_many({"_id": {"$in": others}}, session=session)
                name = display_name or keep.get("display_name")
                await self._db[PEOPLE].update_one(
                    {"_id": person_id},
                    {"$set": {"member_ids": members, "display_name": name, "updated_at": now}},
                    session=session,
                )
            else:
                person_id = f"person:{community_id}:{uuid.uuid4().hex}"
                await self._db[PEOPLE].insert_one(
                    {
                        "_id": person_id,
                        "community_id": community_id,
                        "member_ids": members,
                        "display_name": display_name,
                        "created_at": now,
                        "updated_at": now,
                    },
                    session=session,
                )
            await self._db[MEMBERS].update_many(
                {"_id": {"$in": members}}, {"$set": {"person_id": person_id}}, session=session
            )
        person = await self.person(community_id, person_id)
        assert person is not None
        return person

    async def unlink(self, community_id: str, member_id: str) -> Person | None:
        """Take ``member_id`` out of its person; a person left with one identity is dissolved.

        Returns:
            The person after the change, or None if it was dissolved or never existed.
        """
        async with self._db.client.start_session() as session, await session.start_transaction():
            person = await self._db[PEOPLE].find_one(
                {"community_id": community_id, "member_ids": member_id}, session=session
            )
            if person is None:
                return None
            remaining = [m for m in person["member_ids"] if m != member_id]
            if len(remaining) < 2:
                await self._db[PEOPLE].delete_one({"_id": person["_id"]}, session=session)
                released = person["member_ids"]
            else:
                await self._db[PEOPLE].update_one(
                    {"_id": person["_id"]},
                    {"$set": {"member_ids": remaining, "updated_at": datetime.now(UTC)}},
                    session=session,
                )
                released = [member_id]
            await self._db[MEMBERS].update_many(
                {"_id": {"$in": released}}, {"$unset": {"person_id": ""}}, session=session
            )
        if len(remaining) < 2:
            return None
        return await self.person(community_id, person["_id"])

    async def person(self, community_id: str, person_id: str) -> Person | None:
        """A person with its identities, or None."""
        document = await self._db[PEOPLE].find_one({"_id": person_id, "community_id": community_id})
        if document is None:
            return None
        identities = {
            doc["_id"]: _identity(doc)
            async for doc in self._db[MEMBERS].find(
                {"_id": {"$in": document["member_ids"]}}, _IDENTITY_FIELDS
            )
        }
        return Person(
            person_id=document["_id"],
            community_id=community_id,
            display_name=document.get("display_name"),
            identities=[identities[m] for m in document["member_ids"] if m in identities],
            created_at=document["created_at"],
            updated_at=document["updated_at"],
        )

    async def identity(
        self, community_id: str, member_id: str
    ) -> tuple[Identity, str | None] | None:
        """A member's identity and its person id, or None if unknown."""
        document = await self._db[MEMBERS].find_one(
            {"_id": member_id, "community_id": community_id}, _IDENTITY_FIELDS
        )
        if document is None:
            return None
        return _identity(document), document.get("person_id")

    async def page(
        self, community_id: str, *, limit: int, after: tuple[str, str] | None, query: str | None
    ) -> list[Identity]:
        """Identities of the community by name, from ``after`` (name key, member id) on."""
        filters: dict[str, Any] = {"community_id": community_id}
        if query:
            filters["name"] = {"$regex": f"^{re.escape(query)}", "$options": "i"}
        if after is not None:
            filters["$or"] = [
                {"name": {"$gt": after[0]}},
                {"name": after[0], "_id": {"$gt": after[1]}},
            ]
        cursor = (
            self._db[MEMBERS]
            .find(filters, _IDENTITY_FIELDS)
            .sort([("name", 1), ("_id", 1)])
            .limit(limit)
        )
        return [_identity(doc) async for doc in cursor]

    async def activity(self, community_id: str, member_id: str) -> MemberActivity:
        """Messages of the member, by kind and channel."""
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "community_id": community_id,
                    "author.id": member_id,
                    "deleted_at": {"$exists": False},
                }
            },
            {
                "$facet": {
                    "totals": [
                        {
                            "$group": {
                                "_id": None,
                                "n": {"$sum": 1},
                                "first": {"$min": "$created_at"},
                                "last": {"$max": "$created_at"},
                            }
                        }
                    ],
                    "kinds": [{"$group": {"_id": "$analysis.kind", "n": {"$sum": 1}}}],
                    "channels": [
                        {"$group": {"_id": "$channel.id", "n": {"$sum": 1}}},
                        {"$sort": {"n": -1, "_id": 1}},
                        {"$limit": 10},
                    ],
                }
            },
        ]
        [result] = await (await self._db["messages"].aggregate(pipeline)).to_list()
        totals = result["totals"][0] if result["totals"] else {}
        return MemberActivity(
            messages=totals.get("n", 0),
            first_message_at=totals.get("first"),
            last_message_at=totals.get("last"),
            kinds={doc["_id"]: doc["n"] for doc in result["kinds"] if doc["_id"]},
            channels={doc["_id"]: doc["n"] for doc in result["channels"]},
        )

    async def suggestions(self, community_id: str, limit: int = 100) -> list[LinkSuggestion]:
        """Unlinked identities on different platforms sharing a folded name or display name."""
        groups: dict[str, dict[str, Identity]] = defaultdict(dict)
        async for doc in self._db[MEMBERS].find(
            {
                "community_id": community_id,
                "person_id": {"$exists": False},
                "is_bot": {"$ne": True},
            },
            _IDENTITY_FIELDS,
        ):
            identity = _identity(doc)
            for name in {identity.name, identity.display_name} - {None}:
                key = name_key(name or "")
                if len(key) >= 3:
                    groups[key][identity.member_id] = identity
        suggestions = [
            LinkSuggestion(key=key, identities=sorted(found.values(), key=lambda i: i.member_id))
            for key, found in sorted(groups.items())
            if len({identity.platform for identity in found.values()}) > 1
        ]
        return suggestions[:limit]
