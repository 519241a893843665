"""A member's own digest: what concerns them first, then the community's week in the order
of their interests.

Built from the same period facts as the community digest and from the member's interest
profile (channels and topics they write in, people they reply to or mention and who reply
to or mention them, over a look-back window before the period). Every statement cites
messages of the period.

Only the reader, members who themselves consented to personalization or to a journal,
and bots are named: anyone else is "a member" in statements, in cited sources and in
quoted text. The statements are written with names, then every text the digest shows
(title, summary, statements, sources' authors and excerpts) goes through the one
naming pass, so a name cannot slip through one code path.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from pepite_digest.lore import UNQUOTABLE, PeriodFacts, excerpt
from pepite_digest.repository import PeriodMessage
from pepite_reports.digests.models import (
    SECTION_TITLES,
    Cited,
    Digest,
    Section,
    SectionKind,
    Statement,
)

#: What stands for a member who has not agreed to be named.
A_MEMBER = "a member"
#: At most this many things in "For you": the rest is in the community's sections.
FOR_YOU_SIZE = 10
#: How much each kind of interest counts in a message's relevance to the reader.
CHANNEL_WEIGHT = 1.0
TOPIC_WEIGHT = 1.0
PEOPLE_WEIGHT = 1.0
#: The reader's own messages cited in a community item make it theirs too.
OWN_WEIGHT = 1.0
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class InterestProfile:
    """What one member engaged with over the look-back window, as counts.

    ``partners`` counts replies and mentions both ways: the member replying to or
    mentioning someone, and someone replying to or mentioning the member.
    """

    member_id: str
    channels: Mapping[str, int] = field(default_factory=dict)
    topics: Mapping[str, int] = field(default_factory=dict)
    partners: Mapping[str, int] = field(default_factory=dict)

    @cached_property
    def _totals(self) -> tuple[int, int, int]:
        return (
            sum(self.channels.values()),
            sum(self.topics.values()),
            sum(self.partners.values()),
        )

    def interest(self, message: PeriodMessage) -> float:
        """How much ``message`` matters to the member: the share of their activity in its
        channel, in its topic and with its author, each weighted."""
        channels, topics, partners = self._totals
        score = 0.0
        if channels:
            score += CHANNEL_WEIGHT * self.channels.get(message.channel_id, 0) / channels
        if topics and message.topic_id is not None:
            score += TOPIC_WEIGHT * self.topics.get(message.topic_id, 0) / topics
        if partners:
            score += PEOPLE_WEIGHT * self.partners.get(message.author_id, 0) / partners
        if message.author_id == self.member_id:
            score += OWN_WEIGHT
        return score


@dataclass(frozen=True, slots=True)
class MemberNames:
    """The names a member goes by (user name, display name), as stored."""

    member_id: str
    names: tuple[str, ...]
    is_bot: bool = False


@dataclass(frozen=True)
class Naming:
    """Which names a personalized digest must not show."""

    hidden: frozenset[str]

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.hidden:
            return None
        # Longest first, so "Bob Smith" is replaced whole rather than "Bob" alone; a
        # channel's "#name" is not a person.
        names = "|".join(re.escape(n) for n in sorted(self.hidden, key=lambda n: (-len(n), n)))
        return re.compile(rf"(?<![\w#])@?(?:{names})(?!\w)", re.IGNORECASE)

    def text(self, text: str) -> str:
        """``text`` with every hidden name replaced by "a member"."""
        if self._pattern is None:
            return text
        replaced = self._pattern.sub(A_MEMBER, text)
        if replaced.startswith(A_MEMBER) and not text.startswith(A_MEMBER):
            replaced = A_MEMBER.capitalize() + replaced[len(A_MEMBER) :]
        return replaced

    def statements(self, sections: Sequence[Section]) -> list[Section]:
        """``sections`` with the hidden names replaced in every statement."""
        return [
            section.model_copy(
                update={
                    "statements": [
                        Statement(text=self.text(s.text), message_ids=s.message_ids)
                        for s in section.statements
                    ]
                }
            )
            for section in sections
        ]


@dataclass(frozen=True)
class Directory:
    """Who may be named in a community's personal digests, and everyone's names.

    The same for every reader of a period, so it is looked up once per period; each
    reader's :class:`Naming` is then drawn from it.
    """

    #: Members who consented to personalization or to a journal.
    nameable: frozenset[str]
    #: Every known member's names, bots left out (they may be named).
    names: Mapping[str, frozenset[str]]

    @classmethod
    def of(
        cls,
        nameable: Iterable[str],
        known: Iterable[MemberNames],
        messages: Iterable[PeriodMessage],
    ) -> Directory:
        names: dict[str, set[str]] = defaultdict(set)
        for member in known:
            if not member.is_bot:
                names[member.member_id].update(n for n in member.names if n.strip())
        for m in messages:
            if not m.is_bot and m.author_name.strip():
                names[m.author_id].add(m.author_name)
        return cls(frozenset(nameable), {k: frozenset(v) for k, v in names.items()})

    @cached_property
    def _by_first_word(self) -> dict[str, set[tuple[str, str]]]:
        """(name, member id) of members who are not nameable, by the name's first word
        in lowercase: a digest's words then find the few names worth a closer look."""
        index: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for member_id, names in self.names.items():
            if member_id in self.nameable:
                continue
            for name in names:
                words = _WORDS.findall(name.lower())
                index[words[0] if words else ""].add((name, member_id))
        return index

    def naming(self, reader_id: str, texts: Iterable[str]) -> Naming:
        """The names ``reader_id`` may not see among those occurring in ``texts``.

        Hidden: every name of every member who is neither the reader nor nameable. A name
        the reader or a nameable member shares with such a member is hidden too: the safe
        side of an ambiguity.
        """
        blob = "\n".join(texts).lower()
        candidates = self._by_first_word.get("", set()).union(
            *(self._by_first_word.get(word, ()) for word in set(_WORDS.findall(blob)))
        )
        return Naming(
            frozenset(
                name
                for name, member_id in candidates
                if member_id != reader_id and name.lower() in blob
            )
        )


