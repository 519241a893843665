"""Digest settings: the one place this service reads its environment."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings
from pepite_llm.settings import OpenAISettings


class DigestWriterName(StrEnum):
    """Who writes a digest's statements."""

    #: The messages themselves, quoted and counted: no model, nothing leaves the service.
    EXTRACTIVE = "extractive"
    #: An OpenAI-compatible model rewrites the extractive statements in prose.
    OPENAI = "openai"


class Settings(ServiceSettings, OpenAISettings):
    """Settings of the digest service (``PEPITE_*`` environment variables).

    The OpenAI-compatible server, model, retries and prices come from
    :class:`~pepite_llm.settings.OpenAISettings`, shared with the classifier.
    """

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "digest"
    http_port: int = 8103
    consumer_group: str = "digest"
    #: Requested digests are consumed apart: building one must not hold back (or be
    #: rebalanced with) the members' events.
    requests_consumer_group: str = "digest-requests"
    #: How often the scheduler looks for digests that are due.
    digest_poll_seconds: float = Field(default=60.0, gt=0)
    #: How many days before a week a member's messages tell their interests, for their
    #: personalized digest.
    personal_lookback_days: int = Field(default=90, ge=1, le=730)
    #: How often the journal scheduler looks for days that ended, and how many past days
    #: it builds at most for a member (when their journal is turned on, or after a pause).
    journal_poll_seconds: float = Field(default=300.0, gt=0)
    journal_catch_up_days: int = Field(default=31, ge=1, le=366)
    #: How often the FAQ miner looks for questions answered since its last look.
    knowledge_poll_seconds: float = Field(default=300.0, gt=0)
    #: A member's question to everyone is listed and alerted once it has waited this long
    #: without an answer (a community's ``unanswered.after_hours`` overrides it); older
    #: than the horizon it is no longer watched. The watcher looks every poll.
    unanswered_after_hours: float = Field(default=24.0, gt=0)
    unanswered_horizon_days: float = Field(default=14.0, gt=0)
    unanswered_poll_seconds: float = Field(default=300.0, gt=0)

    # ----- the LLM writer -----
    digest_writer: DigestWriterName = Field(
        default=DigestWriterName.EXTRACTIVE,
        description="Who writes digests: 'extractive' (offline) or 'openai'.",
    )
    digest_llm_text_chars: int = Field(
        default=400, ge=40, description="A message is cut beyond this in the prompt."
    )
    digest_llm_max_completion_tokens: int = Field(
        default=4000,
        ge=200,
        description="Ceiling of one answer: a week's digest is about 60 tokens a statement.",
    )
