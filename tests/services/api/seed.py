"""A small stored community, as the classifier would have left it, for API tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pepite_classifier.repository import INDEXES as CLASSIFIER_INDEXES
from pepite_classifier.rollups import rollup_changes, state_from_document
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_contracts import Analysis, MessageKind, ModerationScores, Sentiment
from pepite_kit import Database
from pepite_kit.mongo import ensure_indexes
from pepite_kit.search import SEARCH_TERMS, search_terms

START = datetime(2024, 5, 1, 9, tzinfo=UTC)

#: (kind, sentiment, words) cycled over the messages.
_PATTERN: list[tuple[MessageKind, Sentiment, str]] = [
    (MessageKind.QUESTION, Sentiment.NEUTRAL, "how do I configure the login redirect"),
    (MessageKind.PROBLEM, Sentiment.NEGATIVE, "the login page crashes with error 500"),
    (MessageKind.ANSWER, Sentiment.POSITIVE, "set the redirect url in settings"),
    (MessageKind.FEATURE_REQUEST, Sentiment.NEUTRAL, "please add dark mode to the dashboard"),
    (MessageKind.SOCIAL, Sentiment.POSITIVE, "good morning everyone"),
    (MessageKind.GRATITUDE, Sentiment.POSITIVE, "thanks that fixed it"),
]


@dataclass
class Seeded:
    """Ids of what was stored, to address it in requests."""

    community_id: str
    secret_word: str
    message_ids: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    channel_ids: list[str] = field(default_factory=list)
    topic_ids: list[str] = field(default_factory=list)
    flagged_id: str = ""


def _analysis(kind: MessageKind, sentiment: Sentiment, toxic: bool) -> dict[str, Any]:
    return Analysis(
        kind=MessageKind.TOXIC if toxic else kind,
        sentiment=sentiment,
        sentiment_score={"negative": -0.6, "neutral": 0.0, "positive": 0.7}[sentiment.value],
        language="en",
        moderation=ModerationScores(toxicity=0.95 if toxic else 0.01),
    ).model_dump(mode="python")


async def seed_community(db: Database, community_id: str, *, messages: int = 60) -> Seeded:
    """Store ``messages`` messages over 30 days in 3 channels by 4 members, with rollups,
    channels, topics, one person and one moderation item."""
    await ensure_indexes(db, [*CLASSIFIER_INDEXES, *ROLLUP_INDEXES])
    seeded = Seeded(community_id=community_id, secret_word=f"zq{community_id}secret")
    channels = [("c1", "general"), ("c2", "help"), ("c3", "feedback")]
    seeded.channel_ids = [f"{community_id}-{c}" for c, _ in channels]
    members = [f"discord:{community_id}:{n}" for n in range(1, 5)]
    seeded.member_ids = members
    topics = [f"{community_id}:t1", f"{community_id}:t2"]
    seeded.topic_ids = topics
    docs = []
    for n in range(messages):
        kind, sentiment, words = _PATTERN[n % len(_PATTERN)]
        toxic = n == 7
        channel_id, channel_name = channels[n % 3]
        author = members[n % 4]
        insight = kind in {MessageKind.QUESTION, MessageKind.PROBLEM, MessageKind.FEATURE_REQUEST}
        message_id = f"discord:{community_id}:{1000 + n}"
        text = f"{words} {seeded.secret_word} number {n}"
        docs.append(
            {
                "_id": message_id,
                "platform": "discord",
                "community_id": community_id,
                "native_id": str(1000 + n),
                "channel": {"id": f"{community_id}-{channel_id}", "name": channel_name},
                "thread": None,
                "reply_to_id": None,
                "author": {
                    "id": author,
                    "native_id": author.rsplit(":", 1)[1],
                    "name": f"member{author[-1]}",
                    "display_name": f"Member {author[-1]}",
                    "is_bot": False,
                },
                "text": text,
                SEARCH_TERMS: search_terms(text),
                "created_at": START + timedelta(hours=12 * n),
                "edited_at": None,
                "attachments": [],
                "reactions": [{"emoji": "👍", "count": n % 3}],
                "mentions": [],
                "raw": {"source": "seed"},
                "analysis": _analysis(kind, sentiment, toxic),
                "topic_id": topics[n % 2] if insight and not toxic else None,
            }
        )
        seeded.message_ids.append(message_id)
        if toxic:
            seeded.flagged_id = message_id
    await db["messages"].insert_many(docs)
    await RollupRepository(db).apply(
        rollup_changes((None, state_from_document(doc)) for doc in docs)
    )
    await db["members"].insert_many(
        [
            {
                "_id": member_id,
                "community_id": community_id,
                "platform": "discord",
                "native_id": member_id.rsplit(":", 1)[1],
                "name": f"member{member_id[-1]}",
                "display_name": f"Member {member_id[-1]}",
                "is_bot": False,
                "first_seen_at": START,
                "last_seen_at": START + timedelta(days=30),
            }
            for member_id in members
        ]
    )
    await db["channels"].insert_many(
        [
            {
                "_id": f"{community_id}:{community_id}-{c}",
                "community_id": community_id,
                "channel_id": f"{community_id}-{c}",
                "name": name,
            }
            for c, name in channels
        ]
    )
    now = datetime.now(UTC)
    await db["topics"].insert_many(
        [
            {
                "_id": topic_id,
                "community_id": community_id,
                "name": name,
                "keywords": name.split(", "),
                "size": size,
                "kinds": {"question": size},
                "sample_ids": seeded.message_ids[:3],
                "is_other": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
                "centroid": b"\x00" * 16,
            }
            for topic_id, name, size in (
                (topics[0], "login, redirect", 20),
                (topics[1], "dark mode", 10),
            )
        ]
    )
    await db["people"].insert_one(
        {
            "_id": f"person:{community_id}:1",
            "community_id": community_id,
            "member_ids": members[:2],
            "display_name": "Two accounts",
            "created_at": now,
            "updated_at": now,
        }
    )
    await db["members"].update_many(
        {"_id": {"$in": members[:2]}}, {"$set": {"person_id": f"person:{community_id}:1"}}
    )
    flagged = docs[7]
    await db["moderation_items"].insert_one(
        {
            "_id": flagged["_id"],
            "community_id": community_id,
            "channel": flagged["channel"] | {"category": None, "topic": None},
            "author": {"id": flagged["author"]["id"], "name": flagged["author"]["name"]},
            "kind": "toxic",
            "scores": flagged["analysis"]["moderation"],
            "reasons": ["kind:toxic", "score:toxicity"],
            "created_at": flagged["created_at"],
            "flagged_at": now,
            "status": "pending",
            "history": [],
        }
    )
    return seeded
