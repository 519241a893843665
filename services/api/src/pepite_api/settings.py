"""API settings: the one place the gateway reads its environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the API gateway (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "api"
    http_port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("PEPITE_API_PORT", "PEPITE_HTTP_PORT"),
    )
