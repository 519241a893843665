"""The Lore Keeper's LLM writer: the extractive digest told in prose, every citation checked.

The extractive digest chooses what to tell; the model only tells it. Each extractive
statement becomes a group of the prompt (its section, its note and the messages it cites,
under short aliases ``m1``, ``m2``…), and the model writes one statement per group,
citing the aliases it drew from. Aliases are mapped back to normalized message ids and
every citation is checked: the message must be one of the period's, written inside
``[period_start, period_end)``, and one of those the model was shown. A statement that
cites nothing or anything else is rejected; the rejected groups are asked once more with
the reasons listed, and what is still wrong is dropped. A section the model could not
write at all keeps its extractive statements, and when the model cannot be reached or
does not answer in the expected JSON, the extractive digest is published as it is.

Members who turned ``ai_processing`` off never have their messages sent: a statement
citing any of them is left out of the prompt and stays extractive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from openai import AsyncOpenAI
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, Field, ValidationError

from pepite_digest.consent import ConsentRepository
from pepite_digest.lore import excerpt
from pepite_digest.repository import PeriodMessage
from pepite_digest.settings import DigestWriterName, Settings
from pepite_kit import Database
from pepite_kit.metrics import LLM_COST_USD, LLM_FALLBACKS, LLM_TOKENS
from pepite_llm.client import ChatCaller, ChatReply, openai_client
from pepite_llm.errors import LlmUnavailableError
from pepite_llm.pricing import ModelPrice, model_price
from pepite_llm.usage import UsageDelta, UsageRepository, estimated_tokens, month_of
from pepite_reports.digests.models import Digest, Section, SectionKind, Statement

logger = logging.getLogger(__name__)

#: Name of the answer's JSON schema (the fake server answers by it, too).
SCHEMA_NAME = "digest_statements"

SYSTEM_PROMPT = """\
You write the digest of an online community's period for its members, from notes drawn \
from its messages. Each input group is one thing to tell: its section, the ids of its \
messages, and a note with the facts (names, channels, counts, quotes). Write one \
statement per group: one or two plain, friendly sentences saying what happened, in the \
language of the messages. Keep the note's names and numbers; invent nothing; never \
repeat spam or insults. In c, cite the ids (m1, m2…) of the messages the statement is \
drawn from: at least one, only ids listed in that group. Return r: one item per group, \
g=group number, t=statement, c=cited ids."""

#: Answer tokens one statement needs, JSON included; sets each call's ceiling.
_TOKENS_PER_STATEMENT = 120
_TOKENS_OVERHEAD = 100
_ALIAS_PREFIX = "m"


class DigestWriter(Protocol):
    """Rewrites a digest; returns it unchanged when it cannot do better."""

    async def write(self, digest: Digest, messages: Sequence[PeriodMessage]) -> Digest: ...

    async def aclose(self) -> None: ...


# ----- the answer -----
class WrittenStatement(BaseModel):
    """One statement as the model writes it."""

    group: int = Field(alias="g")
    text: str = Field(alias="t")
    cites: list[str] = Field(alias="c")


class WrittenDigest(BaseModel):
    statements: list[WrittenStatement] = Field(alias="r")


def statements_response_format() -> ResponseFormatJSONSchema:
    """``response_format`` of a digest call: strict structured output."""
    item: dict[str, object] = {
        "type": "object",
        "properties": {
            "g": {"type": "integer"},
            "t": {"type": "string"},
            "c": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["g", "t", "c"],
        "additionalProperties": False,
    }
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"r": {"type": "array", "items": item}},
        "required": ["r"],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema},
    }


# ----- the question -----
@dataclass(frozen=True)
class Group:
    """One extractive statement, as the model is asked to rewrite it."""

    number: int
    section: SectionKind
    statement: Statement
    #: A member who opted out of AI processing is cited: never sent, stays extractive.
    private: bool


@dataclass
class Prompt:
    """The groups of one digest and the aliases of the messages they cite."""

    groups: list[Group]
    #: Alias (``m1``…) to normalized message id, for the messages that may be sent.
    ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, digest: Digest, withheld: set[str]) -> Prompt:
        """Number every statement of ``digest``; alias the messages of those that can be sent.

        Args:
            digest: the extractive digest.
            withheld: ids of the messages that must not be sent.
        """
        prompt = cls([])
        aliases: dict[str, str] = {}
        for section in digest.sections:
            for statement in section.statements:
                private = bool(withheld.intersection(statement.message_ids))
                number = len(prompt.groups) + 1
                prompt.groups.append(Group(number, section.kind, statement, private))
                if private:
                    continue
                for message_id in statement.message_ids:
                    if message_id not in aliases:
                        aliases[message_id] = f"{_ALIAS_PREFIX}{len(aliases) + 1}"
                        prompt.ids[aliases[message_id]] = message_id
        return prompt

    @property
    def sendable(self) -> list[Group]:
        return [g for g in self.groups if not g.private]

    def render(
        self,
        groups: Sequence[Group],
        by_id: dict[str, PeriodMessage],
        *,
        heading: str,
        zone: ZoneInfo,
        text_chars: int,
    ) -> str:
        """The user message: the period, the messages ``groups`` cite, then the groups."""
        alias_of = {message_id: alias for alias, message_id in self.ids.items()}
        cited = list(dict.fromkeys(i for g in groups for i in g.statement.message_ids))
        lines = [heading, "Messages:"]
        for message_id in cited:
            m = by_id[message_id]
            when = m.created_at.astimezone(zone)
            lines.append(
                f"{alias_of[message_id]} #{m.channel_name} {m.author_name}, "
                f"{when:%a %H:%M}: {excerpt(m.text, text_chars)}"
            )
        lines.append("Groups:")
        for group in groups:
            aliases = " ".join(alias_of[i] for i in group.statement.message_ids)
            note = " ".join(group.statement.text.split())
            lines.append(f"g{group.number} {group.section.value} | {aliases} | {note}")
        return "\n".join(lines)


# ----- checking -----
@dataclass(frozen=True)
class Citations:
    """What a citation may point to: the period's messages, those shown, the period."""

    by_id: dict[str, PeriodMessage]
    shown: dict[str, str]
    start: datetime
    end: datetime

    def resolve(self, cited: str) -> str:
        """The normalized id of an alias; anything else is taken as a normalized id."""
        cited = cited.strip()
        return self.shown.get(cited, cited)

    def problems(self, written: WrittenStatement) -> list[str]:
        """Why the statement cannot be published; empty when it can."""
        if not written.text.strip():
            return ["it is empty"]
        if not written.cites:
            return ["it cites no message"]
        shown = set(self.shown.values())
        found = []
        for cited in written.cites:
            message = self.by_id.get(self.resolve(cited))
            if message is None:
                found.append(f"it cites {cited}, which is no message of this period")
            elif not self.start <= message.created_at < self.end:
                found.append(f"it cites {cited}, which was written outside the period")
            elif message.message_id not in shown:
                found.append(f"it cites {cited}, which is not one of the messages given")
        return found


