"""All MongoDB access of the classifier: messages, members and channels it maintains."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from pepite_classifier.rollups import RollupState
from pepite_classifier.service import (
    BatchWrites,
    ChannelSighting,
    MemberSighting,
    StoredVersion,
    WrittenCache,
    content_digest,
    message_document,
    supersedes,
)
from pepite_contracts import (
    Analysis,
    ChannelRef,
    Member,
    MessageDeletion,
    MessageEdit,
    MessageKind,
    NormalizedMessage,
    Platform,
    Sentiment,
    ThreadRef,
)
from pepite_kit import Database, IndexSpec
from pepite_kit.search import SEARCH_TERMS, search_terms
from pepite_reports.rollups import utc_day

logger = logging.getLogger(__name__)

MESSAGES = "messages"
MEMBERS = "members"
CHANNELS = "channels"
#: Members who asked to be erased (``_id``: member id): what stops a re-import from
#: bringing them back. Holds their id, community and pseudonym, nothing else.
ERASED_MEMBERS = "erased_members"
#: One document per data migration done, so it runs once per database.
MIGRATIONS = "migrations"

_DUPLICATE_KEY = 11000

INDEXES: list[IndexSpec] = [
    # ``_id`` last: lists sort by (time, id) so pages are stable when times tie, and the
    # index then gives that order without sorting in memory.
    IndexSpec(MESSAGES, [("community_id", 1), ("created_at", 1), ("_id", 1)], "community_time"),
    IndexSpec(
        MESSAGES,
        [("community_id", 1), ("channel.id", 1), ("created_at", 1), ("_id", 1)],
        "channel_time",
    ),
    IndexSpec(
        MESSAGES,
        [("community_id", 1), ("author.id", 1), ("created_at", 1), ("_id", 1)],
        "author_time",
    ),
    IndexSpec(MEMBERS, [("community_id", 1), ("last_seen_at", -1)], "community_last_seen"),
    IndexSpec(CHANNELS, [("community_id", 1)], "community"),
    # Insight messages waiting for a topic: few at a time, found without a scan.
    IndexSpec(
        MESSAGES,
        [("topic_pending", 1)],
        "topic_pending",
        partial_filter={"topic_pending": True},
    ),
    # Deleted messages are few; counting them apart keeps message counts index-only.
    IndexSpec(
        MESSAGES,
        [("community_id", 1)],
        "community_deleted",
        partial_filter={"deleted_at": {"$exists": True}},
    ),
    # An erasure finds the messages that mention the member; few messages mention anyone.
    IndexSpec(
        MESSAGES,
        [("mentions.member_id", 1)],
        "mentioned",
        partial_filter={"mentions.member_id": {"$exists": True}},
    ),
    # Every batch reads the erased members of its communities.
    IndexSpec(ERASED_MEMBERS, [("community_id", 1)], "community"),
]

#: What a deleted message keeps: enough to count and place it, nothing it said.
_SCRUBBED: dict[str, Any] = {
    "text": "",
    SEARCH_TERMS: [],
    "attachments": [],
    "mentions": [],
    "reactions": [],
    "raw": {},
    "content_digest": None,
}


#: What the analysis stage writes on a message.
_ANALYSIS_STATE: dict[str, str] = {
    "analysis": "",
    "analysis_digest": "",
    "analyzed_at": "",
    "topic_id": "",
}


class ClassifierRepository:
    """Idempotent writes: replaying any batch leaves the database as it was."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._members_written: WrittenCache[str, MemberSighting] = WrittenCache()
        self._channels_written: WrittenCache[tuple[str, str], ChannelSighting] = WrittenCache()

    async def apply(self, writes: BatchWrites) -> None:
        """Store one batch's messages, members and channels."""
        if writes.messages:
            await self._store_messages(writes.messages, writes.anonymized)
        if writes.edits:
            await self._apply_edits(writes.edits)
        if writes.deletions:
            await self.delete_messages(writes.deletions)
        await self._store_members(writes.members)
        await self._store_channels(writes.channels)

    async def _store_messages(
        self, messages: dict[str, NormalizedMessage], anonymized: set[str]
    ) -> None:
        """Insert what is new, overwrite what is superseded, leave replays alone.

        Inserting is several times cheaper for MongoDB than upserting, and a replay
        (the common case after a crash or a re-import) then costs one indexed read.

        Args:
            messages: The messages to store, by id.
            anonymized: Those of ``messages`` whose author was erased (already
                anonymized): they are marked so, and never analyzed.
        """
        collection = self._db[MESSAGES]
        stored: dict[str, StoredVersion | None] = {
            # A deleted message stays deleted, an erased member's message stays
            # anonymized: no copy of either is written again.
            doc["_id"]: None
            if "deleted_at" in doc or "erased_at" in doc
            else StoredVersion(doc["version_at"], doc.get("content_digest"))
            async for doc in collection.find(
                {"_id": {"$in": list(messages)}},
                {"version_at": 1, "content_digest": 1, "deleted_at": 1, "erased_at": 1},
            )
        }
        digests = {message_id: content_digest(m) for message_id, m in messages.items()}
        now = datetime.now(UTC)
        fresh: list[dict[str, Any]] = []
        changed: list[str] = []
        for message_id, message in messages.items():
            if message_id in stored and stored[message_id] is None:
                continue
            known = stored.get(message_id)
            if known is None:
                document = message_document(message, digests[message_id])
                document["stored_at"] = now
                if message_id in anonymized:
                    document["erased_at"] = now
                fresh.append(document)
            elif supersedes(message, digests[message_id], known):
                changed.append(message_id)
        if fresh:
            try:
                await collection.insert_many(fresh, ordered=False)
            except BulkWriteError as exc:
                # Another consumer stored some of them since our read: treat those as
                # existing and let the conditional update below decide.
                errors = exc.details["writeErrors"]
                if exc.details.get("writeConcernErrors") or any(
                    e["code"] != _DUPLICATE_KEY for e in errors
                ):
                    raise
                changed.extend(fresh[e["index"]]["_id"] for e in errors)
        if changed:
            await collection.bulk_write(
                [
                    self._overwrite(
                        messages[i], digests[i], erased_at=now if i in anonymized else None
                    )
                    for i in changed
                ],
                ordered=False,
            )

    @staticmethod
    def _overwrite(
        message: NormalizedMessage, digest: str, *, erased_at: datetime | None = None
    ) -> UpdateOne:
        document = message_document(message, digest)
        message_id = document.pop("_id")
        version = document["version_at"]
        if erased_at is not None:
            document["erased_at"] = erased_at
        return UpdateOne(
            # The condition is re-checked by the server, so concurrent writers of two
            # versions of one message always end with the newest stored.
            {
                "_id": message_id,
                "deleted_at": {"$exists": False},
                "erased_at": {"$exists": False},
                "$or": [
                    {"version_at": {"$lt": version}},
                    {"version_at": version, "content_digest": {"$ne": digest}},
                ],
            },
            {"$set": document},
        )

    async def _apply_edits(self, edits: dict[str, MessageEdit]) -> None:
        """Apply partial edits to stored messages, unless a newer copy is already there.

        An edit of a message never stored (it predates the live adapter, say) has
        nothing to apply to; the next history import brings the message, edit included.
        An erased member's message takes no edit: it must stay empty.
        """
        updates = []
        for message_id, edit in edits.items():
            changes: dict[str, Any] = {
                "edited_at": edit.edited_at,
                "version_at": edit.edited_at,
                # The stored copy no longer matches any whole message seen: a later
                # full copy of the same version must be allowed to replace it.
                "content_digest": None,
            }
            if edit.text is not None:
                changes["text"] = edit.text
                changes[SEARCH_TERMS] = search_terms(edit.text)
            if edit.attachments is not None:
                changes["attachments"] = [a.model_dump() for a in edit.attachments]
            if edit.mentions is not None:
                changes["mentions"] = [m.model_dump() for m in edit.mentions]
            updates.append(
                UpdateOne(
                    {
                        "_id": message_id,
                        "deleted_at": {"$exists": False},
                        "erased_at": {"$exists": False},
                        "version_at": {"$lt": edit.edited_at},
                    },
                    {"$set": changes},
                )
            )
        await self._db[MESSAGES].bulk_write(updates, ordered=False)

    async def backfill_search_terms(self, *, batch_size: int = 2000) -> int:
        """Give their search terms to messages stored before messages had them.

        Runs once per database (a marker records it). Each update re-checks that the
        text is unchanged, so a message edited meanwhile keeps the terms of its edit.

        Returns:
            How many messages were given terms.
        """
        marker = "message_search_terms"
        if await self._db[MIGRATIONS].find_one({"_id": marker}) is not None:
            return 0
        collection = self._db[MESSAGES]
        done = 0
        last_id: str | None = None
        while True:
            query: dict[str, Any] = {SEARCH_TERMS: {"$exists": False}}
            if last_id is not None:
                query["_id"] = {"$gt": last_id}
            docs = (
                await collection.find(query, {"text": 1}).sort("_id", 1).limit(batch_size).to_list()
            )
            if not docs:
                break
            await collection.bulk_write(
                [
                    UpdateOne(
                        {
                            "_id": doc["_id"],
                            SEARCH_TERMS: {"$exists": False},
                            "text": doc.get("text"),
                        },
                        {"$set": {SEARCH_TERMS: search_terms(doc.get("text") or "")}},
                    )
                    for doc in docs
                ],
                ordered=False,
            )
            done += len(docs)
            last_id = docs[-1]["_id"]
            logger.info("search terms given to stored messages", extra={"messages": done})
        await self._db[MIGRATIONS].update_one(
            {"_id": marker},
            {"$setOnInsert": {"done_at": datetime.now(UTC), "messages": done}},
            upsert=True,
        )
        return done

    async def delete_messages(
        self,
        deletions: dict[str, MessageDeletion],
        *,
        session: AsyncClientSession | None = None,
    ) -> None:
        """Scrub deleted messages, keeping a tombstone so no replay brings them back."""
        await self._db[MESSAGES].bulk_write(
            [
                UpdateOne(
                    {"_id": message_id},
                    {
                        # Scrubbing twice is harmless; the first deletion time is kept.
                        "$set": _SCRUBBED,
                        # A deleted message no longer counts: its analysis goes too.
                        "$unset": _ANALYSIS_STATE,
                        "$min": {"deleted_at": deletion.deleted_at},
                        "$setOnInsert": {
                            "community_id": deletion.community_id,
                            "platform": deletion.platform.value,
                            "native_id": deletion.native_id,
                            "channel": deletion.channel.model_dump(),
                            "version_at": deletion.deleted_at,
                        },
                    },
                    upsert=True,
                )
                for message_id, deletion in deletions.items()
            ],
            ordered=False,
            session=session,
        )

    async def _store_members(self, members: dict[str, MemberSighting]) -> None:
        pending = self._members_written.unwritten(members)
        if pending:
            await self._db[MEMBERS].bulk_write(
                [_member_upsert(member_id, seen) for member_id, seen in pending.items()],
                ordered=False,
            )
            self._members_written.remember_all(pending)

    async def _store_channels(self, channels: dict[tuple[str, str], ChannelSighting]) -> None:
        pending = self._channels_written.unwritten(channels)
        if pending:
            await self._db[CHANNELS].bulk_write(
                [_channel_upsert(key, seen) for key, seen in pending.items()], ordered=False
            )
            self._channels_written.remember_all(pending)


