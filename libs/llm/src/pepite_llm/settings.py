"""The OpenAI-compatible client's settings, mixed into each service's one ``Settings`` class.

A plain pydantic model rather than a settings class: the service's ``Settings`` (a
pydantic-settings class with the ``PEPITE_`` prefix) reads these fields from the
environment like its own, so every service that calls a model is configured with the
same variables.
"""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, SecretStr

from pepite_llm.client import RetryPolicy
from pepite_llm.errors import LlmConfigError
from pepite_llm.pricing import ModelPrice, default_prices


class OpenAISettings(BaseModel):
    """Where the chat-completions API is, which model, how long to wait and retry, prices.

    The base URL and key also answer to the SDK's own ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``, so any OpenAI-compatible server is configured the usual way.
    """

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
        default=4, ge=1, description="Calls per request when the server says 429, 5xx or times out."
    )
    openai_backoff_s: float = Field(default=1.0, gt=0, description="First retry delay.")
    openai_backoff_max_s: float = Field(default=20.0, gt=0)
    openai_retry_after_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait a Retry-After header can impose."
    )
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=default_prices,
        description="US dollars per million input and output tokens, by model (JSON).",
    )
    # One budget per community covers every paid call: labeling, topic names, digests.
    llm_monthly_budget_usd: float = Field(
        default=5.0,
        ge=0,
        description="What one community may spend per calendar month (UTC); then offline work.",
    )
    llm_budget_overrides: dict[str, float] = Field(
        default_factory=dict,
        description='Per-community monthly budgets in US dollars (JSON: {"<community>": 20}).',
    )

    def llm_budget_usd(self, community_id: str) -> float:
        """The monthly budget of ``community_id``."""
        return self.llm_budget_overrides.get(community_id, self.llm_monthly_budget_usd)

    def retry_policy(self) -> RetryPolicy:
        """How :class:`~pepite_llm.client.ChatCaller` retries, as configured."""
        return RetryPolicy(
            max_attempts=self.openai_max_attempts,
            backoff_s=self.openai_backoff_s,
            backoff_max_s=self.openai_backoff_max_s,
            retry_after_max_s=self.openai_retry_after_max_s,
        )

    def api_key(self) -> str | None:
        """The key in clear, for the SDK client."""
        return self.openai_api_key.get_secret_value() if self.openai_api_key else None

    def require_server(self, selected_by: str) -> None:
        """Fail at start-up, naming what to set, when the server or key is missing.

        Args:
            selected_by: the setting that asked for the model, e.g. ``PEPITE_DIGEST_WRITER=openai``.

        Raises:
            LlmConfigError: the base URL or the key is not set.
        """
        missing = [
            f"{name} (or PEPITE_{name})"
            for name, value in (
                ("OPENAI_BASE_URL", self.openai_base_url),
                ("OPENAI_API_KEY", self.openai_api_key),
            )
            if not value
        ]
        if missing:
            raise LlmConfigError(f"{selected_by} needs {' and '.join(missing)} to be set")
