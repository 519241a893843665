"""The moderation queue: messages a moderator should look at, and what they decided.

The worker fills the queue from ``message.analyzed`` events; Pépite never acts on a
platform by itself, a human always decides. Each newly flagged message is announced
once as ``moderation.flagged`` (for webhook subscribers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo import UpdateOne

from pepite_api.pagination import after_descending
from pepite_contracts import (
    MODERATION_KINDS,
    AnalyzedMessage,
    ChannelRef,
    Event,
    MemberErased,
    MessageAnalyzed,
    MessageKind,
    ModerationFlagged,
    ModerationNotice,
    ModerationScores,
    deterministic_event_id,
    encode_event,
    partition_key,
)
from pepite_kit import Database, EventPublisher, IndexSpec

MODERATION_ITEMS = "moderation_items"

MODERATION_INDEXES = (
    IndexSpec(
        MODERATION_ITEMS,
        [("community_id", 1), ("status", 1), ("flagged_at", -1), ("_id", -1)],
        "community_status_flagged",
    ),
    IndexSpec(MODERATION_ITEMS, [("author.id", 1)], "author"),
)


class ModerationStatus(StrEnum):
    PENDING = "pending"
    DECIDED = "decided"


class ModerationAction(StrEnum):
    """What the moderator decided; Pépite records it, the moderator acts on the platform."""

    KEEP = "keep"
    REMOVE = "remove"
    WARN = "warn"
    MUTE = "mute"
    BAN = "ban"


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ModerationAction
    note: str = Field(default="", max_length=2000)


class RecordedDecision(Decision):
    decided_at: datetime
    decided_by: str = Field(description="Id of the API key that recorded the decision.")


class FlaggedAuthor(BaseModel):
    id: str
    name: str


class ModerationItem(BaseModel):
    """A flagged message, why it was flagged, and the decision once made."""

    message_id: str
    channel: ChannelRef
    author: FlaggedAuthor
    kind: MessageKind
    scores: ModerationScores
    reasons: list[str] = Field(description="Kinds and scores that put it in the queue.")
    text: str | None = Field(default=None, description="Null once the message is gone.")
    created_at: datetime
    flagged_at: datetime
    status: ModerationStatus
    decision: RecordedDecision | None = None
    history: list[RecordedDecision] = Field(
        default_factory=list, description="Earlier decisions, oldest first."
    )


def flag_reasons(analyzed: AnalyzedMessage, threshold: float) -> list[str]:
    """Why a message belongs in the queue; empty when it does not."""
    reasons = []
    if analyzed.analysis.kind in MODERATION_KINDS:
        reasons.append(f"kind:{analyzed.analysis.kind.value}")
    scores = analyzed.analysis.moderation.model_dump()
    reasons.extend(f"score:{name}" for name, value in scores.items() if value >= threshold)
    return reasons


def _item(doc: dict[str, Any], text: str | None) -> ModerationItem:
    return ModerationItem(
        message_id=doc["_id"], text=text, **{k: v for k, v in doc.items() if k != "_id"}
    )


class ModerationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def queued(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` are in the queue already."""
        return {
            doc["_id"]
            async for doc in self._db[MODERATION_ITEMS].find(
                {"_id": {"$in": list(message_ids)}}, {"_id": 1}
            )
        }

    async def upsert_flags(self, flagged: Sequence[tuple[AnalyzedMessage, list[str]]]) -> None:
        """Queue flagged messages, or refresh their latest analysis."""
        if not flagged:
            return
        now = datetime.now(UTC)
        operations = [
            UpdateOne(
                {"_id": analyzed.message_id},
                {
                    "$set": {
                        "community_id": analyzed.community_id,
                        "channel": analyzed.channel.model_dump(),
                        "author": {"id": analyzed.author.id, "name": analyzed.author.name},
                        "kind": analyzed.analysis.kind.value,
                        "scores": analyzed.analysis.moderation.model_dump(),
                        "reasons": reasons,
                        "created_at": analyzed.created_at,
                    },
                    "$setOnInsert": {
                        "flagged_at": now,
                        "status": ModerationStatus.PENDING.value,
                        "history": [],
                    },
                },
                upsert=True,
            )
            for analyzed, reasons in flagged
        ]
        await self._db[MODERATION_ITEMS].bulk_write(operations, ordered=False)

    async def withdraw(self, message_ids: Sequence[str]) -> None:
        """Take out pending items whose message no longer looks like a problem (edited)."""
        if message_ids:
            await self._db[MODERATION_ITEMS].delete_many(
                {"_id": {"$in": list(message_ids)}, "status": ModerationStatus.PENDING.value}
            )

    async def anonymize_author(self, member_id: str, pseudonym: str) -> None:
        await self._db[MODERATION_ITEMS].update_many(
            {"author.id": member_id},
            {"$set": {"author": {"id": pseudonym, "name": "erased member"}}},
        )

    async def page(
        self,
        community_id: str,
        *,
        status: ModerationStatus | None,
        kind: MessageKind | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[ModerationItem]:
        query: dict[str, Any] = {"community_id": community_id}
        if status is not None:
            query["status"] = status.value
        if kind is not None:
            query["kind"] = kind.value
        if after is not None:
            query = {"$and": [query, after_descending("flagged_at", after[0], after[1])]}
        docs = (
            await self._db[MODERATION_ITEMS]
            .find(query)
            .sort([("flagged_at", -1), ("_id", -1)])
            .limit(limit)
            .to_list()
        )
        texts = await self._texts(community_id, [doc["_id"] for doc in docs])
        return [_item(doc, texts.get(doc["_id"])) for doc in docs]

    async def get(self, community_id: str, message_id: str) -> ModerationItem | None:
        doc = await self._db[MODERATION_ITEMS].find_one(
            {"_id": message_id, "community_id": community_id}
        )
        if doc is None:
            return None
        texts = await self._texts(community_id, [message_id])
        return _item(doc, texts.get(message_id))

    async def decide(
        self, community_id: str, message_id: str, decision: Decision, key_id: str
    ) -> ModerationItem | None:
        current = await self._db[MODERATION_ITEMS].find_one(
            {"_id": message_id, "community_id": community_id}, {"decision": 1}
        )
        if current is None:
            return None
        recorded = RecordedDecision(
            **decision.model_dump(), decided_at=datetime.now(UTC), decided_by=key_id
        ).model_dump(mode="python")
        update: dict[str, Any] = {
            "$set": {"status": ModerationStatus.DECIDED.value, "decision": recorded}
        }
        if current.get("decision"):
            update["$push"] = {"history": current["decision"]}
        await self._db[MODERATION_ITEMS].update_one({"_id": message_id}, update)
        return await self.get(community_id, message_id)

    async def _texts(self, community_id: str, message_ids: list[str]) -> dict[str, str]:
        # The text is read from the message, never copied: a deletion or an erasure
        # scrubs it in one place.
        return {
            doc["_id"]: doc.get("text", "")
            async for doc in self._db["messages"].find(
                {
                    "_id": {"$in": message_ids},
                    "community_id": community_id,
                    "deleted_at": {"$exists": False},
                },
                {"text": 1},
            )
        }


class ModerationQueueHandler:
    """Consumes ``message.analyzed`` (fills the queue) and ``member.erased`` (scrubs it)."""

    def __init__(
        self,
        repository: ModerationRepository,
        publisher: EventPublisher,
        *,
        threshold: float,
        notifications_topic: str,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._threshold = threshold
        self._topic = notifications_topic

    async def __call__(self, events: Sequence[Event]) -> None:
        latest: dict[str, AnalyzedMessage] = {}
        for event in events:
            if isinstance(event, MessageAnalyzed):
                latest[event.payload.message_id] = event.payload
            elif isinstance(event, MemberErased):
                await self._repository.anonymize_author(
                    event.payload.member_id, event.payload.pseudonym
                )
        flagged = []
        cleared = []
        for analyzed in latest.values():
            reasons = flag_reasons(analyzed, self._threshold)
            if reasons:
                flagged.append((analyzed, reasons))
            else:
                cleared.append(analyzed.message_id)
        # Announce before queueing: a crash in between replays the batch, and the
        # announcement's stable event id keeps subscribers from getting it twice.
        known = await self._repository.queued([a.message_id for a, _ in flagged])
        for analyzed, _ in flagged:
            if analyzed.message_id in known:
                continue
            notice = ModerationFlagged(
                # One announcement per message, whatever the replays.
                event_id=deterministic_event_id("moderation.flagged", analyzed.message_id),
                community_id=analyzed.community_id,
                payload=ModerationNotice(
                    message_id=analyzed.message_id,
                    channel=analyzed.channel,
                    author_id=analyzed.author.id,
                    kind=analyzed.analysis.kind,
                    scores=analyzed.analysis.moderation,
                    created_at=analyzed.created_at,
                ),
            )
            await self._publisher.send(
                self._topic,
                encode_event(notice),
                key=partition_key(analyzed.community_id, analyzed.channel.id),
            )
        await self._publisher.flush()
        await self._repository.upsert_flags(flagged)
        await self._repository.withdraw(cleared)
