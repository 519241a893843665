"""What consent changes and erasures do to the classifier's data, as pure functions.

An erased member keeps being counted (the community's numbers must not change) but
nothing they wrote nor who they are stays: their messages keep their place, time and
analysis under a pseudonym, with every word, file, reaction and raw field gone, and the
traces they left in other members' messages (mentions, reactions, replies) are dropped.
The same functions redact what is stored and what arrives later, so re-importing an
old export brings nothing back.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pepite_classifier.service import BatchWrites, analysis_digest
from pepite_classifier.topics.keywords import keyword_name, terms, tokens
from pepite_classifier.topics.model import Topic, TopicNaming
from pepite_contracts import (
    Analysis,
    AnalyzerName,
    ConsentChange,
    Member,
    MessageEdit,
    MessageKind,
    NormalizedMessage,
)
from pepite_kit.search import SEARCH_TERMS

#: What an erased member is called wherever a record must name its author.
ERASED_NAME = "erased member"
#: What replaces a mention of an erased member in a text.
ERASED_MENTION = f"@{ERASED_NAME}"

#: The analysis of a message whose author was erased before it was analyzed: counted as
#: a message, never read by any analyzer (there is nothing left to read).
ERASED_ANALYSIS = Analysis(kind=MessageKind.SOCIAL, analyzer=AnalyzerName.LOCAL, model="erased")

#: The analysis digest of a scrubbed message: an analysis made before the erasure stays
#: current, so the empty text is never analyzed again.
SCRUBBED_ANALYSIS_DIGEST = analysis_digest("", 0)

#: Keys under which a record of another member (who reacted, who replied) names them in
#: a message's ``raw``; such a record is dropped whole.
_ID_KEYS = frozenset({"id", "user", "user_id", "userId", "member_id", "memberId"})


def opted_out_of_ai(change: ConsentChange) -> bool:
    """The ``members.ai_opt_out`` flag a consent change asks for."""
    return not change.consent.ai_processing


@dataclass(frozen=True)
class Erased:
    """A member who asked to be erased, and the pseudonym that stands for them."""

    member_id: str
    community_id: str
    pseudonym: str

    def native_id(self, platform: str) -> str | None:
        """The platform's own id of the member, when their id is a stable id of ``platform``.

        Platforms write it in texts (``<@123>``) and raw records (who reacted).
        """
        prefix = f"{platform}:{self.community_id}:"
        if self.member_id.startswith(prefix) and len(self.member_id) > len(prefix):
            return self.member_id[len(prefix) :]
        return None


@dataclass
class _Traces:
    """How the erased members of one community show on one platform."""

    #: Every id an erased member is known by (stable and native), to its pseudonym.
    identifiers: dict[str, str]
    #: Platform mention markup of an erased member: ``<@123>``, ``<@!123>``, ``<@U1|ann>``.
    markup: re.Pattern[str] | None

    def unmention(self, text: str, names: Iterable[str] = ()) -> str:
        """``text`` with mentions of erased members (markup, ``@name``) neutralised."""
        if self.markup is not None and "<@" in text:
            text = self.markup.sub(ERASED_MENTION, text)
        for name in {name for name in names if name.strip()}:
            text = re.sub(rf"(?<![\w@])@{re.escape(name)}(?!\w)", ERASED_MENTION, text)
        return text


@dataclass
class ErasedSet:
    """The erased members a batch may meet, by member id."""

    members: dict[str, Erased] = field(default_factory=dict)
    _traces: dict[tuple[str, str], _Traces] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, erased: Iterable[Erased]) -> ErasedSet:
        return cls({who.member_id: who for who in erased})

    def __bool__(self) -> bool:
        return bool(self.members)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self.members

    def get(self, member_id: str) -> Erased | None:
        return self.members.get(member_id)

    def traces(self, platform: str, community_id: str) -> _Traces | None:
        """How the community's erased members show on ``platform``; None if it has none."""
        key = (platform, community_id)
        if key not in self._traces:
            identifiers: dict[str, str] = {}
            natives: list[str] = []
            for who in self.members.values():
                if who.community_id != community_id:
                    continue
                identifiers[who.member_id] = who.pseudonym
                native = who.native_id(platform)
                if native is not None:
                    identifiers[native] = who.pseudonym
                    natives.append(re.escape(native))
            markup = re.compile(rf"<@!?(?:{'|'.join(natives)})(?:\|[^>]*)?>") if natives else None
            self._traces[key] = _Traces(identifiers, markup)
        traces = self._traces[key]
        return traces if traces.identifiers else None


def anonymized_member(member: Member, pseudonym: str) -> Member:
    """The author an erased member's message keeps: a pseudonym, no name, no picture."""
    return Member(id=pseudonym, native_id=pseudonym, name=ERASED_NAME, is_bot=member.is_bot)


