"""MongoDB side of personalized digests: a member's interests, members' names, and the
personal digests stored (``personal_digests``, the shape of ``digests``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pepite_contracts import ConsentFlags, MemberErasure
from pepite_digest.personal import InterestProfile, MemberNames
from pepite_digest.repository import MEMBERS, MESSAGES
from pepite_kit import Database, IndexSpec
from pepite_reports.digests.models import Digest

PERSONAL_DIGESTS = "personal_digests"

PERSONAL_DIGEST_INDEXES = (
    IndexSpec(PERSONAL_DIGESTS, [("member_id", 1), ("period_start", -1)], "member_period"),
    # An erasure finds every digest citing the member's messages.
    IndexSpec(PERSONAL_DIGESTS, [("sources.message_id", 1)], "cited_messages"),
    # Who replied to a member's messages: replies are a fraction of all messages.
    IndexSpec(
        MESSAGES,
        [("reply_to_id", 1)],
        "reply_to",
        partial_filter={"reply_to_id": {"$type": "string"}},
    ),
)

_KEPT: dict[str, Any] = {"erased_at": {"$exists": False}}


class PersonalDigestRepository:
    """Reads what personalization needs and keeps the personal digests.

    Also the store told of withdrawals and erasures (a ``MemberDataOwner``): without
    the personalization flag a member keeps no personal digest.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def interest_profile(
        self, community_id: str, member_id: str, start: datetime, end: datetime
    ) -> InterestProfile:
        """What the member engaged with in ``[start, end)``: the channels and topics of
        their messages, and who they replied to or mentioned, or was replied to or
        mentioned by."""
        window = {"community_id": community_id, "created_at": {"$gte": start, "$lt": end}}
        channels: Counter[str] = Counter()
        topics: Counter[str] = Counter()
        partners: Counter[str] = Counter()
        own_ids: list[str] = []
        parent_ids: list[str] = []
        cursor = self._db[MESSAGES].find(
            {**window, "author.id": member_id, **_KEPT},
            {"channel.id": 1, "topic_id": 1, "reply_to_id": 1, "mentions.member_id": 1},
        )
        async for doc in cursor:
            own_ids.append(doc["_id"])
            if channel := (doc.get("channel") or {}).get("id"):
                channels[channel] += 1
            if topic := doc.get("topic_id"):
                topics[topic] += 1
            if parent := doc.get("reply_to_id"):
                parent_ids.append(parent)
            partners.update(m["member_id"] for m in doc.get("mentions") or [] if m.get("member_id"))
        # Authors of the messages they replied to, counted once per reply.
        parents = await self._authors({"_id": {"$in": parent_ids}, **_KEPT})
        partners.update(parents[p] for p in parent_ids if p in parents)
        # Those who replied to them or mentioned them, once per message.
        if own_ids:
            replies = await self._authors({"reply_to_id": {"$in": own_ids}, **window, **_KEPT})
            partners.update(replies.values())
        mentions = await self._authors({**window, "mentions.member_id": member_id, **_KEPT})
        partners.update(mentions.values())
        partners.pop(member_id, None)
        return InterestProfile(member_id, dict(channels), dict(topics), dict(partners))

    async def _authors(self, query: dict[str, Any]) -> dict[str, str]:
        """Message id → author id of the messages ``query`` finds."""
        return {
            doc["_id"]: author
            async for doc in self._db[MESSAGES].find(query, {"author.id": 1})
            if (author := (doc.get("author") or {}).get("id"))
        }

    async def own_messages(self, member_id: str, message_ids: Collection[str]) -> set[str]:
        """Those of ``message_ids`` the member wrote."""
        if not message_ids:
            return set()
        cursor = self._db[MESSAGES].find(
            {"_id": {"$in": sorted(message_ids)}, "author.id": member_id}, {"_id": 1}
        )
        return {doc["_id"] async for doc in cursor}

    async def member_names(self, community_id: str) -> list[MemberNames]:
        """Every member of the community with the names they go by.

        All of them, not only those a digest cites: quoted text can name anyone.
        """
        cursor = self._db[MEMBERS].find(
            {"community_id": community_id}, {"name": 1, "display_name": 1, "is_bot": 1}
        )
        return [
            MemberNames(
                doc["_id"],
                tuple(n for n in (doc.get("name"), doc.get("display_name")) if n),
                is_bot=bool(doc.get("is_bot")),
            )
            async for doc in cursor
        ]

    async def save(self, digest: Digest) -> None:
        """Store (or replace) the digest under its id."""
        document = digest.model_dump(mode="python")
        document["_id"] = document.pop("digest_id")
        await self._db[PERSONAL_DIGESTS].replace_one(
            {"_id": document["_id"]}, document, upsert=True
        )

    async def get(self, digest_id: str) -> Digest | None:
        doc = await self._db[PERSONAL_DIGESTS].find_one({"_id": digest_id})
        if doc is None:
            return None
        doc["digest_id"] = doc.pop("_id")
        return Digest.model_validate(doc)

    async def delete_of(self, member_id: str) -> int:
        """Delete the member's personal digests; how many there were."""
        result = await self._db[PERSONAL_DIGESTS].delete_many({"member_id": member_id})
        return result.deleted_count

    async def consent_withdrawn(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> None:
        if not consent.personalization:
            await self.delete_of(member_id)

    async def erase(self, erasure: MemberErasure) -> None:
        """Delete the member's digests, and every other member's personal digest citing a
        message they wrote or that names them: an erased member's words leave no copy.

        Their messages are found under their id or, once the classifier has anonymized
        them, under their pseudonym.
        """
        member_id = erasure.member_id
        cursor = self._db[MESSAGES].find(
            {
                "community_id": erasure.community_id,
                "$or": [
                    {"author.id": {"$in": [member_id, erasure.pseudonym]}},
                    {"mentions.member_id": member_id},
                ],
            },
            {"_id": 1},
        )
        theirs = [doc["_id"] async for doc in cursor]
        await self._db[PERSONAL_DIGESTS].delete_many(
            {"$or": [{"member_id": member_id}, {"sources.message_id": {"$in": theirs}}]}
        )
