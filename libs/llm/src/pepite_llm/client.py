"""One chat-completions call with bounded retries, over the ``openai`` SDK.

The SDK's own retries are turned off (``max_retries=0``) so that this module decides:
429 honours the server's Retry-After (capped), 5xx, 408, 409 and timeouts back off
exponentially with jitter, and anything else (a bad key, an unknown model, an exhausted
quota) fails at once: retrying would only cost time before the same answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion
from openai.types.shared_params import ResponseFormatJSONSchema

from pepite_llm.errors import LlmConfigError, LlmUnavailableError

logger = logging.getLogger(__name__)

_RETRIED_STATUSES = frozenset({408, 409})
#: A 429 with this code means the account is out of credit: waiting will not help.
_NO_QUOTA = "insufficient_quota"
#: Rough characters per token, to account for a server that does not report usage.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class ChatReply:
    """The model's answer and what it cost."""

    content: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class RetryPolicy:
    """How many calls and how long between them."""

    max_attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 30.0


class ChatCaller:
    """Sends one structured-output chat completion, retrying what is worth retrying."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._policy = policy
        self._sleep = sleep
        # Jitter only spreads retries apart; it needs no cryptographic quality.
        self._rng = rng or random.Random()  # noqa: S311

    @property
    def model(self) -> str:
        return self._model

    async def complete(
        self,
        *,
        system: str,
        user: str,
        response_format: ResponseFormatJSONSchema,
        max_completion_tokens: int,
    ) -> ChatReply:
        """One answer, after as many calls as the policy allows.

        Raises:
            LlmUnavailableError: every attempt failed, or the error is not worth retrying.
        """
        attempts = self._policy.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                completion = await self._client.chat.completions.create(
                    model=self._model,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    response_format=response_format,
                    temperature=0,
                    max_completion_tokens=max_completion_tokens,
                )
            except openai.APIStatusError as exc:
                delay = self._delay_after_status(exc, attempt)
                what = f"HTTP {exc.status_code}"
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                delay = self._backoff(attempt)
                what = type(exc).__name__
            except openai.OpenAIError as exc:
                # A 2xx the SDK could not read: the server is not speaking the API.
                raise LlmUnavailableError(f"unreadable response: {exc}") from exc
            else:
                return _reply(completion, system, user)
            if attempt == attempts:
                raise LlmUnavailableError(f"{what} after {attempts} attempts")
            logger.warning(
                "LLM call failed, retrying",
                extra={"error": what, "attempt": attempt, "delay_s": round(delay, 3)},
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay_after_status(self, exc: openai.APIStatusError, attempt: int) -> float:
        if isinstance(exc, openai.RateLimitError):
            if exc.code == _NO_QUOTA:
                raise LlmUnavailableError("the account has no quota left") from exc
            hinted = retry_after_s(exc.response.headers)
            if hinted is not None:
                # Retry-After means "not before": jitter may only add to it.
                capped = min(hinted, self._policy.retry_after_max_s)
                return capped + self._rng.uniform(0, 0.1 * capped)
            return self._backoff(attempt)
        if exc.status_code >= 500 or exc.status_code in _RETRIED_STATUSES:
            return self._backoff(attempt)
        raise LlmUnavailableError(f"HTTP {exc.status_code}: {exc.message}") from exc

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": never less than half the step."""
        step = min(self._policy.backoff_max_s, self._policy.backoff_s * 2.0 ** (attempt - 1))
        return step / 2 + self._rng.uniform(0, step / 2)


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms`` (OpenAI), else ``retry-after``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _reply(completion: ChatCompletion, system: str, user: str) -> ChatReply:
    choice = completion.choices[0] if completion.choices else None
    content = choice.message.content if choice is not None else None
    usage = completion.usage
    if usage is not None:
        prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
    else:
        # Some compatible servers omit usage; an estimate keeps budgets meaningful.
        prompt_tokens = (len(system) + len(user)) // _CHARS_PER_TOKEN
        completion_tokens = len(content or "") // _CHARS_PER_TOKEN
    return ChatReply(
        content=content,
        finish_reason=(choice.finish_reason if choice is not None else None) or "unknown",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def openai_client(base_url: str | None, api_key: str | None, *, timeout_s: float) -> AsyncOpenAI:
    """The SDK client, with its own retries off (:class:`ChatCaller` retries).

    Raises:
        LlmConfigError: the base URL or the key is missing, named as the variable to set.
    """
    missing = [
        name
        for name, value in (("OPENAI_BASE_URL", base_url), ("OPENAI_API_KEY", api_key))
        if not value
    ]
    if missing:
        names = " and ".join(f"{name} (or PEPITE_{name})" for name in missing)
        raise LlmConfigError(f"PEPITE_ANALYZER=openai needs {names} to be set")
    return AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s)
