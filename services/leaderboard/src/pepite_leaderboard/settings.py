"""Leaderboard settings: the one place this service reads its environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the leaderboard service (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "leaderboard"
    http_port: int = 8104

    # ----- alerts (spikes, crisis signals) -----
    #: Consumer group of the alerts: they follow message.analyzed on their own.
    alerts_consumer_group: str = "leaderboard-alerts"
    #: Rolling baseline of the spike detector, and the history needed before any spike.
    alerts_baseline_days: int = Field(default=14, ge=1, le=60)
    alerts_min_history_days: float = Field(default=3.0, ge=0)
    #: After a spike alert, the same series stays quiet this long.
    alerts_cooldown_hours: int = Field(default=6, ge=1)
    #: Poisson tail below which a count is improbable enough to be a spike.
    alerts_max_p_value: float = Field(default=1e-4, gt=0, lt=1)
    #: Moderation scores from which a message counts as toxic / as a scam.
    alerts_toxicity_threshold: float = Field(default=0.5, ge=0, le=1)
    alerts_scam_threshold: float = Field(default=0.5, ge=0, le=1)
    #: Scam messages from this many different authors within the window are a wave.
    alerts_scam_wave_authors: int = Field(default=3, ge=2)
    alerts_scam_wave_minutes: float = Field(default=30.0, gt=0)

    # ----- themed leaderboards (scores, ranks, titles) -----
    #: Consumer group of the scores: they follow message.analyzed and erasures on their own.
    leaderboard_consumer_group: str = "leaderboard-scores"
    #: Points per theme a member can earn in one UTC day (JSON, e.g. {"helpfulness": 40});
    #: themes left out keep their default (see docs/leaderboards.md).
    leaderboard_daily_caps: dict[str, float] = Field(default_factory=dict)
    #: A message whose toxicity, hate, spam or scam score reaches this counts for nothing.
    leaderboard_moderation_threshold: float = Field(default=0.8, gt=0, le=1)
    #: An answer or thanks naming a member is about their latest message this recent.
    leaderboard_address_window_minutes: float = Field(default=60.0, gt=0)
    #: leaderboard.updated goes out at most this often per ranking, with this many members.
    leaderboard_notify_seconds: float = Field(default=60.0, gt=0)
    leaderboard_notice_top: int = Field(default=10, ge=1, le=100)

    # ----- community KPIs (rollups of members' activity and first responses) -----
    #: Consumer group of the KPI rollups: they follow message.analyzed and members.events.
    kpi_consumer_group: str = "leaderboard-kpis"
    #: An analyzer "answer" that replies to nothing responds to a question this recent.
    kpi_answer_window_minutes: float = Field(default=120.0, gt=0)
