"""What a digest is made of: sections of statements, each citing the messages behind it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class SectionKind(StrEnum):
    #: A personalized digest's first section: what concerns the reader directly.
    FOR_YOU = "for_you"
    HIGHLIGHTS = "highlights"
    ANNOUNCEMENTS = "announcements"
    TRENDING_TOPICS = "trending_topics"
    NEW_TOPICS = "new_topics"
    TOP_QUESTIONS = "top_questions"
    UNANSWERED_QUESTIONS = "unanswered_questions"
    NEW_MEMBERS = "new_members"
    SHOUT_OUTS = "shout_outs"


SECTION_TITLES: dict[SectionKind, str] = {
    SectionKind.FOR_YOU: "For you",
    SectionKind.HIGHLIGHTS: "Highlights",
    SectionKind.ANNOUNCEMENTS: "Decisions and announcements",
    SectionKind.TRENDING_TOPICS: "Trending topics",
    SectionKind.NEW_TOPICS: "New topics",
    SectionKind.TOP_QUESTIONS: "Top questions",
    SectionKind.UNANSWERED_QUESTIONS: "Still unanswered",
    SectionKind.NEW_MEMBERS: "Welcome",
    SectionKind.SHOUT_OUTS: "Shout-outs",
}


class Statement(BaseModel):
    """One thing the digest says, and the messages it is drawn from."""

    text: str
    message_ids: list[str] = Field(
        description="Normalized ids (platform:community:native_id) of the cited messages."
    )


class Section(BaseModel):
    kind: SectionKind
    title: str
    statements: list[Statement]


class Cited(BaseModel):
    """A cited message as the digest shows it in its sources."""

    message_id: str
    channel_name: str
    author_name: str
    created_at: datetime
    excerpt: str


class KeyNumber(BaseModel):
    name: str
    value: float
    previous: float | None = Field(
        default=None, description="The same figure over the period just before."
    )


class Digest(BaseModel):
    """A community's digest of one period (or one member's, when ``member_id`` is set)."""

    digest_id: str
    community_id: str
    member_id: str | None = None
    title: str
    period_start: datetime
    period_end: datetime = Field(description="End of the period (excluded).")
    timezone: str
    generated_at: datetime
    writer: str = Field(description="extractive, or the LLM model that wrote it.")
    summary: str
    numbers: list[KeyNumber]
    sections: list[Section]
    sources: list[Cited]

    def cited_ids(self) -> set[str]:
        """Every message id any statement cites."""
        return {m for section in self.sections for s in section.statements for m in s.message_ids}