def _member_upsert(member_id: str, seen: MemberSighting) -> UpdateOne:
    return UpdateOne(
        {"_id": member_id},
        {
            "$set": {
                "community_id": seen.community_id,
                "platform": seen.platform,
                "native_id": seen.member.native_id,
                "name": seen.member.name,
                "display_name": seen.member.display_name,
                "is_bot": seen.member.is_bot,
                "avatar_url": seen.member.avatar_url,
            },
            "$min": {
                "first_seen_at": seen.first_seen_at,
                **({"joined_at": seen.joined_at} if seen.joined_at else {}),
            },
            "$max": {
                "last_seen_at": seen.last_seen_at,
                **({"left_at": seen.left_at} if seen.left_at else {}),
            },
        },
        upsert=True,
    )


def _channel_upsert(key: tuple[str, str], seen: ChannelSighting) -> UpdateOne:
    community_id, channel_id = key
    return UpdateOne(
        {"_id": f"{community_id}:{channel_id}"},
        {
            "$set": {
                "community_id": community_id,
                "platform": seen.platform,
                "channel_id": channel_id,
                "name": seen.channel.name,
                "category": seen.channel.category,
            },
            "$min": {"first_message_at": seen.first_message_at},
            "$max": {"last_message_at": seen.last_message_at},
        },
        upsert=True,
    )


