"""All MongoDB access of consent changes and erasures: the erased members and what they
left in messages and member documents."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pymongo import UpdateMany, UpdateOne

from pepite_classifier.privacy import (
    SCRUBBED_ANALYSIS_DIGEST,
    AuthoredText,
    Erased,
    ErasedSet,
    anonymized_fields,
    opted_out_of_ai,
)
from pepite_classifier.repository import ERASED_MEMBERS, MEMBERS, MESSAGES
from pepite_contracts import ConsentChange, MemberErasure, NormalizedMessage
from pepite_kit import Database
from pepite_kit.search import SEARCH_TERMS, search_terms

logger = logging.getLogger(__name__)

#: Where importers write other members' ids in a message's ``raw``: who reacted (Discord
#: exports: objects with an ``id``; Slack: ids) and who replied in a thread (Slack).
_RAW_MEMBER_PATHS = ("raw.reactions.users", "raw.reactions.users.id", "raw.reply_users")

#: The fields of a stored message that make a :class:`NormalizedMessage`.
_MESSAGE_FIELDS: dict[str, Any] = dict.fromkeys(
    (*NormalizedMessage.model_fields.keys() - {"id"}, "version_at", "analysis_digest"), 1
)


@dataclass(frozen=True)
class NamingMessage:
    """Another member's message that names an erased member, as read."""

    message: NormalizedMessage
    version_at: datetime
    analysis_digest: str | None = None


