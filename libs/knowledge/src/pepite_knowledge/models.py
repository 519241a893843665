"""Knowledge entries: a question and the answer the community accepted for it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

#: Longest question or answer an entry keeps (a FAQ entry is read, not scrolled).
MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 8000


class EntryOrigin(StrEnum):
    """Where an entry comes from."""

    #: Found in the community's messages: a question and the reply that answered it.
    MINED = "mined"
    #: Written or edited through the API by the community's team.
    CURATED = "curated"


class EntrySignals(BaseModel):
    """What tells a good answer from a passing one."""

    model_config = ConfigDict(frozen=True)

    thanked: bool = Field(default=False, description="The asker thanked the answer.")
    reactions: int = Field(default=0, ge=0, description="Reactions the answer drew.")
    analyzer_answer: bool = Field(
        default=False, description="The analyzer classified the reply as an answer."
    )
    answer_length: int = Field(default=0, ge=0, description="Words in the answer.")


class EntryChannel(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""


class KnowledgeEntry(BaseModel):
    """One question with its answer, and where both come from."""

    model_config = ConfigDict(frozen=True)

    entry_id: str
    community_id: str
    origin: EntryOrigin
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)
    question_message_id: str | None = None
    answer_message_id: str | None = None
    question_author_id: str | None = None
    answer_author_id: str | None = None
    channel: EntryChannel | None = None
    signals: EntrySignals = Field(default_factory=EntrySignals)
    created_at: datetime
    updated_at: datetime


def mined_entry_id(question_message_id: str) -> str:
    """Mined entries are keyed by their question: mining it again updates the same entry."""
    return f"mined:{question_message_id}"
