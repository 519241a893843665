"""Classifier settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pepite_classifier.topics.settings import TopicSettings
from pepite_contracts import AnalyzerName
from pepite_kit import ServiceSettings
from pepite_llm.settings import OpenAISettings


class Settings(ServiceSettings, TopicSettings, OpenAISettings):
    """Settings of the classifier service (``PEPITE_*`` environment variables).

    The OpenAI-compatible server, model, retries, prices and monthly budgets come from
    :class:`~pepite_llm.settings.OpenAISettings`, shared with the digest service.
    """

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "classifier"
    http_port: int = 8102
    consumer_group: str = "classifier"

    analyzer: AnalyzerName = Field(
        default=AnalyzerName.LOCAL,
        description="Which analyzer labels messages: 'local' (offline) or 'openai'.",
    )

    # ----- OpenAI-compatible server (the client itself: OpenAISettings) -----
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
