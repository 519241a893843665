"""Ingestor settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the ingestor service and the ``pepite import`` command."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "ingestor"
    http_port: int = 8101
    #: Wait for broker acknowledgements every this many records, bounding memory.
    import_flush_every: int = Field(default=20_000, ge=1)