@dataclass
class Outcome:
    """What the model made of each group so far."""

    written: dict[int, list[Statement]] = field(default_factory=dict)
    rejected: dict[int, list[str]] = field(default_factory=dict)

    def pending(self, groups: Iterable[Group]) -> list[Group]:
        """Groups without a publishable statement yet."""
        return [g for g in groups if g.number not in self.written]

    def record(self, groups: Sequence[Group], answer: WrittenDigest, check: Citations) -> None:
        asked = {g.number for g in groups}
        for item in answer.statements:
            if item.group not in asked:
                continue
            problems = check.problems(item)
            if problems:
                self.rejected.setdefault(item.group, []).extend(problems)
                continue
            ids = list(dict.fromkeys(check.resolve(c) for c in item.cites))
            self.written.setdefault(item.group, []).append(
                Statement(text=" ".join(item.text.split()), message_ids=ids)
            )
        for number in asked:
            if number in self.written:
                self.rejected.pop(number, None)


def rejection_note(groups: Sequence[Group], outcome: Outcome) -> str:
    """Why the last statements of ``groups`` were refused, for the model's second try."""
    lines = ["Your previous statements for these groups were rejected:"]
    for group in groups:
        reasons = outcome.rejected.get(group.number) or ["it was not written"]
        lines.append(f"- g{group.number}: {'; '.join(dict.fromkeys(reasons))}")
    lines.append("Write them again, citing only the ids listed in each group.")
    return "\n".join(lines)


