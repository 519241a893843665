"""Members' consent and erasure, as the API records them, and member exports.

Consent and erasure are announced on ``members.events`` so every service applies them to
what it stores; the API keeps its own record of both (``consents``, ``erasures``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from pepite_api.digests import PERSONAL_DIGESTS
from pepite_api.identities import MEMBERS, PEOPLE, IdentityRepository
from pepite_api.journals import JournalReader
from pepite_api.moderation import MODERATION_ITEMS, ModerationRepository
from pepite_contracts import (
    ConsentChange,
    ConsentFlags,
    MemberConsentChanged,
    MemberErased,
    MemberErasure,
    Topic,
    encode_event,
    partition_key,
)
from pepite_kit import Database, EventPublisher, IndexSpec, KafkaSettings
from pepite_knowledge.repository import KNOWLEDGE_ENTRIES
from pepite_reports.leaderboards import CONTRIBUTIONS, MONTHLY, SEASONAL

CONSENTS = "consents"
ERASURES = "erasures"

PRIVACY_INDEXES = (IndexSpec(ERASURES, [("community_id", 1)], "community"),)


class MemberConsent(BaseModel):
    member_id: str
    consent: ConsentFlags
    changed_at: datetime | None = Field(description="Null while the defaults apply.")


class ErasureReceipt(BaseModel):
    """An erasure request, accepted: every service removes or anonymizes the member."""

    member_id: str
    pseudonym: str = Field(description="What replaces the member where counts must stay.")
    requested_at: datetime


class ErasedMemberError(Exception):
    """The member was erased: nothing more is recorded about them."""


class PrivacyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def consent(self, community_id: str, member_id: str) -> MemberConsent:
        doc = await self._db[CONSENTS].find_one({"_id": member_id, "community_id": community_id})
        if doc is None:
            return MemberConsent(member_id=member_id, consent=ConsentFlags(), changed_at=None)
        return MemberConsent(
            member_id=member_id,
            consent=ConsentFlags(**doc["consent"]),
            changed_at=doc["changed_at"],
        )

    async def set_consent(
        self, community_id: str, member_id: str, consent: ConsentFlags
    ) -> MemberConsent:
        if await self.erasure(community_id, member_id) is not None:
            raise ErasedMemberError(member_id)
        now = datetime.now(UTC)
        await self._db[CONSENTS].update_one(
            {"_id": member_id},
            {
                "$set": {
                    "community_id": community_id,
                    "consent": consent.model_dump(),
                    "changed_at": now,
                }
            },
            upsert=True,
        )
        return MemberConsent(member_id=member_id, consent=consent, changed_at=now)

    async def erasure(self, community_id: str, member_id: str) -> ErasureReceipt | None:
        doc = await self._db[ERASURES].find_one({"_id": member_id, "community_id": community_id})
        if doc is None:
            return None
        return ErasureReceipt(
            member_id=member_id, pseudonym=doc["pseudonym"], requested_at=doc["requested_at"]
        )

    async def record_erasure(self, community_id: str, member_id: str) -> ErasureReceipt:
        """Record the request (once: asking again keeps the first pseudonym) and remove
        what the API itself holds about the member."""
        now = datetime.now(UTC)
        await self._db[ERASURES].update_one(
            {"_id": member_id},
            {
                "$setOnInsert": {
                    "community_id": community_id,
                    "pseudonym": f"erased:{community_id}:{uuid.uuid4().hex[:16]}",
                    "requested_at": now,
                }
            },
            upsert=True,
        )
        receipt = await self.erasure(community_id, member_id)
        assert receipt is not None
        await self._db[CONSENTS].delete_one({"_id": member_id})
        # Linked identities stay linked among themselves; this one leaves its person.
        await IdentityRepository(self._db).unlink(community_id, member_id)
        await ModerationRepository(self._db).anonymize_author(member_id, receipt.pseudonym)
        return receipt


async def announce_consent(
    publisher: EventPublisher, settings: KafkaSettings, community_id: str, consent: MemberConsent
) -> None:
    assert consent.changed_at is not None
    event = MemberConsentChanged(
        community_id=community_id,
        payload=ConsentChange(
            member_id=consent.member_id,
            community_id=community_id,
            consent=consent.consent,
            changed_at=consent.changed_at,
        ),
    )
    await _publish(publisher, settings, community_id, consent.member_id, encode_event(event))


async def announce_erasure(
    publisher: EventPublisher, settings: KafkaSettings, community_id: str, receipt: ErasureReceipt
) -> None:
    event = MemberErased(
        community_id=community_id,
        payload=MemberErasure(
            member_id=receipt.member_id,
            community_id=community_id,
            pseudonym=receipt.pseudonym,
            requested_at=receipt.requested_at,
        ),
    )
    await _publish(publisher, settings, community_id, receipt.member_id, encode_event(event))


async def _publish(
    publisher: EventPublisher,
    settings: KafkaSettings,
    community_id: str,
    member_id: str,
    value: bytes,
) -> None:
    # Keyed by member: one member's consent changes and erasure stay in order.
    await publisher.send(
        settings.topic_name(Topic.MEMBERS_EVENTS),
        value,
        key=partition_key(community_id, member_id),
    )
    await publisher.flush()


class MemberExport(BaseModel):
    """Everything Pépite stores about one member (the shape of the export document)."""

    member_id: str
    community_id: str
    exported_at: datetime
    identity: dict[str, Any] | None
    person: dict[str, Any] | None
    consent: MemberConsent
    messages: list[dict[str, Any]] = Field(description="Every message, with its analysis.")
    moderation: list[dict[str, Any]] = Field(description="Moderation items about the member.")
    journals: list[dict[str, Any]] = Field(
        description="The member's journal entries (only while their journal is on)."
    )
    personal_digests: list[dict[str, Any]] = Field(
        description="Digests written for the member (only while personalization is on)."
    )
    knowledge_entries: list[dict[str, Any]] = Field(
        description="FAQ entries mined from a question or an answer the member wrote."
    )
    leaderboard_months: list[dict[str, Any]] = Field(
        description="The member's leaderboard points and counts, per month."
    )
    leaderboard_seasons: list[dict[str, Any]] = Field(
        description="The member's leaderboard points and counts, per season."
    )
    leaderboard_contributions: list[dict[str, Any]] = Field(
        description="Every message that earned (or was refused) leaderboard points."
    )


_EXPORT_DROP = {"content_digest", "analysis_digest", "version_at", "topic_pending"}


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _EXPORT_DROP}


async def export_member(
    db: Database, community_id: str, member_id: str, consent: MemberConsent
) -> AsyncIterator[bytes]:
    """The export as JSON, streamed: a prolific member's messages never sit in memory."""
    any_json: TypeAdapter[Any] = TypeAdapter(Any)
    identity = await db[MEMBERS].find_one({"_id": member_id, "community_id": community_id})
    person = await db[PEOPLE].find_one({"member_ids": member_id, "community_id": community_id})
    head = {
        "member_id": member_id,
        "community_id": community_id,
        "exported_at": datetime.now(UTC),
        "identity": identity,
        "person": person,
        "consent": consent.model_dump(),
    }
    yield any_json.dump_json(head)[:-1] + b',"messages":['
    first = True
    async for doc in (
        db["messages"]
        .find({"community_id": community_id, "author.id": member_id}, {"raw": 0})
        .sort([("created_at", 1), ("_id", 1)])
    ):
        yield (b"" if first else b",") + any_json.dump_json(_clean(doc))
        first = False
    yield b'],"moderation":['
    first = True
    async for doc in db[MODERATION_ITEMS].find(
        {"community_id": community_id, "author.id": member_id}
    ):
        yield (b"" if first else b",") + any_json.dump_json(doc)
        first = False
    yield b'],"journals":['
    first = True
    async for doc in JournalReader(db).documents(community_id, member_id):
        yield (b"" if first else b",") + any_json.dump_json(doc)
        first = False
    yield b"]"
    # The parts other services store about the member, each under its own key; vectors
    # are derived from the text and mean nothing to a reader.
    member_parts: tuple[tuple[str, str, dict[str, Any], dict[str, Any] | None], ...] = (
        ("personal_digests", PERSONAL_DIGESTS, {"member_id": member_id}, None),
        (
            "knowledge_entries",
            KNOWLEDGE_ENTRIES,
            {"$or": [{"question_author_id": member_id}, {"answer_author_id": member_id}]},
            {"vector": 0, "answer_vector": 0, "content_digest": 0},
        ),
        ("leaderboard_months", MONTHLY, {"member_id": member_id}, None),
        ("leaderboard_seasons", SEASONAL, {"member_id": member_id}, None),
        ("leaderboard_contributions", CONTRIBUTIONS, {"member_id": member_id}, None),
    )
    for key, collection, query, projection in member_parts:
        yield b',"' + key.encode() + b'":['
        first = True
        async for doc in (
            db[collection].find({"community_id": community_id, **query}, projection).sort("_id", 1)
        ):
            yield (b"" if first else b",") + any_json.dump_json(doc)
            first = False
        yield b"]"
    yield b"}"