@dataclass(frozen=True)
class PriorAnalysis:
    """What a stored message counted for before this batch (its rollup coordinates)."""

    kind: MessageKind
    sentiment: Sentiment
    topic_id: str | None


@dataclass(frozen=True)
class StoredMessage:
    """A stored message as the analysis stage needs it."""

    id: str
    platform: Platform
    community_id: str
    channel: ChannelRef
    thread: ThreadRef | None
    reply_to_id: str | None
    author: Member
    created_at: datetime
    text: str
    attachment_count: int
    analysis_digest: str | None
    prior: PriorAnalysis | None
    #: The whole stored analysis, read only for messages waiting for a topic.
    analysis: Analysis | None = None
    #: Its author was erased: nothing is left to analyze.
    erased: bool = False

    def counted_before(self) -> RollupState | None:
        """Where the message counts in the rollups now, if it was analyzed."""
        if self.prior is None:
            return None
        return RollupState(
            community_id=self.community_id,
            channel_id=self.channel.id,
            day=utc_day(self.created_at),
            kind=self.prior.kind,
            sentiment=self.prior.sentiment,
            topic_id=self.prior.topic_id,
        )

    def counted_as(self, analysis: Analysis, topic_id: str | None) -> RollupState:
        """Where the message counts with this analysis and topic."""
        return RollupState.of(
            community_id=self.community_id,
            channel_id=self.channel.id,
            created_at=self.created_at,
            analysis=analysis,
            topic_id=topic_id,
        )


