"""Ingestor settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the ingestor service and the ``pepite import`` command.

    Every live adapter is off until its secret and community are set.
    """

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "ingestor"
    http_port: int = 8101
    #: Wait for broker acknowledgements every this many records, bounding memory.
    import_flush_every: int = Field(default=20_000, ge=1)
    #: An imported event bigger than this once encoded is skipped with a warning: chat
    #: platforms cap messages far below it (Slack 40,000 characters, Discord 4,000).
    import_max_event_bytes: int = Field(default=1024 * 1024, ge=4096)

    #: Largest request body a live endpoint reads; bigger ones get 413 unread.
    live_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: How old a signed request's timestamp may be (either way) before it counts as a replay.
    live_replay_window_s: int = Field(default=300, ge=1)

    #: Slack app "Signing Secret"; enables ``POST /slack/events``.
    slack_signing_secret: SecretStr | None = None
    #: The Pépite community Slack events are filed under.
    slack_community_id: str | None = None

    #: Per-community secrets of the generic signed webhook, as JSON: ``{"community": "secret"}``.
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    #: Discord bot token; enables the gateway client.
    discord_bot_token: SecretStr | None = None
    #: The Pépite community Discord gateway events are filed under.
    discord_community_id: str | None = None
    #: The guilds (servers) of that community, as JSON: ``[123, 456]``; empty for every
    #: guild the bot is in.
    discord_guild_ids: list[int] = Field(default_factory=list)