#: What an erased member's message keeps of its content: nothing.
SCRUBBED_CONTENT: dict[str, Any] = {
    "text": "",
    "attachments": [],
    "mentions": [],
    "reactions": [],
    "raw": {},
}


def anonymized_fields(pseudonym: str) -> dict[str, Any]:
    """The ``$set`` that anonymizes a stored message of an erased member."""
    return {
        **SCRUBBED_CONTENT,
        SEARCH_TERMS: [],
        # Field by field, so that ``is_bot`` stays: it says nothing of who they are.
        "author.id": pseudonym,
        "author.native_id": pseudonym,
        "author.name": ERASED_NAME,
        "author.display_name": None,
        "author.avatar_url": None,
        "content_digest": None,
    }


def anonymized_message(message: NormalizedMessage, pseudonym: str) -> NormalizedMessage:
    """An erased member's message as it may be stored: where, when and nothing else."""
    return message.model_copy(
        update={**SCRUBBED_CONTENT, "author": anonymized_member(message.author, pseudonym)}
    )


def forget_members(
    message: NormalizedMessage, erased: ErasedSet, *, names: Iterable[str] = ()
) -> NormalizedMessage:
    """Another member's message without the traces of erased members in it.

    Mentions of them are dropped (with their raw extras), their mention markup in the
    text becomes a neutral label, and raw records naming them (who reacted, who replied)
    are dropped. The message itself is returned when nothing in it names them.

    Args:
        message: A message whose author is not erased.
        erased: The erased members.
        names: Names of the erased members that ``@name`` in the text may stand for,
            besides those of the mentions dropped.
    """
    traces = erased.traces(message.platform.value, message.community_id)
    if traces is None:
        return message
    gone = [i for i, m in enumerate(message.mentions) if m.member_id in erased]
    raw = _scrub_raw(_without_mention_extras(message.raw, gone, len(message.mentions)), traces)
    text = traces.unmention(message.text, [*names, *(message.mentions[i].name for i in gone)])
    if not gone and text == message.text and raw == message.raw:
        return message
    return message.model_copy(
        update={
            "text": text,
            "mentions": [m for i, m in enumerate(message.mentions) if i not in gone],
            "raw": raw,
        }
    )


def carried_analysis_digest(
    before: NormalizedMessage, after: NormalizedMessage, stored: str | None
) -> str | None:
    """The analysis digest a message keeps once :func:`forget_members` changed its text.

    An analysis of the text as it was stands for it with a mention less: the message is
    not analyzed (nor paid for) again because an erased member left it.
    """
    if stored is not None and stored == analysis_digest(before.text, len(before.attachments)):
        return analysis_digest(after.text, len(after.attachments))
    return stored


def redact_message(message: NormalizedMessage, erased: ErasedSet) -> NormalizedMessage:
    """A message as it may be stored, given who was erased."""
    author = erased.get(message.author.id)
    if author is not None:
        return anonymized_message(message, author.pseudonym)
    return forget_members(message, erased)


def _redact_edit(edit: MessageEdit, erased: ErasedSet) -> MessageEdit:
    """A partial edit without mentions of erased members.

    An edit of an erased member's own message cannot be told by its content (a partial
    edit does not say who wrote the message): the store refuses it instead.
    """
    traces = erased.traces(edit.platform.value, edit.community_id)
    if traces is None:
        return edit
    mentions = edit.mentions
    names: list[str] = []
    if mentions is not None:
        names = [m.name for m in mentions if m.member_id in erased]
        mentions = [m for m in mentions if m.member_id not in erased]
    text = traces.unmention(edit.text, names) if edit.text is not None else None
    if mentions == edit.mentions and text == edit.text:
        return edit
    return edit.model_copy(update={"mentions": mentions, "text": text})


def redact(writes: BatchWrites, erased: ErasedSet) -> None:
    """Make a batch's writes safe to store, given who was erased (in place).

    Messages of erased members are anonymized (and noted in ``writes.anonymized``), the
    traces of erased members in other messages dropped, and erased members get no member
    document, neither from a sighting nor from a consent change.
    """
    if not erased:
        return
    for message_id, message in writes.messages.items():
        if message.author.id in erased:
            writes.anonymized.add(message_id)
        writes.messages[message_id] = redact_message(message, erased)
    for message_id, edit in writes.edits.items():
        writes.edits[message_id] = _redact_edit(edit, erased)
    for member_id in [m for m in writes.members if m in erased]:
        del writes.members[member_id]
    for member_id in [m for m in writes.consents if m in erased]:
        del writes.consents[member_id]