class PrivacyRepository:
    """Consent flags on member documents; erasures recorded, and carried out in messages."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- erased members ---------------------------------------------------------------

    async def record_erasures(self, erasures: Iterable[MemberErasure]) -> None:
        """Remember erasures; the first pseudonym given for a member stays theirs."""
        now = datetime.now(UTC)
        requests = [
            UpdateOne(
                {"_id": erasure.member_id},
                {
                    "$setOnInsert": {
                        "community_id": erasure.community_id,
                        "pseudonym": erasure.pseudonym,
                        "erased_at": now,
                    },
                    "$min": {"requested_at": erasure.requested_at},
                },
                upsert=True,
            )
            for erasure in erasures
        ]
        if requests:
            await self._db[ERASED_MEMBERS].bulk_write(requests, ordered=False)

    async def erased_in(self, communities: Collection[str]) -> ErasedSet:
        """The erased members of ``communities``, read afresh (another consumer may have
        erased someone a moment ago)."""
        if not communities:
            return ErasedSet()
        cursor = self._db[ERASED_MEMBERS].find(
            {"community_id": {"$in": list(communities)}}, {"community_id": 1, "pseudonym": 1}
        )
        return ErasedSet.of(
            [Erased(doc["_id"], doc["community_id"], doc["pseudonym"]) async for doc in cursor]
        )

    async def erasure_done(self, member_id: str) -> None:
        """Note when an erasure was first carried out to the end."""
        await self._db[ERASED_MEMBERS].update_one(
            {"_id": member_id, "completed_at": {"$exists": False}},
            {"$set": {"completed_at": datetime.now(UTC)}},
        )

    # -- member documents -------------------------------------------------------------

    async def set_consents(self, consents: Mapping[str, ConsentChange]) -> None:
        """Set ``ai_opt_out`` on member documents (created if need be), newest change wins.

        A pipeline update compares change times on the server, so a replayed older
        change never undoes a newer one, whoever writes first.
        """
        requests = []
        for member_id, change in consents.items():
            newer = {"$lt": ["$consent_changed_at", change.changed_at]}
            requests.append(
                UpdateOne(
                    {"_id": member_id},
                    [
                        {
                            "$set": {
                                "community_id": {"$ifNull": ["$community_id", change.community_id]},
                                "ai_opt_out": {
                                    "$cond": [newer, opted_out_of_ai(change), "$ai_opt_out"]
                                },
                                "consent_changed_at": {
                                    "$cond": [newer, change.changed_at, "$consent_changed_at"]
                                },
                            }
                        }
                    ],
                    upsert=True,
                )
            )
        if requests:
            await self._db[MEMBERS].bulk_write(requests, ordered=False)

    async def member_names(self, member_id: str) -> set[str]:
        """The names a member document gives (before it is deleted)."""
        doc = await self._db[MEMBERS].find_one({"_id": member_id}, {"name": 1, "display_name": 1})
        if doc is None:
            return set()
        return {name for name in (doc.get("name"), doc.get("display_name")) if name}

    async def delete_member(self, member_id: str) -> None:
        await self._db[MEMBERS].delete_one({"_id": member_id})

    # -- the member's own messages ----------------------------------------------------

    async def authored(self, erased: Erased) -> tuple[list[AuthoredText], set[str]]:
        """The member's messages not anonymized yet, and the names they were signed with."""
        texts: list[AuthoredText] = []
        names: set[str] = set()
        cursor = self._db[MESSAGES].find(
            {"community_id": erased.community_id, "author.id": erased.member_id},
            {
                "text": 1,
                "reply_to_id": 1,
                "topic_id": 1,
                "author.name": 1,
                "author.display_name": 1,
            },
        )
        async for doc in cursor:
            texts.append(
                AuthoredText(
                    message_id=doc["_id"],
                    text=doc.get("text") or "",
                    reply_to_id=doc.get("reply_to_id"),
                    topic_id=doc.get("topic_id"),
                )
            )
            author = doc.get("author") or {}
            names.update(name for name in (author.get("name"), author.get("display_name")) if name)
        return texts, names

    async def texts(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The texts of messages, by id (those stored)."""
        ids = sorted(set(message_ids))
        if not ids:
            return {}
        return {
            doc["_id"]: doc.get("text") or ""
            async for doc in self._db[MESSAGES].find({"_id": {"$in": ids}}, {"text": 1})
        }

    async def replies_to(
        self, community_id: str, message_ids: Sequence[str]
    ) -> list[tuple[str, str]]:
        """``(text, parent id)`` of the messages replying to ``message_ids``."""
        if not message_ids:
            return []
        cursor = self._db[MESSAGES].find(
            {"community_id": community_id, "reply_to_id": {"$in": list(message_ids)}},
            {"text": 1, "reply_to_id": 1},
        )
        return [(doc.get("text") or "", doc["reply_to_id"]) async for doc in cursor]

    async def anonymize_messages(self, erased: Erased) -> None:
        """Scrub the member's messages and sign them with the pseudonym.

        They keep their place, time and analysis, so every count stays; an analysis is
        declared current for the empty text, which is then never analyzed. Insights
        waiting for a topic stop waiting (placing them would embed an empty text).
        """
        mine = {"community_id": erased.community_id, "author.id": erased.member_id}
        changes = {**anonymized_fields(erased.pseudonym), "erased_at": datetime.now(UTC)}
        unset = {"topic_pending": ""}
        await self._db[MESSAGES].bulk_write(
            [
                # In order: the first takes the analyzed ones, which the second no longer
                # matches (their author id changed).
                UpdateMany(
                    {**mine, "analysis": {"$exists": True}},
                    {
                        "$set": {**changes, "analysis_digest": SCRUBBED_ANALYSIS_DIGEST},
                        "$unset": unset,
                    },
                ),
                UpdateMany(mine, {"$set": changes, "$unset": unset}),
            ],
            ordered=True,
        )

    # -- other members' messages ------------------------------------------------------

    async def naming(self, erased: Erased) -> list[NamingMessage]:
        """Other members' messages that name the member: mentions, mention markup, raw
        records of who reacted or replied."""
        clauses: list[dict[str, Any]] = [{"mentions.member_id": erased.member_id}]
        ids = [erased.member_id]
        found: dict[str, NamingMessage] = {}
        # A stable id starts with its platform: the member's native id follows.
        native = erased.native_id(erased.member_id.split(":", 1)[0])
        natives = [native] if native else []
        ids.extend(natives)
        clauses.extend({path: {"$in": ids}} for path in _RAW_MEMBER_PATHS)
        clauses.extend({"text": {"$regex": rf"<@!?{re.escape(native)}[|>]"}} for native in natives)
        cursor = self._db[MESSAGES].find(
            {
                "community_id": erased.community_id,
                "author.id": {"$ne": erased.member_id},
                "deleted_at": {"$exists": False},
                "$or": clauses,
            },
            _MESSAGE_FIELDS,
        )
        async for doc in cursor:
            try:
                message = NormalizedMessage.model_validate({**doc, "id": doc["_id"]})
            except ValidationError:
                # Not a whole message (a tombstone, say): it can only hold a mention.
                logger.warning("unreadable message, only its mentions are dropped")
                await self._db[MESSAGES].update_one(
                    {"_id": doc["_id"]},
                    {"$pull": {"mentions": {"member_id": erased.member_id}}},
                )
                continue
            found[message.id] = NamingMessage(
                message, doc["version_at"], doc.get("analysis_digest")
            )
        return list(found.values())

    async def rewrite(self, rewrites: Sequence[NamingMessage]) -> None:
        """Store other members' messages without the traces of an erased member.

        A copy stored meanwhile (another version) is left alone: it was redacted on its
        way in. Each message's ``analysis_digest`` is set as given.
        """
        if not rewrites:
            return
        await self._db[MESSAGES].bulk_write(
            [
                UpdateOne(
                    {"_id": item.message.id, "version_at": item.version_at},
                    {
                        "$set": {
                            "text": item.message.text,
                            SEARCH_TERMS: search_terms(item.message.text),
                            "mentions": [m.model_dump() for m in item.message.mentions],
                            "raw": item.message.raw,
                            # Matches no incoming copy: the next one (redacted on its way
                            # in) may replace this one.
                            "content_digest": None,
                            "analysis_digest": item.analysis_digest,
                        }
                    },
                )
                for item in rewrites
            ],
            ordered=False,
        )
