"""Reading stored messages: filters, word search, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pepite_api.pagination import after_descending
from pepite_contracts import MessageKind, ModerationScores, Mood, Sentiment
from pepite_kit import Database, IndexSpec
from pepite_kit.search import SEARCH_TERMS, parse_query, phrase_pattern

MESSAGES = "messages"

MESSAGE_INDEXES = (
    # Filtering by kind is the most common question ("show me this month's problems").
    IndexSpec(
        MESSAGES,
        [("community_id", 1), ("analysis.kind", 1), ("created_at", 1), ("_id", 1)],
        "community_kind_time",
    ),
    # Word search newest first: the entries of a term are read in time order and the
    # read stops at the page's end, however many messages have the word.
    IndexSpec(
        MESSAGES,
        [("community_id", 1), (SEARCH_TERMS, 1), ("created_at", 1), ("_id", 1)],
        "community_terms_time",
    ),
)
#: Indexes of earlier versions, dropped at start-up: they cost every write.
OBSOLETE_MESSAGE_INDEXES = ("community_text",)


class ChannelOut(BaseModel):
    id: str
    name: str


class AuthorOut(BaseModel):
    id: str
    name: str
    display_name: str | None = None
    is_bot: bool = False


class AnalysisOut(BaseModel):
    """What the analyzer said about the message."""

    kind: MessageKind
    sentiment: Sentiment
    sentiment_score: float
    mood: Mood
    language: str
    moderation: ModerationScores


class MessageOut(BaseModel):
    message_id: str
    platform: str
    channel: ChannelOut
    thread_id: str | None = None
    reply_to_id: str | None = None
    author: AuthorOut
    text: str
    created_at: datetime
    edited_at: datetime | None = None
    attachments: int = Field(default=0, description="Files attached.")
    reactions: int = Field(default=0, description="Reactions, all emoji together.")
    analysis: AnalysisOut | None = Field(description="Null until the message is analyzed.")
    topic_id: str | None = None


class MessageFilters(BaseModel):
    """What a message list is restricted to; every field is optional."""

    q: str | None = None
    channel_id: str | None = None
    author_id: str | None = None
    kind: MessageKind | None = None
    sentiment: Sentiment | None = None
    since: datetime | None = None
    until: datetime | None = None


#: What a list reads of a message: never ``raw`` (unbounded) or the analyzer's internals.
_PROJECTION = {
    "platform": 1,
    "channel.id": 1,
    "channel.name": 1,
    "thread.id": 1,
    "reply_to_id": 1,
    "author.id": 1,
    "author.name": 1,
    "author.display_name": 1,
    "author.is_bot": 1,
    "text": 1,
    "created_at": 1,
    "edited_at": 1,
    "attachments.id": 1,
    "reactions.count": 1,
    "analysis.kind": 1,
    "analysis.sentiment": 1,
    "analysis.sentiment_score": 1,
    "analysis.mood": 1,
    "analysis.language": 1,
    "analysis.moderation": 1,
    "topic_id": 1,
}


def message_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored message in the shape of :class:`MessageOut`, without building models.

    Lists are the API's hottest path: building and re-validating fifty nested models per
    page cost more than the database read. The projection above already limits the
    fields to that shape; tests check the output against the model.
    """
    analysis = doc.get("analysis")
    thread = doc.get("thread")
    author = doc["author"]
    return {
        "message_id": doc["_id"],
        "platform": doc.get("platform", "unknown"),
        "channel": {"id": doc["channel"]["id"], "name": doc["channel"].get("name", "")},
        "thread_id": thread.get("id") if thread else None,
        "reply_to_id": doc.get("reply_to_id"),
        "author": {
            "id": author["id"],
            "name": author.get("name", ""),
            "display_name": author.get("display_name"),
            "is_bot": bool(author.get("is_bot")),
        },
        "text": doc.get("text", ""),
        "created_at": doc["created_at"],
        "edited_at": doc.get("edited_at"),
        "attachments": len(doc.get("attachments") or []),
        "reactions": sum(r.get("count", 0) for r in doc.get("reactions") or []),
        "analysis": analysis or None,
        "topic_id": doc.get("topic_id"),
    }


def message_out(doc: dict[str, Any]) -> MessageOut:
    return MessageOut.model_validate(message_json(doc))


def message_query(community_id: str, filters: MessageFilters) -> dict[str, Any]:
    query: dict[str, Any] = {"community_id": community_id, "deleted_at": {"$exists": False}}
    if filters.q:
        search = parse_query(filters.q)
        terms: dict[str, Any] = {}
        if search.any_of:
            terms["$in"] = list(search.any_of)
        if search.phrase_terms:
            terms["$all"] = list(search.phrase_terms)
        if search.none_of:
            terms["$nin"] = list(search.none_of)
        query[SEARCH_TERMS] = terms
        if search.phrases:
            # The index finds the phrase's words; the text confirms they are in order.
            query["$and"] = [
                {"text": {"$regex": phrase_pattern(phrase), "$options": "i"}}
                for phrase in search.phrases
            ]
    if filters.channel_id is not None:
        query["channel.id"] = filters.channel_id
    if filters.author_id is not None:
        query["author.id"] = filters.author_id
    if filters.kind is not None:
        query["analysis.kind"] = filters.kind.value
    if filters.sentiment is not None:
        query["analysis.sentiment"] = filters.sentiment.value
    window: dict[str, Any] = {}
    if filters.since is not None:
        window["$gte"] = filters.since
    if filters.until is not None:
        window["$lt"] = filters.until
    if window:
        query["created_at"] = window
    return query


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        community_id: str,
        filters: MessageFilters,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Messages matching ``filters``, newest first, strictly after ``after``."""
        query = message_query(community_id, filters)
        if after is not None:
            query = {"$and": [query, after_descending("created_at", after[0], after[1])]}
        cursor = (
            self._db[MESSAGES]
            .find(query, _PROJECTION)
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        return [message_json(doc) async for doc in cursor]

    async def get(self, community_id: str, message_id: str) -> MessageOut | None:
        doc = await self._db[MESSAGES].find_one(
            {"_id": message_id, "community_id": community_id, "deleted_at": {"$exists": False}},
            _PROJECTION,
        )
        return None if doc is None else message_out(doc)

    async def by_ids(self, community_id: str, message_ids: list[str]) -> list[MessageOut]:
        """Messages by id, in the order given (missing or deleted ones left out)."""
        found = {
            doc["_id"]: message_out(doc)
            async for doc in self._db[MESSAGES].find(
                {
                    "_id": {"$in": message_ids},
                    "community_id": community_id,
                    "deleted_at": {"$exists": False},
                },
                _PROJECTION,
            )
        }
        return [found[m] for m in message_ids if m in found]