def for_you(
    facts: PeriodFacts,
    member_id: str,
    *,
    replied_earlier: Collection[str] = (),
    size: int = FOR_YOU_SIZE,
) -> list[Statement]:
    """Answers to the member's questions, replies to them, then mentions of them.

    ``replied_earlier`` holds the member's messages from before the period that period
    messages reply to (a reply this week to last week's question concerns them too).
    """
    by_id = {m.message_id: m for m in facts.messages}
    quotable = [m for m in facts.messages if m.kind not in UNQUOTABLE]
    shown: set[str] = set()
    statements: list[Statement] = []
    for item in facts.answered:
        q, a = item.question, item.answer
        if q.author_id != member_id or a is None or a.kind in UNQUOTABLE:
            continue
        shown.add(a.message_id)
        statements.append(
            Statement(
                text=(
                    f"Your question in #{q.channel_name} “{excerpt(q.text)}” was answered by "
                    f"{a.author_name}: “{excerpt(a.text)}”"
                ),
                message_ids=[q.message_id, a.message_id],
            )
        )
    for m in quotable:
        parent = by_id.get(m.reply_to_id) if m.reply_to_id else None
        to_member = (parent is not None and parent.author_id == member_id) or (
            m.reply_to_id in replied_earlier
        )
        if m.author_id == member_id or m.message_id in shown or not to_member:
            continue
        shown.add(m.message_id)
        statements.append(
            Statement(
                text=f"{m.author_name} replied to you in #{m.channel_name}: “{excerpt(m.text)}”",
                message_ids=[*([parent.message_id] if parent else []), m.message_id],
            )
        )
    for m in quotable:
        if m.author_id == member_id or m.message_id in shown or member_id not in m.mentioned:
            continue
        shown.add(m.message_id)
        statements.append(
            Statement(
                text=f"{m.author_name} mentioned you in #{m.channel_name}: “{excerpt(m.text)}”",
                message_ids=[m.message_id],
            )
        )
    return statements[:size]


def reranked(
    sections: Sequence[Section], profile: InterestProfile, by_id: Mapping[str, PeriodMessage]
) -> list[Section]:
    """The community's sections, their statements and the sections themselves ordered by
    the member's interest in what they cite; ties keep the community's order.

    Citations of messages outside the period are dropped (and statements left citing
    nothing), so every statement cites what the period holds.
    """

    def score(statement: Statement) -> float:
        return max((profile.interest(by_id[i]) for i in statement.message_ids), default=0.0)

    ranked: list[tuple[float, Section]] = []
    for section in sections:
        statements = [
            Statement(text=s.text, message_ids=kept)
            for s in section.statements
            if (kept := [i for i in s.message_ids if i in by_id])
        ]
        if not statements:
            continue
        statements.sort(key=score, reverse=True)
        ranked.append((score(statements[0]), section.model_copy(update={"statements": statements})))
    ranked.sort(key=lambda item: item[0], reverse=True)
    return [section for _, section in ranked]


def personal_digest_id(community_digest_id: str, member_id: str) -> str:
    return f"{community_digest_id}:{member_id}"


def personal_digest(
    community: Digest,
    facts: PeriodFacts,
    profile: InterestProfile,
    directory: Directory,
    *,
    generated_at: datetime,
    replied_earlier: Collection[str] = (),
) -> Digest:
    """The member's digest of the community digest's period, naming only who may be named.

    Args:
        community: the community's digest of the period, whose items are re-ranked.
        facts: the period's messages, as the community digest read them.
        profile: the reader's interests over the look-back window.
        directory: who may be named, and everyone's names.
        generated_at: when it is built.
        replied_earlier: the reader's messages before the period replied to in it.
    """
    member_id = profile.member_id
    by_id = {m.message_id: m for m in facts.messages}
    mine = for_you(facts, member_id, replied_earlier=replied_earlier)
    sections = [
        *([Section(kind=SectionKind.FOR_YOU, title=SECTION_TITLES[SectionKind.FOR_YOU],
                   statements=mine)] if mine else []),
        *reranked(community.sections, profile, by_id),
    ]  # fmt: skip
    cited = sorted(
        {i for section in sections for s in section.statements for i in s.message_ids},
        key=lambda i: (by_id[i].created_at, i),
    )
    things = f"{len(mine)} {'thing' if len(mine) == 1 else 'things'} for you"
    # Every text the digest will show, quoted messages whole.
    naming = directory.naming(
        member_id,
        [
            community.title,
            community.summary,
            *(s.text for section in sections for s in section.statements),
            *(f"{by_id[i].author_name}\n{by_id[i].text}" for i in cited),
        ],
    )
    # Each text goes through the naming once ("a member" must not be named again), and
    # quoted messages whole, before they are cut: a cut never leaves half a name behind.
    return community.model_copy(
        update={
            "digest_id": personal_digest_id(community.digest_id, member_id),
            "member_id": member_id,
            "title": naming.text(f"{community.title}, for you"),
            "generated_at": generated_at,
            "summary": naming.text(f"{things}. {community.summary}" if mine else community.summary),
            "sections": naming.statements(sections),
            "sources": [
                Cited(
                    message_id=i,
                    channel_name=by_id[i].channel_name,
                    author_name=naming.text(by_id[i].author_name),
                    created_at=by_id[i].created_at,
                    excerpt=excerpt(naming.text(by_id[i].text)),
                )
                for i in cited
            ],
        }
    )