@dataclass(frozen=True)
class AnalysisWrite:
    """One analysis to store on its message, if the message still says what was analyzed."""

    message_id: str
    analysis: Analysis
    digest: str
    #: The digest the message carried when it was read; the write is skipped if another
    #: consumer stored a newer analysis since.
    previous_digest: str | None
    topic_id: str | None
    analyzed_at: datetime
    #: An insight message still to be embedded and placed in a topic.
    topic_pending: bool = False


@dataclass(frozen=True)
class TopicPlacement:
    """A topic found for a message that waited for one."""

    message_id: str
    #: The analysis the topic was found for; a newer analysis makes it stale.
    digest: str
    topic_id: str | None
    #: The analysis decided again with the message's embedding, when it was.
    refined: Analysis | None = None


_ANALYSIS_FIELDS: dict[str, Any] = {
    "platform": 1,
    "community_id": 1,
    "channel": 1,
    "thread": 1,
    "reply_to_id": 1,
    "author": 1,
    "created_at": 1,
    "text": 1,
    "attachments": 1,
    "analysis_digest": 1,
    "analysis.kind": 1,
    "analysis.sentiment": 1,
    "topic_id": 1,
    "erased_at": 1,
}


#: Messages waiting for a topic are read with their whole analysis, which the placer
#: refines and publishes again.
_WAITING_FIELDS: dict[str, Any] = {
    **{field: 1 for field in _ANALYSIS_FIELDS if not field.startswith("analysis.")},
    "analysis": 1,
}


def _stored_message(doc: dict[str, Any], *, with_analysis: bool = False) -> StoredMessage:
    return StoredMessage(
        id=doc["_id"],
        platform=Platform(doc["platform"]),
        community_id=doc["community_id"],
        channel=ChannelRef.model_validate(doc["channel"]),
        thread=ThreadRef.model_validate(doc["thread"]) if doc.get("thread") else None,
        reply_to_id=doc.get("reply_to_id"),
        author=Member.model_validate(doc["author"]),
        created_at=_as_utc(doc["created_at"]),
        text=doc.get("text") or "",
        attachment_count=len(doc.get("attachments") or ()),
        analysis_digest=doc.get("analysis_digest"),
        prior=_prior(doc),
        analysis=Analysis.model_validate(doc["analysis"])
        if with_analysis and doc.get("analysis")
        else None,
        erased="erased_at" in doc,
    )


def _prior(doc: dict[str, Any]) -> PriorAnalysis | None:
    analysis = doc.get("analysis")
    if not analysis or "kind" not in analysis:
        return None
    return PriorAnalysis(
        kind=MessageKind(analysis["kind"]),
        sentiment=Sentiment(analysis.get("sentiment", Sentiment.NEUTRAL)),
        topic_id=doc.get("topic_id"),
    )


