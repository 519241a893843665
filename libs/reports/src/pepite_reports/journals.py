"""Personal Logger journals: one entry per consenting member and local day, as the digest
service stores them and every reader (the API, the command line) renders them.

An entry only names other members who consented to a journal or to personalization
themselves (listed in ``named``, so a later withdrawal can take their name out again);
everyone else is "a member", quoted text included.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

#: The collection the digest service writes and the API reads.
JOURNALS = "journals"


def journal_entry_id(member_id: str, day: date) -> str:
    """``member_id:YYYY-MM-DD``: one entry per member and local day."""
    return f"{member_id}:{day.isoformat()}"


class MoodOfDay(BaseModel):
    """How the member's messages of the day read, counted by mood and by sentiment."""

    dominant: str | None = Field(
        description="The mood most of the day's messages carry (null without messages)."
    )
    moods: dict[str, int] = Field(description="Messages per mood.")
    sentiments: dict[str, int] = Field(description="Messages per sentiment.")


class Quoted(BaseModel):
    """One of the member's messages, quoted (other members' names replaced)."""

    message_id: str
    channel_name: str
    created_at: datetime
    excerpt: str


class ActionKind(StrEnum):
    ANSWER = "answer"
    RESOURCE = "resource"
    ENCOURAGEMENT = "encouragement"


class NotableAction(BaseModel):
    """Something the member did for others: an answer, a resource, an encouragement."""

    kind: ActionKind
    summary: str = Field(description='E.g. "Answered a question from a member".')
    message: Quoted


class JournalStats(BaseModel):
    messages: int
    channels: int
    replies_received: int
    reactions_received: int
    questions_asked: int
    questions_answered: int
    streak_days: int = Field(description="Consecutive active days ending with this one.")


class UnlockedTitle(BaseModel):
    title_id: str
    name: str
    description: str


class NamedMember(BaseModel):
    """Another member this entry names (they consented to it)."""

    member_id: str
    names: list[str] = Field(description="Every name they go by; the first is the one shown.")


class JournalEntry(BaseModel):
    """One member's day."""

    entry_id: str = Field(description="member_id:YYYY-MM-DD.")
    community_id: str
    member_id: str
    member_name: str
    day: date = Field(description="The day, in the community's time zone.")
    timezone: str
    generated_at: datetime
    mood: MoodOfDay
    challenges: list[Quoted] = Field(description="Problems and complaints the member raised.")
    wins: list[Quoted] = Field(description="Satisfaction, thanks and things that now work.")
    actions: list[NotableAction]
    stats: JournalStats
    titles_unlocked: list[UnlockedTitle]
    named: list[NamedMember] = Field(default_factory=list)


_STAT_LABELS = {
    "messages": "Messages",
    "channels": "Channels",
    "replies_received": "Replies received",
    "reactions_received": "Reactions received",
    "questions_asked": "Questions asked",
    "questions_answered": "Questions answered",
    "streak_days": "Active-day streak",
}


def _quote(quoted: Quoted, zone: ZoneInfo) -> str:
    # The time of day where the community lives: the entry's day is its local day.
    return (
        f"“{quoted.excerpt}” (#{quoted.channel_name}, "
        f"{quoted.created_at.astimezone(zone):%H:%M}, `{quoted.message_id}`)"
    )


def entry_markdown(entry: JournalEntry) -> list[str]:
    """One entry as Markdown lines, under a level-2 heading of its day."""
    mood, zone = entry.mood, ZoneInfo(entry.timezone)
    lines = [f"## {entry.day:%A %d %B %Y}", ""]
    if mood.dominant is not None:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(mood.moods.items()))
        lines += [f"**Mood of the day:** {mood.dominant} ({counts})", ""]
    sections: list[tuple[str, list[str]]] = [
        ("Challenges", [_quote(q, zone) for q in entry.challenges]),
        ("Wins and progress", [_quote(q, zone) for q in entry.wins]),
        ("Notable actions", [f"{a.summary}: {_quote(a.message, zone)}" for a in entry.actions]),
        ("Titles unlocked", [f"**{t.name}**: {t.description}" for t in entry.titles_unlocked]),
    ]
    for title, items in sections:
        if items:
            lines += [f"### {title}", "", *(f"- {item}" for item in items), ""]
    stats = entry.stats.model_dump()
    lines += ["### Stats", ""]
    lines += [f"- {label}: {stats[name]}" for name, label in _STAT_LABELS.items()]
    return [*lines, ""]


def to_markdown(entries: Sequence[JournalEntry], *, title: str | None = None) -> str:
    """A journal (entries oldest first) as one Markdown document."""
    ordered = sorted(entries, key=lambda e: e.day)
    if title is None:
        who = ordered[0].member_name if ordered else "member"
        title = f"Journal of {who}"
    lines = [f"# {title}", ""]
    if ordered:
        zone = ordered[0].timezone
        lines += [f"_{ordered[0].day} to {ordered[-1].day}, days and times in {zone}._", ""]
    else:
        lines += ["_No journal entries for this period._", ""]
    for entry in ordered:
        lines += entry_markdown(entry)
    return "\n".join(lines).rstrip("\n") + "\n"
