"""Classifier settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pepite_classifier.topics.settings import TopicSettings
from pepite_contracts import AnalyzerName
from pepite_kit import ServiceSettings
from pepite_llm.pricing import ModelPrice, default_prices


class Settings(ServiceSettings, TopicSettings):
    """Settings of the classifier service (``PEPITE_*`` environment variables).

    The OpenAI base URL and key also answer to the SDK's own ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``, so any OpenAI-compatible server is configured the usual way.
    """

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "classifier"
    http_port: int = 8102
    consumer_group: str = "classifier"

    analyzer: AnalyzerName = Field(
        default=AnalyzerName.LOCAL,
        description="Which analyzer labels messages: 'local' (offline) or 'openai'.",
    )

    # ----- OpenAI-compatible server -----
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "PEPITE_OPENAI_BASE_URL"),
        description="Base URL of the chat-completions API, e.g. https://api.openai.com/v1.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "PEPITE_OPENAI_API_KEY"),
    )
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Per call; a batch of 40 labels takes gpt-4o-mini about 10 s to write.",
    )
    openai_max_attempts: int = Field(
        default=4, ge=1, description="Calls per batch when the server says 429, 5xx or times out."
    )
    openai_backoff_s: float = Field(default=1.0, gt=0, description="First retry delay.")
    openai_backoff_max_s: float = Field(default=20.0, gt=0)
    openai_retry_after_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait a Retry-After header can impose."
    )
    openai_concurrency: int = Field(default=4, ge=1, description="Calls in flight at once.")

    # ----- what is sent -----
    llm_batch_size: int = Field(default=40, ge=1, le=200, description="Messages per call.")
    llm_invalid_attempts: int = Field(
        default=2,
        ge=1,
        description="Calls per batch when answers are malformed or miss messages; then local.",
    )
    llm_text_chars: int = Field(default=500, ge=20, description="A message is cut beyond this.")
    llm_context_chars: int = Field(
        default=160, ge=0, description="The replied-to text is cut beyond this (0: not sent)."
    )

    # ----- money -----
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=default_prices,
        description="US dollars per million input and output tokens, by model (JSON).",
    )
    llm_monthly_budget_usd: float = Field(
        default=5.0,
        ge=0,
        description="What one community may spend per calendar month (UTC); then local.",
    )
    llm_budget_overrides: dict[str, float] = Field(
        default_factory=dict,
        description='Per-community monthly budgets in US dollars (JSON: {"<community>": 20}).',
    )

    def llm_budget_usd(self, community_id: str) -> float:
        """The monthly budget of ``community_id``."""
        return self.llm_budget_overrides.get(community_id, self.llm_monthly_budget_usd)
