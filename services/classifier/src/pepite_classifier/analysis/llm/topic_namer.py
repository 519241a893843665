"""Names for topic clusters, all clusters of a community in one call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from openai import AsyncOpenAI

from pepite_classifier.analysis.llm.prompt import clip
from pepite_classifier.analysis.llm.schema import (
    TopicName,
    parse_items,
    topic_names_response_format,
)
from pepite_classifier.analysis.llm_repository import LlmRepository, UsageDelta, month_of
from pepite_classifier.settings import Settings
from pepite_llm.client import ChatCaller, RetryPolicy, openai_client
from pepite_llm.errors import LlmUnavailableError
from pepite_llm.pricing import model_price
from pepite_llm.usage import ESTIMATE_CHARS_PER_TOKEN

logger = logging.getLogger(__name__)

TOPIC_SYSTEM_PROMPT = """\
Name each topic of an online community's chat in 2-5 specific words, in the language of \
its messages. Input lines: "id: keywords | sample ¦ sample". Return i=id, n=name."""

#: Enough samples to see what a topic is about; more cost tokens for little.
MAX_SAMPLES = 5
SAMPLE_CHARS = 120
MAX_KEYWORDS = 8
#: Name length the model may use, in tokens, plus the JSON around it.
_TOKENS_PER_NAME = 24
KEYWORD_NAME_COUNT = 3

#: One cluster: sample texts and keywords.
Cluster = tuple[list[str], list[str]]


def keyword_name(keywords: Sequence[str]) -> str | None:
    """The name a cluster gets without the model: its first keywords."""
    words = [word.strip() for word in keywords if word.strip()]
    return ", ".join(words[:KEYWORD_NAME_COUNT]) or None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OpenAITopicNamer:
    """Asks the model for a short name per cluster; keywords stand in when it cannot.

    Samples are sent as given: the caller leaves out texts of members who opted out of AI
    processing. Usage is booked to the community like labeling, under its budget.

    Raises:
        LlmConfigError: the base URL or key is missing, or the model has no price.
    """

    def __init__(
        self,
        settings: Settings,
        repository: LlmRepository,
        *,
        client: AsyncOpenAI | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._price = model_price(settings.llm_prices, settings.openai_model)
        self._repository = repository
        self._clock = clock
        api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._client = client or openai_client(
            settings.openai_base_url, api_key, timeout_s=settings.openai_timeout_s
        )
        self._caller = ChatCaller(
            self._client,
            model=settings.openai_model,
            policy=RetryPolicy(
                max_attempts=settings.openai_max_attempts,
                backoff_s=settings.openai_backoff_s,
                backoff_max_s=settings.openai_backoff_max_s,
                retry_after_max_s=settings.openai_retry_after_max_s,
            ),
        )

    async def name_clusters(
        self, community_id: str, clusters: Sequence[Cluster]
    ) -> list[str | None]:
        """A name per cluster, in order: the model's, else its keywords, else None."""
        names: list[str | None] = [keyword_name(keywords) for _, keywords in clusters]
        if not clusters:
            return names
        pending = list(range(len(clusters)))
        month = month_of(self._clock())
        for _ in range(self._settings.llm_invalid_attempts):
            user = "\n".join(
                _render_cluster(number, *clusters[index])
                for number, index in enumerate(pending, start=1)
            )
            limit = _TOKENS_PER_NAME * len(pending) + 20
            if not await self._affordable(community_id, month, user, limit):
                break
            try:
                reply = await self._caller.complete(
                    system=TOPIC_SYSTEM_PROMPT,
                    user=user,
                    response_format=topic_names_response_format(),
                    max_completion_tokens=limit,
                )
            except LlmUnavailableError as exc:
                await self._repository.add_usage(community_id, month, UsageDelta(failed_calls=1))
                logger.warning(
                    "topic naming unavailable, keeping keywords",
                    extra={"community_id": community_id, "error": str(exc)},
                )
                break
            by_number = dict(enumerate(pending, start=1))
            parsed = parse_items(reply.content, TopicName, by_number.keys())
            await self._repository.add_usage(
                community_id,
                month,
                UsageDelta(
                    calls=1,
                    topic_calls=1,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    cost_usd=self._price.cost_usd(reply.prompt_tokens, reply.completion_tokens),
                    invalid_answers=int(parsed.problem is not None),
                ),
            )
            for number, item in parsed.items.items():
                name = clip(item.name, 80)
                if name:
                    names[by_number[number]] = name
                    pending.remove(by_number[number])
            if not pending:
                break
        return names

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()

    async def _affordable(self, community_id: str, month: str, user: str, limit: int) -> bool:
        prompt_tokens = (len(TOPIC_SYSTEM_PROMPT) + len(user)) // ESTIMATE_CHARS_PER_TOKEN + 60
        estimate = self._price.cost_usd(prompt_tokens, limit)
        spent = await self._repository.spent_usd(community_id, month)
        if spent + estimate > self._settings.llm_budget_usd(community_id):
            logger.warning(
                "monthly LLM budget reached, topics keep keyword names",
                extra={"community_id": community_id, "month": month},
            )
            return False
        return True


def _render_cluster(number: int, samples: Sequence[str], keywords: Sequence[str]) -> str:
    words = ", ".join(clip(word, 40) for word in keywords[:MAX_KEYWORDS])
    texts = " ¦ ".join(clip(text, SAMPLE_CHARS) for text in samples[:MAX_SAMPLES])
    return f"{number}: {words} | {texts}"
