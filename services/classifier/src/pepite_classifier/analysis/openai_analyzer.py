"""The OpenAI-compatible analyzer: batched structured outputs, cached, accounted, capped.

Per call of :meth:`OpenAIAnalyzer.analyze`:

1. Messages whose author opted out of AI processing, bots' messages and empty texts go
   to the local analyzer: the first are never sent anywhere, the others are not worth
   paying for. (A request's context is sent with it: whoever builds requests leaves
   out the texts of opted-out members there.)
2. The others are looked up in the answer cache (same model, prompt, text and context:
   same answer), and identical messages of the call are sent once.
3. What is left is sent per community, ``llm_batch_size`` messages per call, a few calls
   at once, each after a check that the community's monthly budget allows it.
4. Answers are checked item by item; ids without a valid item are asked again a bounded
   number of times. A batch the model cannot label (malformed answers, retries spent,
   budget reached) is analyzed locally: the consumer never fails because of the LLM.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openai import AsyncOpenAI

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest, Analyzer
from pepite_classifier.analysis.llm.prompt import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    PromptMessage,
    max_completion_tokens,
    render_batch,
)
from pepite_classifier.analysis.llm.schema import (
    Label,
    labels_response_format,
    parse_items,
    to_analysis,
)
from pepite_classifier.analysis.llm_repository import LlmRepository, UsageDelta, month_of
from pepite_classifier.settings import Settings
from pepite_contracts import Analysis, AnalyzerName
from pepite_kit.metrics import LLM_CACHE_HITS, LLM_COST_USD, LLM_FALLBACKS, LLM_TOKENS
from pepite_llm.client import ChatCaller, RetryPolicy, openai_client
from pepite_llm.errors import LlmUnavailableError
from pepite_llm.pricing import model_price
from pepite_llm.usage import ESTIMATE_CHARS_PER_TOKEN

logger = logging.getLogger(__name__)


# Why a message was analyzed locally: names of UsageDelta counters.
_OPT_OUT = "local_opt_out"
_SKIPPED = "local_skipped"
_BUDGET = "local_budget"
_FAILURE = "local_failure"
_CACHE_HIT = "cache_hits"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Unanswered:
    """A distinct message to send, and the requests of the call that share its answer."""

    key: str
    message: PromptMessage
    community_id: str
    indexes: list[int] = field(default_factory=list)


@dataclass
class _BatchResult:
    answered: dict[str, Analysis]
    #: What the model did not label, and the counter saying why.
    leftover: list[_Unanswered]
    reason: str = _FAILURE


class OpenAIAnalyzer:
    """Labels messages with a model behind an OpenAI-compatible chat-completions API.

    Args:
        settings: the classifier's settings (model, batch size, retries, prices, budgets).
        repository: the answer cache and usage counters.
        fallback: analyzes what must not or could not be sent; it belongs to the caller,
            which closes it.
        client: an SDK client to use instead of one built from the settings.
        clock: the current time, which decides the month a cost is booked in.

    Raises:
        LlmConfigError: the base URL or key is missing, or the model has no price.
    """

    name = AnalyzerName.OPENAI

    def __init__(
        self,
        settings: Settings,
        repository: LlmRepository,
        fallback: Analyzer,
        *,
        client: AsyncOpenAI | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._model = settings.openai_model
        self._price = model_price(settings.llm_prices, self._model)
        self._repository = repository
        self._fallback = fallback
        self._clock = clock
        api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._client = client or openai_client(
            settings.openai_base_url, api_key, timeout_s=settings.openai_timeout_s
        )
        self._caller = ChatCaller(
            self._client,
            model=self._model,
            policy=RetryPolicy(
                max_attempts=settings.openai_max_attempts,
                backoff_s=settings.openai_backoff_s,
                backoff_max_s=settings.openai_backoff_max_s,
                retry_after_max_s=settings.openai_retry_after_max_s,
            ),
        )
        self._response_format = labels_response_format()
        self._fixed_prompt_chars = len(SYSTEM_PROMPT) + len(json.dumps(self._response_format))
        self._calls = asyncio.Semaphore(settings.openai_concurrency)
        # Check-then-reserve must be atomic, or concurrent calls would all pass the check.
        self._budget_lock = asyncio.Lock()
        self._reserved: dict[str, float] = {}
        self._budget_logged: set[tuple[str, str]] = set()

    @property
    def model(self) -> str:
        return self._model

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        """Analyze every request, with the model where allowed and worth it, else locally.

        Raises:
            AnalyzerUnavailableError: the fallback analyzer could not answer.
        """
        outcomes: list[AnalysisOutcome | None] = [None] * len(requests)
        counters: dict[str, Counter[str]] = {}
        local: dict[int, str] = {}
        unanswered: dict[str, _Unanswered] = {}
        for index, request in enumerate(requests):
            reason = _local_reason(request)
            if reason is not None:
                local[index] = reason
                continue
            message = PromptMessage.of(
                request.text,
                request.context,
                text_chars=self._settings.llm_text_chars,
                context_chars=self._settings.llm_context_chars,
            )
            key = message.cache_key(self._model)
            entry = unanswered.setdefault(key, _Unanswered(key, message, request.community_id))
            entry.indexes.append(index)

        cached = await self._repository.cached(unanswered.keys())
        for key, analysis in cached.items():
            self._answer(unanswered.pop(key), analysis, outcomes, requests, counters, fresh=False)

        for result in await self._label_all(list(unanswered.values())):
            for entry in result.leftover:
                local.update(dict.fromkeys(entry.indexes, result.reason))
            for key, analysis in result.answered.items():
                self._answer(unanswered[key], analysis, outcomes, requests, counters, fresh=True)

        if local:
            indexes = sorted(local)
            analyzed = await self._fallback.analyze([requests[i] for i in indexes])
            for index, outcome in zip(indexes, analyzed, strict=True):
                outcomes[index] = outcome
                _count(counters, requests[index].community_id, local[index])

        month = month_of(self._clock())
        for community_id, counts in counters.items():
            await self._repository.add_usage(community_id, month, UsageDelta(**counts))
        answered = [outcome for outcome in outcomes if outcome is not None]
        if len(answered) != len(requests):
            raise RuntimeError("a request was left without an outcome")
        return answered

    async def aclose(self) -> None:
        """Close the HTTP client (the fallback is closed by whoever created it)."""
        await self._client.close()

    def _answer(
        self,
        entry: _Unanswered,
        analysis: Analysis,
        outcomes: list[AnalysisOutcome | None],
        requests: Sequence[AnalysisRequest],
        counters: dict[str, Counter[str]],
        *,
        fresh: bool,
    ) -> None:
        """Give one answer to every request sharing it.

        A fresh answer was paid for by its first request; every other request got it free.
        """
        outcome = AnalysisOutcome(analysis)
        for index in entry.indexes:
            outcomes[index] = outcome
        reused = entry.indexes[1:] if fresh else entry.indexes
        for index in reused:
            _count(counters, requests[index].community_id, _CACHE_HIT)

    async def _label_all(self, entries: list[_Unanswered]) -> list[_BatchResult]:
        """Label entries a community and ``llm_batch_size`` at a time, calls overlapping."""
        by_community: dict[str, list[_Unanswered]] = {}
        for entry in entries:
            by_community.setdefault(entry.community_id, []).append(entry)
        size = self._settings.llm_batch_size
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._label_batch(community_id, batch[start : start + size]))
                for community_id, batch in by_community.items()
                for start in range(0, len(batch), size)
            ]
        return [task.result() for task in tasks]

    async def _label_batch(self, community_id: str, batch: list[_Unanswered]) -> _BatchResult:
        """One batch: call, keep valid labels, ask again for the rest, a bounded number of times."""
        answered: dict[str, Analysis] = {}
        remaining = batch
        for _ in range(self._settings.llm_invalid_attempts):
            user = render_batch([entry.message for entry in remaining])
            limit = max_completion_tokens(len(remaining))
            estimate = self._estimate_usd(user, limit)
            month = month_of(self._clock())
            async with self._calls:
                if not await self._reserve(community_id, month, estimate):
                    return _BatchResult(answered, remaining, _BUDGET)
                try:
                    new = await self._call(community_id, month, remaining, user, limit)
                except LlmUnavailableError as exc:
                    logger.warning(
                        "LLM unavailable, analyzing the batch locally",
                        extra={
                            "community_id": community_id,
                            "messages": len(remaining),
                            "error": str(exc),
                        },
                    )
                    return _BatchResult(answered, remaining, _FAILURE)
                finally:
                    self._release(community_id, estimate)
            answered.update(new)
            remaining = [entry for entry in remaining if entry.key not in new]
            if not remaining:
                break
        if remaining:
            logger.warning(
                "LLM answers stayed incomplete, analyzing the rest locally",
                extra={"community_id": community_id, "messages": len(remaining)},
            )
        return _BatchResult(answered, remaining, _FAILURE)

    async def _call(
        self,
        community_id: str,
        month: str,
        batch: list[_Unanswered],
        user: str,
        limit: int,
    ) -> dict[str, Analysis]:
        """One call; its cost is booked even when its answer is unusable (it was paid for)."""
        try:
            reply = await self._caller.complete(
                system=SYSTEM_PROMPT,
                user=user,
                response_format=self._response_format,
                max_completion_tokens=limit,
            )
        except LlmUnavailableError:
            await self._repository.add_usage(community_id, month, UsageDelta(failed_calls=1))
            raise
        by_id = dict(enumerate(batch, start=1))
        parsed = parse_items(reply.content, Label, by_id.keys())
        new = {by_id[i].key: to_analysis(label, self._model) for i, label in parsed.items.items()}
        if parsed.problem is not None:
            logger.warning(
                "LLM answer unusable in part",
                extra={
                    "community_id": community_id,
                    "problem": parsed.problem,
                    "finish_reason": reply.finish_reason,
                },
            )
        await self._repository.store(new, prompt_version=PROMPT_VERSION)
        cost = self._price.cost_usd(reply.prompt_tokens, reply.completion_tokens)
        LLM_TOKENS.labels(model=self._model, kind="prompt").inc(reply.prompt_tokens)
        LLM_TOKENS.labels(model=self._model, kind="completion").inc(reply.completion_tokens)
        LLM_COST_USD.labels(model=self._model).inc(cost)
        await self._repository.add_usage(
            community_id,
            month,
            UsageDelta(
                calls=1,
                messages_sent=len(batch),
                messages=len(new),
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                cost_usd=cost,
                invalid_answers=int(parsed.problem is not None),
            ),
        )
        return new

    def _estimate_usd(self, user: str, completion_limit: int) -> float:
        """An upper estimate of a call's cost: prompt by length, the answer at its ceiling."""
        prompt_tokens = (self._fixed_prompt_chars + len(user)) // ESTIMATE_CHARS_PER_TOKEN
        return self._price.cost_usd(prompt_tokens, completion_limit)

    async def _reserve(self, community_id: str, month: str, estimate: float) -> bool:
        """Whether the community can afford a call, counting calls in flight; book it if so."""
        async with self._budget_lock:
            budget = self._settings.llm_budget_usd(community_id)
            spent = await self._repository.spent_usd(community_id, month)
            reserved = self._reserved.get(community_id, 0.0)
            if spent + reserved + estimate > budget:
                if (community_id, month) not in self._budget_logged:
                    self._budget_logged.add((community_id, month))
                    logger.warning(
                        "monthly LLM budget reached, analyzing locally",
                        extra={
                            "community_id": community_id,
                            "month": month,
                            "budget_usd": budget,
                            "spent_usd": round(spent, 6),
                        },
                    )
                return False
            self._reserved[community_id] = reserved + estimate
            return True

    def _release(self, community_id: str, estimate: float) -> None:
        left = self._reserved.get(community_id, 0.0) - estimate
        if left > 1e-12:
            self._reserved[community_id] = left
        else:
            self._reserved.pop(community_id, None)


def _local_reason(request: AnalysisRequest) -> str | None:
    """Why a request goes to the local analyzer without asking the model, if it does."""
    if request.ai_opt_out:
        return _OPT_OUT
    if request.author_is_bot or not request.text.strip():
        return _SKIPPED
    return None


def _count(counters: dict[str, Counter[str]], community_id: str, name: str) -> None:
    counters.setdefault(community_id, Counter())[name] += 1
    if name == _CACHE_HIT:
        LLM_CACHE_HITS.inc()
    else:
        LLM_FALLBACKS.labels(reason=name.removeprefix("local_")).inc()
