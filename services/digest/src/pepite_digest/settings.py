"""Digest settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the digest service (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "digest"
    http_port: int = 8103
    consumer_group: str = "digest"
    #: How often the scheduler looks for digests that are due.
    digest_poll_seconds: float = Field(default=60.0, gt=0)
    #: How many days before a week a member's messages tell their interests, for their
    #: personalized digest.
    personal_lookback_days: int = Field(default=90, ge=1, le=730)
    #: How often the journal scheduler looks for days that ended, and how many past days
    #: it builds at most for a member (when their journal is turned on, or after a pause).
    journal_poll_seconds: float = Field(default=300.0, gt=0)
    journal_catch_up_days: int = Field(default=31, ge=1, le=366)
