"""Unanswered questions as the API reads them (``unanswered_questions``, kept by the
digest service's watcher)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pepite_kit import Database

UNANSWERED = "unanswered_questions"


class UnansweredQuestion(BaseModel):
    """A member's question to everyone that has waited past the delay without an answer."""

    question_id: str = Field(description="The message id of the question.")
    channel_id: str
    channel_name: str
    author_id: str
    author_name: str
    asked_at: datetime
    excerpt: str
    alerted_at: datetime | None = Field(description="When alert.raised went out about it.")


class UnansweredReader:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, community_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[UnansweredQuestion]:
        """Up to ``limit`` questions, the longest waiting first, after ``after``."""
        query: dict[str, object] = {"community_id": community_id}
        if after is not None:
            asked_at, question_id = after
            query["$or"] = [
                {"asked_at": {"$gt": asked_at}},
                {"asked_at": asked_at, "_id": {"$gt": question_id}},
            ]
        cursor = self._db[UNANSWERED].find(query).sort([("asked_at", 1), ("_id", 1)]).limit(limit)
        return [
            UnansweredQuestion.model_validate({**doc, "question_id": doc["_id"]})
            async for doc in cursor
        ]
