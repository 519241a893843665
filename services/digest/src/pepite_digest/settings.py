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
