"""The FAQ answerer: ask the community's knowledge base, and curate its entries.

Answers come from question → accepted answer pairs mined from the messages (by the
digest service) and from entries the team writes here. Below the confidence threshold
the reply says a human will follow up, and ``alert.raised`` (kind ``needs_human``) goes
out so that someone does.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pepite_api.deps import ApiState, DbDep, PublisherDep, ReadKey, StateDep, WriteKey
from pepite_api.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
)
from pepite_api.problems import COMMON_RESPONSES, ProblemError
from pepite_api.routes.communities import CommunityIdPath
from pepite_api.settings import Settings
from pepite_contracts import (
    AlertNotice,
    AlertRaised,
    Topic,
    deterministic_event_id,
    encode_event,
)
from pepite_embeddings import Embedder
from pepite_kit import EventPublisher
from pepite_knowledge import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    CalibrationRepository,
    CurveUsed,
    EntryChannel,
    EntryOrigin,
    KnowledgeBase,
    KnowledgeEntry,
    KnowledgeRepository,
    Reply,
    Source,
)

router = APIRouter(
    prefix="/v1/communities/{community_id}", tags=["knowledge"], responses=COMMON_RESPONSES
)

EntryIdPath = Annotated[str, Path(min_length=3, max_length=300)]
NEEDS_HUMAN = "needs_human"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value.strip()


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)

    _question = field_validator("question")(_not_blank)


class AnswerSource(BaseModel):
    """An entry the answer rests on, and the messages it was mined from (if any)."""

    entry_id: str
    origin: EntryOrigin
    question_message_id: str | None
    answer_message_id: str | None
    channel: EntryChannel | None
    question: str = Field(description="Excerpt of the entry's question.")
    answer: str = Field(description="Excerpt of the entry's answer.")
    score: float


class AskReply(BaseModel):
    answered: bool = Field(description="False when a human will follow up instead.")
    answer: str
    confidence: float = Field(ge=0, le=1, description="Estimated chance the answer is right.")
    threshold: float = Field(description="Confidence needed to answer.")
    calibration: CurveUsed = Field(
        default="default",
        description=(
            "The curve that gave the confidence: the community's own, fitted by "
            "`pepite knowledge calibrate` (mined entries only), or the default one."
        ),
    )
    sources: list[AnswerSource]
    alert_id: str | None = Field(
        default=None, description="The needs_human alert raised when not answered."
    )


class EntryInput(BaseModel):
    """A curated entry: a question and the answer the team gives to it."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    channel: EntryChannel | None = None

    _texts = field_validator("question", "answer")(_not_blank)


class Entry(BaseModel):
    """An entry of the knowledge base as the API shows it."""

    entry_id: str
    origin: EntryOrigin
    question: str
    answer: str
    question_message_id: str | None
    answer_message_id: str | None
    channel: EntryChannel | None
    thanked: bool
    reactions: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, entry: KnowledgeEntry) -> Entry:
        return cls(
            entry_id=entry.entry_id,
            origin=entry.origin,
            question=entry.question,
            answer=entry.answer,
            question_message_id=entry.question_message_id,
            answer_message_id=entry.answer_message_id,
            channel=entry.channel,
            thanked=entry.signals.thanked,
            reactions=entry.signals.reactions,
            created_at=entry.created_at,
            updated_at=entry.updated_at,
        )


def new_knowledge_base(state: ApiState) -> KnowledgeBase:
    """The knowledge base the routes answer from (one per process: it caches indexes)."""
    return KnowledgeBase(
        KnowledgeRepository(state.db),
        Embedder(),
        threshold=state.settings.knowledge_confidence_threshold,
        calibrations=CalibrationRepository(state.db),
    )


def knowledge_base(request: Request, state: StateDep) -> KnowledgeBase:
    """The app's knowledge base (made at start-up by the app, or here on first use)."""
    knowledge: KnowledgeBase | None = getattr(request.app.state, "knowledge", None)
    if knowledge is None:
        knowledge = new_knowledge_base(state)
        request.app.state.knowledge = knowledge
    return knowledge


