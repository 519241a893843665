"""Events Pépite sends out of itself: what webhook subscribers receive.

Each is published on the ``notifications`` topic by the service that made it; the API
delivers it to every subscription of its community that asked for its type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from pepite_contracts.analysis import MessageKind, ModerationScores
from pepite_contracts.messages import ChannelRef, ContractModel, UtcDatetime


class NotificationType(StrEnum):
    """Event types a webhook subscription can ask for."""

    DIGEST_PUBLISHED = "digest.published"
    ALERT_RAISED = "alert.raised"
    MODERATION_FLAGGED = "moderation.flagged"
    LEADERBOARD_UPDATED = "leaderboard.updated"
    INSIGHTS_REPORT = "insights.report"


class DigestNotice(ContractModel):
    """A digest is out."""

    digest_id: str
    title: str
    period_start: UtcDatetime
    period_end: UtcDatetime
    summary: str = ""
    member_id: str | None = Field(default=None, description="Set for a personalized digest.")


class AlertNotice(ContractModel):
    """Something unusual is happening: a spike, a crisis, a drop."""

    alert_id: str
    kind: str = Field(description="E.g. message_spike, negative_sentiment, unanswered.")
    severity: str = Field(description="info, warning or critical.")
    title: str
    detail: str = ""
    channel: ChannelRef | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    message_ids: list[str] = Field(
        default_factory=list,
        description="The messages behind the alert (a spike's, at most a few hundred).",
    )
    member_id: str | None = Field(
        default=None, description="The member concerned (distress, moderation strikes)."
    )


class ModerationNotice(ContractModel):
    """A message a moderator should look at; a human decides what happens to it."""

    message_id: str
    channel: ChannelRef
    author_id: str
    kind: MessageKind
    scores: ModerationScores
    created_at: UtcDatetime


class LeaderboardNotice(ContractModel):
    """A leaderboard changed."""

    leaderboard_id: str
    theme: str
    period: str
    top: list[dict[str, Any]] = Field(default_factory=list)


class InsightsReportNotice(ContractModel):
    """An insights report over a window, in short: the full report is one API call away."""

    report_id: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    messages: int
    insights: int
    kinds: dict[str, int] = Field(default_factory=dict)
    top_topics: list[dict[str, Any]] = Field(default_factory=list)