def assemble(digest: Digest, prompt: Prompt, outcome: Outcome) -> list[Section]:
    """The digest's sections with the model's statements where it wrote valid ones.

    A group with a valid statement gets it; a group whose statements were all refused is
    dropped; a group the model never wrote, or could not be sent, keeps its extractive
    statement; a section without a single valid statement stays wholly extractive.
    """
    by_section: dict[SectionKind, list[Group]] = {}
    for group in prompt.groups:
        by_section.setdefault(group.section, []).append(group)
    sections = []
    for section in digest.sections:
        groups = by_section.get(section.kind, [])
        if not any(g.number in outcome.written for g in groups):
            sections.append(section)
            continue
        statements: list[Statement] = []
        for group in groups:
            if group.number in outcome.written:
                statements.extend(outcome.written[group.number])
            elif group.private or group.number not in outcome.rejected:
                statements.append(group.statement)
        sections.append(section.model_copy(update={"statements": statements}))
    return sections


# ----- the writer -----
class LlmDigestWriter:
    """Has an OpenAI-compatible model write a digest's statements, checked as above.

    Every call is booked to the community's month of LLM usage, and none is made that
    would take the community past its monthly budget: the digest then stays extractive.

    Raises:
        LlmConfigError: the model has no price (its cost could not be accounted).
    """

    def __init__(
        self,
        caller: ChatCaller,
        consent: ConsentRepository,
        usage: UsageRepository,
        *,
        price: ModelPrice,
        budget_usd: Callable[[str], float],
        text_chars: int = 400,
        max_completion_tokens: int = 4000,
        client: AsyncOpenAI | None = None,
    ) -> None:
        self._caller = caller
        self._consent = consent
        self._usage = usage
        self._price = price
        self._budget_usd = budget_usd
        self._text_chars = text_chars
        self._max_completion_tokens = max_completion_tokens
        self._client = client

    @property
    def model(self) -> str:
        return self._caller.model

    async def write(self, digest: Digest, messages: Sequence[PeriodMessage]) -> Digest:
        """``digest`` in the model's words; unchanged when the model could not write it.

        Args:
            digest: the extractive digest of the period.
            messages: the period's messages (every citation must be one of them).
        """
        by_id = {m.message_id: m for m in messages}
        cited = digest.cited_ids()
        missing = cited - by_id.keys()
        if missing:
            # The extractive digest cites only the period's messages: a gap is a bug upstream.
            raise ValueError(f"digest {digest.digest_id} cites unknown messages: {sorted(missing)}")
        opted_out = await self._opted_out({by_id[i].author_id for i in cited})
        prompt = Prompt.of(digest, {i for i in cited if by_id[i].author_id in opted_out})
        if not prompt.sendable:
            return digest
        check = Citations(by_id, prompt.ids, digest.period_start, digest.period_end)
        zone = ZoneInfo(digest.timezone)
        heading = f"{digest.title} ({digest.timezone})"
        outcome = Outcome()
        pending = prompt.sendable
        for attempt in (1, 2):
            user = prompt.render(
                pending, by_id, heading=heading, zone=zone, text_chars=self._text_chars
            )
            if attempt > 1:
                user += "\n" + rejection_note(pending, outcome)
            if not await self._affordable(digest.community_id, user, len(pending)):
                if attempt == 1:
                    return digest
                break
            try:
                answer = await self._ask(digest.community_id, user, len(pending))
            except LlmUnavailableError as exc:
                if attempt == 1:
                    logger.warning(
                        "digest kept extractive: the LLM could not write it",
                        extra={"digest_id": digest.digest_id, "error": str(exc)},
                    )
                    return digest
                logger.warning(
                    "digest rewrite not retried: the LLM could not answer",
                    extra={"digest_id": digest.digest_id, "error": str(exc)},
                )
                break
            outcome.record(pending, answer, check)
            pending = outcome.pending(pending)
            if not pending:
                break
        if pending:
            logger.info(
                "digest statements dropped or kept extractive after a second try",
                extra={
                    "digest_id": digest.digest_id,
                    "groups": [g.number for g in pending],
                    "rejections": {str(k): v for k, v in outcome.rejected.items()},
                },
            )
        if not outcome.written:
            return digest
        sections = assemble(digest, prompt, outcome)
        kept = {i for s in sections for st in s.statements for i in st.message_ids}
        return digest.model_copy(
            update={
                "writer": self.model,
                "sections": sections,
                "sources": [s for s in digest.sources if s.message_id in kept],
            }
        )

    async def aclose(self) -> None:
        """Close the HTTP client, when this writer made it."""
        if self._client is not None:
            await self._client.close()

    async def _opted_out(self, member_ids: Iterable[str]) -> set[str]:
        """Those of ``member_ids`` whose messages must not reach a remote model."""
        opted_out = set()
        for member_id in sorted(member_ids):
            if not (await self._consent.flags(member_id)).ai_processing:
                opted_out.add(member_id)
        return opted_out

    def _completion_limit(self, groups: int) -> int:
        return min(self._max_completion_tokens, _TOKENS_PER_STATEMENT * groups + _TOKENS_OVERHEAD)

    async def _affordable(self, community_id: str, user: str, groups: int) -> bool:
        """Whether the call fits in what is left of the community's monthly budget."""
        estimate = self._price.cost_usd(
            estimated_tokens(SYSTEM_PROMPT, user), self._completion_limit(groups)
        )
        month = month_of(datetime.now(UTC))
        spent = await self._usage.spent_usd(community_id, month)
        if spent + estimate <= self._budget_usd(community_id):
            return True
        logger.warning(
            "digest kept extractive: the monthly LLM budget would be passed",
            extra={"community_id": community_id, "month": month, "spent_usd": spent},
        )
        LLM_FALLBACKS.labels(reason="budget").inc()
        await self._usage.add_usage(community_id, month, UsageDelta(digests_over_budget=1))
        return False

    async def _ask(self, community_id: str, user: str, groups: int) -> WrittenDigest:
        """One call, accounted; its answer read.

        Raises:
            LlmUnavailableError: no answer, or not the expected JSON.
        """
        limit = self._completion_limit(groups)
        try:
            reply = await self._caller.complete(
                system=SYSTEM_PROMPT,
                user=user,
                response_format=statements_response_format(),
                max_completion_tokens=limit,
            )
        except LlmUnavailableError:
            await self._book(community_id, UsageDelta(digest_calls=1, failed_calls=1))
            raise
        self._account(reply)
        await self._book(
            community_id,
            UsageDelta(
                calls=1,
                digest_calls=1,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                cost_usd=self._price.cost_usd(reply.prompt_tokens, reply.completion_tokens),
            ),
        )
        if reply.finish_reason == "length":
            raise LlmUnavailableError(f"the answer was cut at {limit} tokens")
        try:
            return WrittenDigest.model_validate_json(reply.content or "")
        except ValidationError as exc:
            raise LlmUnavailableError(f"not the expected JSON: {exc.errors()[0]['msg']}") from exc

    async def _book(self, community_id: str, delta: UsageDelta) -> None:
        await self._usage.add_usage(community_id, month_of(datetime.now(UTC)), delta)

    def _account(self, reply: ChatReply) -> None:
        model = self.model
        LLM_TOKENS.labels(model=model, kind="prompt").inc(reply.prompt_tokens)
        LLM_TOKENS.labels(model=model, kind="completion").inc(reply.completion_tokens)
        LLM_COST_USD.labels(model=model).inc(
            self._price.cost_usd(reply.prompt_tokens, reply.completion_tokens)
        )


def build_writer(settings: Settings, db: Database) -> LlmDigestWriter | None:
    """The writer ``PEPITE_DIGEST_WRITER`` asks for; None for the extractive digest.

    Raises:
        LlmConfigError: the server, key or the model's price is missing.
    """
    if settings.digest_writer is DigestWriterName.EXTRACTIVE:
        return None
    settings.require_server(f"PEPITE_DIGEST_WRITER={settings.digest_writer.value}")
    price = model_price(settings.llm_prices, settings.openai_model)
    client = openai_client(
        settings.openai_base_url, settings.api_key(), timeout_s=settings.openai_timeout_s
    )
    return LlmDigestWriter(
        ChatCaller(client, model=settings.openai_model, policy=settings.retry_policy()),
        ConsentRepository(db),
        UsageRepository(db),
        price=price,
        budget_usd=settings.llm_budget_usd,
        text_chars=settings.digest_llm_text_chars,
        max_completion_tokens=settings.digest_llm_max_completion_tokens,
        client=client,
    )