def _stored_precision(moment: datetime) -> datetime:
    """``moment`` as MongoDB keeps it (milliseconds), so what is returned is what is read."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _source(source: Source) -> AnswerSource:
    return AnswerSource(
        entry_id=source.entry_id,
        origin=source.origin,
        question_message_id=source.question_message_id,
        answer_message_id=source.answer_message_id,
        channel=source.channel,
        question=source.question,
        answer=source.answer,
        score=source.score,
    )


async def raise_needs_human(
    publisher: EventPublisher, settings: Settings, community_id: str, question: str, reply: Reply
) -> str:
    """Announce that a question needs a human; asking it again is the same alert."""
    normalized = " ".join(question.lower().split())
    digest = hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
    alert_id = f"{NEEDS_HUMAN}:{community_id}:{digest}"
    event = AlertRaised(
        event_id=deterministic_event_id("alert.raised", NEEDS_HUMAN, community_id, normalized),
        community_id=community_id,
        payload=AlertNotice(
            alert_id=alert_id,
            kind=NEEDS_HUMAN,
            severity="info",
            title="A question needs a human answer",
            detail=question[:500],
            channel=None,
            metrics={"confidence": reply.confidence},
        ),
    )
    await publisher.send(
        settings.topic_name(Topic.NOTIFICATIONS), encode_event(event), key=community_id.encode()
    )
    await publisher.flush()
    return alert_id


@router.post("/ask", response_model=AskReply)
async def ask(
    *,
    community_id: CommunityIdPath,
    body: AskRequest,
    _: ReadKey,
    request: Request,
    state: StateDep,
    publisher: PublisherDep,
) -> AskReply:
    """Answer a question from the knowledge base, with its sources and a confidence.

    Below the confidence threshold the answer says a human will follow up, and an
    ``alert.raised`` of kind ``needs_human`` is sent (once per question and community).
    """
    knowledge = knowledge_base(request, state)
    reply = await knowledge.ask(community_id, body.question)
    alert_id = None
    if not reply.answered:
        alert_id = await raise_needs_human(
            publisher, state.settings, community_id, body.question, reply
        )
    return AskReply(
        answered=reply.answered,
        answer=reply.answer,
        confidence=reply.confidence,
        threshold=state.settings.knowledge_confidence_threshold,
        calibration=reply.calibration,
        sources=[_source(s) for s in reply.sources],
        alert_id=alert_id,
    )


@router.get("/knowledge", response_model=Page[Entry])
async def list_entries(
    *,
    community_id: CommunityIdPath,
    _: ReadKey,
    db: DbDep,
    origin: Annotated[EntryOrigin | None, Query(description="Only these entries.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Entry]:
    """The knowledge base's entries, newest first (mined and curated, or one origin)."""
    after = decode_cursor(cursor, datetime, str) if cursor else None
    entries = await KnowledgeRepository(db).page(
        community_id,
        origin=origin,
        limit=limit + 1,
        after=(after[0], after[1]) if after else None,
    )
    return page_of(
        [Entry.of(e) for e in entries], limit, lambda e: encode_cursor(e.created_at, e.entry_id)
    )


@router.get("/knowledge/{entry_id}", response_model=Entry)
async def get_entry(
    community_id: CommunityIdPath, entry_id: EntryIdPath, _: ReadKey, db: DbDep
) -> Entry:
    """One entry."""
    entry = await KnowledgeRepository(db).get(community_id, entry_id)
    if entry is None:
        raise ProblemError(404, f"no knowledge entry {entry_id!r} in community {community_id!r}")
    return Entry.of(entry)


@router.post("/knowledge", response_model=Entry, status_code=201)
async def create_entry(
    *,
    community_id: CommunityIdPath,
    body: EntryInput,
    _: WriteKey,
    request: Request,
    state: StateDep,
) -> Entry:
    """Add a curated entry; /ask uses it at once."""
    knowledge = knowledge_base(request, state)
    now = _stored_precision(datetime.now(UTC))
    entry = KnowledgeEntry(
        entry_id=f"curated:{uuid.uuid4().hex}",
        community_id=community_id,
        origin=EntryOrigin.CURATED,
        question=body.question,
        answer=body.answer,
        channel=body.channel,
        created_at=now,
        updated_at=now,
    )
    vectors = await knowledge.embed_entry(entry)
    await KnowledgeRepository(state.db).upsert([(entry, vectors)])
    return Entry.of(entry)


@router.put("/knowledge/{entry_id}", response_model=Entry)
async def replace_entry(
    *,
    community_id: CommunityIdPath,
    entry_id: EntryIdPath,
    body: EntryInput,
    _: WriteKey,
    request: Request,
    state: StateDep,
) -> Entry:
    """Replace a curated entry's question and answer (mined ones follow their messages)."""
    repository = KnowledgeRepository(state.db)
    current = await repository.get(community_id, entry_id)
    if current is None:
        raise ProblemError(404, f"no knowledge entry {entry_id!r} in community {community_id!r}")
    if current.origin is not EntryOrigin.CURATED:
        raise ProblemError(
            409,
            f"entry {entry_id!r} was mined from messages: add a curated entry instead "
            "(or delete this one)",
        )
    replacement = current.model_copy(
        update={
            "question": body.question,
            "answer": body.answer,
            "channel": body.channel,
            "updated_at": _stored_precision(datetime.now(UTC)),
        }
    )
    vectors = await knowledge_base(request, state).embed_entry(replacement)
    replaced = await repository.replace_curated(replacement, vectors)
    if replaced is None:
        raise ProblemError(404, f"no knowledge entry {entry_id!r} in community {community_id!r}")
    return Entry.of(replaced)


@router.delete("/knowledge/{entry_id}", status_code=204)
async def delete_entry(
    community_id: CommunityIdPath, entry_id: EntryIdPath, _: WriteKey, db: DbDep
) -> None:
    """Delete an entry."""
    if not await KnowledgeRepository(db).delete(community_id, entry_id):
        raise ProblemError(404, f"no knowledge entry {entry_id!r} in community {community_id!r}")
