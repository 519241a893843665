"""Classifier settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the classifier service (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "classifier"
    http_port: int = 8102
    consumer_group: str = "classifier"