def _without_mention_extras(raw: dict[str, Any], gone: Sequence[int], count: int) -> dict[str, Any]:
    """``raw`` without the extras of dropped mentions (kept in the same order as mentions)."""
    extras = raw.get("mentions")
    if not gone or not isinstance(extras, list) or len(extras) != count:
        return raw
    kept = [extra for i, extra in enumerate(extras) if i not in gone]
    trimmed = {key: value for key, value in raw.items() if key != "mentions"}
    if kept:
        trimmed["mentions"] = kept
    return trimmed


def _scrub_raw(value: Any, traces: _Traces) -> Any:
    """``value`` without records naming an erased member; their ids become pseudonyms."""
    ids = traces.identifiers
    if isinstance(value, dict):
        return {
            key: _scrub_raw(item, traces)
            for key, item in value.items()
            if not (isinstance(key, str) and key in ids)
        }
    if isinstance(value, list):
        return [
            _scrub_raw(item, traces)
            for item in value
            if not (isinstance(item, str) and item in ids)
            and not (
                isinstance(item, dict)
                and any(isinstance(item.get(key), str) and item[key] in ids for key in _ID_KEYS)
            )
        ]
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


# ----- what an erased member's texts left elsewhere ------------------------------------


@dataclass(frozen=True)
class AuthoredText:
    """One stored message of a member about to be erased."""

    message_id: str
    text: str
    reply_to_id: str | None
    topic_id: str | None


def texts_terms(texts: Iterable[str]) -> frozenset[str]:
    """Every term (word, two-word phrase) topic keywords could have taken from ``texts``."""
    return frozenset(term for text in texts for term in terms(text))


def topic_uses(topic: Topic, erased_terms: frozenset[str]) -> bool:
    """Whether a topic's keywords or name use a term of an erased member's texts."""
    return any(keyword in erased_terms for keyword in topic.keywords) or any(
        word in erased_terms for word in tokens(topic.name) if word
    )


def topic_after_erasure(
    topic: Topic,
    *,
    erased_terms: frozenset[str],
    remaining_texts: Sequence[str],
    erased_messages: set[str],
) -> Topic | None:
    """A topic once an erased member's messages no longer speak for it; None if unchanged.

    A keyword the member used stays only if two other messages of the topic use it too
    (what keywords need to be chosen at all); a name built from keywords follows them;
    a name a namer gave is replaced by the keyword name when it uses a word only the
    member's messages supported. Their messages leave the samples (and the medoid).

    Args:
        topic: The topic as stored.
        erased_terms: :func:`texts_terms` of the member's texts.
        remaining_texts: Texts of the topic's messages by other members.
        erased_messages: Ids of the member's messages.
    """
    support = Counter(
        term for text in remaining_texts for term in set(terms(text)) if term in erased_terms
    )

    def kept(term: str) -> bool:
        return term not in erased_terms or support[term] >= 2

    keywords = [keyword for keyword in topic.keywords if kept(keyword)]
    name, named_by = topic.name, topic.named_by
    if topic.is_other:
        pass
    elif named_by is TopicNaming.KEYWORDS:
        if keywords != topic.keywords:
            name = keyword_name(keywords)
    elif not all(kept(word) for word in tokens(topic.name) if word):
        name, named_by = keyword_name(keywords), TopicNaming.KEYWORDS
    samples = [sample for sample in topic.sample_ids if sample not in erased_messages]
    medoid = topic.medoid_id
    if medoid in erased_messages:
        medoid = samples[0] if samples else None
    if (keywords, name, named_by, samples, medoid) == (
        topic.keywords,
        topic.name,
        topic.named_by,
        topic.sample_ids,
        topic.medoid_id,
    ):
        return None
    return topic.model_copy(
        update={
            "keywords": keywords,
            "name": name,
            "named_by": named_by,
            "sample_ids": samples,
            "medoid_id": medoid,
        }
    )


def llm_cache_inputs(
    own: Sequence[AuthoredText], parents: Mapping[str, str], replies: Sequence[tuple[str, str]]
) -> list[tuple[str, str | None]]:
    """The (text, replied-to text) pairs an LLM answer about the member's words was cached
    under: their messages alone and with what they answer, and replies to them.

    Args:
        own: The member's messages.
        parents: Texts of the messages they replied to, by id.
        replies: ``(text, parent id)`` of messages replying to theirs.
    """
    pairs: list[tuple[str, str | None]] = []
    texts = {message.message_id: message.text for message in own}
    for message in own:
        if not message.text.strip():
            continue
        pairs.append((message.text, None))
        parent = parents.get(message.reply_to_id or "") or texts.get(message.reply_to_id or "")
        if parent:
            pairs.append((message.text, parent))
    for text, parent_id in replies:
        if text.strip() and texts.get(parent_id):
            pairs.append((text, texts[parent_id]))
    return pairs