class AnalysisRepository:
    """Reads messages to analyze and stores what the analyzers said about them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def live_messages(self, message_ids: Iterable[str]) -> list[StoredMessage]:
        """The stored, not deleted messages among ``message_ids``."""
        ids = list(message_ids)
        if not ids:
            return []
        cursor = self._db[MESSAGES].find(
            {"_id": {"$in": ids}, "deleted_at": {"$exists": False}}, _ANALYSIS_FIELDS
        )
        return [_stored_message(doc) async for doc in cursor]

    async def texts(self, message_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The text and author id of each stored, not deleted message among ``message_ids``."""
        ids = list(message_ids)
        if not ids:
            return {}
        return {
            doc["_id"]: (doc.get("text") or "", doc["author"]["id"])
            async for doc in self._db[MESSAGES].find(
                {"_id": {"$in": ids}, "deleted_at": {"$exists": False}},
                {"text": 1, "author.id": 1},
            )
        }

    async def parents_of(self, messages: Sequence[StoredMessage]) -> dict[str, tuple[str, str]]:
        """For each reply among ``messages``, the text and author id of the message it
        answers, when that one is stored and not deleted (read from ``messages`` first)."""
        parents = {m.id: m.reply_to_id for m in messages if m.reply_to_id}
        if not parents:
            return {}
        known = {m.id: (m.text, m.author.id) for m in messages}
        known.update(await self.texts(p for p in parents.values() if p not in known))
        return {
            message_id: known[parent_id]
            for message_id, parent_id in parents.items()
            if parent_id in known
        }

    async def opted_out_of_ai(self, member_ids: Iterable[str]) -> set[str]:
        """The members among ``member_ids`` who refused that a remote model reads them."""
        ids = list(set(member_ids))
        if not ids:
            return set()
        return {
            doc["_id"]
            async for doc in self._db[MEMBERS].find(
                {"_id": {"$in": ids}, "ai_opt_out": True}, {"_id": 1}
            )
        }

    async def store(
        self, writes: Sequence[AnalysisWrite], *, session: AsyncClientSession | None = None
    ) -> set[str]:
        """Store analyses; returns the ids actually written.

        A message deleted or analyzed anew by someone else since it was read is left
        alone, so the rollups are moved only for writes that happened.
        """
        if not writes:
            return set()
        requests = [
            UpdateOne(
                {
                    "_id": write.message_id,
                    "deleted_at": {"$exists": False},
                    "analysis_digest": write.previous_digest,
                },
                {
                    "$set": {
                        "analysis": write.analysis.model_dump(mode="python"),
                        "analysis_digest": write.digest,
                        "analyzed_at": write.analyzed_at,
                        "topic_id": write.topic_id,
                        **({"topic_pending": True} if write.topic_pending else {}),
                    },
                    **({} if write.topic_pending else {"$unset": {"topic_pending": ""}}),
                },
            )
            for write in writes
        ]
        collection = self._db[MESSAGES]
        result = await collection.bulk_write(requests, ordered=False, session=session)
        ids = [write.message_id for write in writes]
        if result.matched_count == len(writes):
            return set(ids)
        # Some filters did not match (a deletion or another consumer got there first):
        # find which writes landed, since the rollups must move for exactly those.
        landed = {write.message_id: write.analyzed_at for write in writes}
        return {
            doc["_id"]
            async for doc in collection.find(
                {"_id": {"$in": ids}}, {"analyzed_at": 1}, session=session
            )
            if doc.get("analyzed_at") is not None
            and _as_utc(doc["analyzed_at"]) == _as_utc(landed[doc["_id"]])
        }

    async def unplaced_insights(self, limit: int) -> list[StoredMessage]:
        """Insight messages waiting to be embedded and placed in a topic, oldest first."""
        cursor = (
            self._db[MESSAGES]
            .find({"topic_pending": True, "deleted_at": {"$exists": False}}, _WAITING_FIELDS)
            .limit(limit)
        )
        return [_stored_message(doc, with_analysis=True) async for doc in cursor]

    async def has_unplaced_insights(self) -> bool:
        found = await self._db[MESSAGES].find_one({"topic_pending": True}, {"_id": 1})
        return found is not None

    async def place(
        self, placements: Sequence[TopicPlacement], *, session: AsyncClientSession | None = None
    ) -> set[str]:
        """Write the topics found (and refined analyses); returns the ids written (not
        re-analyzed meanwhile)."""
        if not placements:
            return set()
        collection = self._db[MESSAGES]
        result = await collection.bulk_write(
            [
                UpdateOne(
                    {
                        "_id": placement.message_id,
                        "topic_pending": True,
                        "analysis_digest": placement.digest,
                        "deleted_at": {"$exists": False},
                    },
                    {
                        "$set": {
                            "topic_id": placement.topic_id,
                            **(
                                {"analysis": placement.refined.model_dump(mode="python")}
                                if placement.refined is not None
                                else {}
                            ),
                        },
                        "$unset": {"topic_pending": ""},
                    },
                )
                for placement in placements
            ],
            ordered=False,
            session=session,
        )
        if result.matched_count == len(placements):
            return {placement.message_id for placement in placements}
        # Some were deleted or analyzed anew since they were read: only the placer clears
        # the flag of an analysis, so a cleared flag on the same analysis means ours landed.
        digests = {placement.message_id: placement.digest for placement in placements}
        return {
            doc["_id"]
            async for doc in collection.find(
                {
                    "_id": {"$in": list(digests)},
                    "topic_pending": {"$exists": False},
                    "deleted_at": {"$exists": False},
                },
                {"analysis_digest": 1},
                session=session,
            )
            if doc.get("analysis_digest") == digests[doc["_id"]]
        }


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
