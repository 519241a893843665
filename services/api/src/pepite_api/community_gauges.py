"""What the community gauges say, and which communities they cover (no I/O here).

The API's worker exports a few numbers per community to Prometheus (messages of the
last 24 hours, last ingestion, insights, sentiments and open alerts of the last days).
A community id is a label value, so the number of communities exported is capped: the
most active come first, and one that drops out of the cap loses its series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pepite_contracts import COMMUNITY_ID_PATTERN, INSIGHT_KINDS, MessageKind, Sentiment

#: The window of ``pepite_community_messages_24h``.
MESSAGES_WINDOW = timedelta(hours=24)
#: UTC days (today included) of the insight and sentiment gauges: daily rollups are by day.
ROLLUP_DAYS = 7

#: The insight kinds, in a stable order: each community exports every one, zeros too,
#: so a dashboard's series do not come and go.
INSIGHT_KIND_ORDER: tuple[MessageKind, ...] = tuple(k for k in MessageKind if k in INSIGHT_KINDS)

#: The kinds of alert kept in the ``alerts`` collection (see docs/alerts.md): exported
#: for every community, zeros too. Any other kind is counted under ``other``.
ALERT_KINDS: tuple[str, ...] = (
    "volume_spike",
    "negative_sentiment_spike",
    "complaints_spike",
    "toxicity_spike",
    "member_distress",
    "scam_wave",
)
OTHER_ALERT_KIND = "other"


def exportable(community_id: str) -> bool:
    """Whether a community id may be a label value: it has the contracts' shape."""
    return re.fullmatch(COMMUNITY_ID_PATTERN, community_id) is not None


def alert_kind_label(kind: str) -> str:
    """The label value of an alert kind: a known kind, else ``other``.

    Alert kinds are strings in the contracts, not an enum: a label must never take
    whatever a producer wrote, so unknown kinds are pooled.
    """
    return kind if kind in ALERT_KINDS else OTHER_ALERT_KIND


@dataclass(frozen=True)
class Windows:
    """The time windows of one refresh, all from the same instant.

    Attributes:
        now: When the refresh started (UTC).
        messages_since: Start of the 24-hour message window.
        first_day: First UTC day of the rollup window (``ROLLUP_DAYS`` days, today last).
    """

    now: datetime
    messages_since: datetime
    first_day: date

    @classmethod
    def at(cls, now: datetime) -> Windows:
        now = now.astimezone(UTC)
        return cls(
            now=now,
            messages_since=now - MESSAGES_WINDOW,
            first_day=now.date() - timedelta(days=ROLLUP_DAYS - 1),
        )


@dataclass(frozen=True)
class CommunityActivity:
    """How active a community is: what ranks it among the communities exported.

    Attributes:
        community_id: The community.
        messages_24h: Messages stored whose message time is within the 24-hour window.
        last_ingested_at: When its most recently stored message was stored, if any.
    """

    community_id: str
    messages_24h: int
    last_ingested_at: datetime | None


@dataclass(frozen=True)
class CommunityGauges:
    """Every gauge value of one community."""

    activity: CommunityActivity
    insights: Mapping[MessageKind, int] = field(default_factory=dict)
    sentiments: Mapping[Sentiment, int] = field(default_factory=dict)
    open_alerts: Mapping[str, int] = field(default_factory=dict)

    def insight_series(self) -> list[tuple[str, int]]:
        """``(kind, count)`` for every insight kind, zeros included."""
        return [(kind.value, self.insights.get(kind, 0)) for kind in INSIGHT_KIND_ORDER]

    def sentiment_series(self) -> list[tuple[str, int]]:
        """``(sentiment, count)`` for every sentiment, zeros included."""
        return [(s.value, self.sentiments.get(s, 0)) for s in Sentiment]

    def alert_series(self) -> list[tuple[str, int]]:
        """``(kind, open alerts)``: every known kind (zeros too), ``other`` when some."""
        pooled: dict[str, int] = dict.fromkeys(ALERT_KINDS, 0)
        for kind, count in self.open_alerts.items():
            label = alert_kind_label(kind)
            pooled[label] = pooled.get(label, 0) + count
        return list(pooled.items())


def most_active(activities: Iterable[CommunityActivity], limit: int) -> list[CommunityActivity]:
    """The ``limit`` most active communities, most active first.

    Ranked by messages of the last 24 hours, then by the latest ingestion (a community
    still being fed before one that went quiet), then by id so the cut is stable.
    """
    ranked = sorted(
        activities,
        key=lambda a: (
            -a.messages_24h,
            -(a.last_ingested_at.timestamp() if a.last_ingested_at else float("-inf")),
            a.community_id,
        ),
    )
    return ranked[:limit]
