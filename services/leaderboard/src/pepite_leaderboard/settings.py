"""Leaderboard settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the leaderboard service (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "leaderboard"
    http_port: int = 8104
