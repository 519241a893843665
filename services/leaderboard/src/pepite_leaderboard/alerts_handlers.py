"""Alerts from ``message.analyzed`` as it arrives: spikes, members in distress, scam waves.

Each batch is counted in its hourly buckets first, then every bucket it changed is
evaluated against the series' rolling baseline (:mod:`pepite_leaderboard.alerts_detector`).
A spike is announced once (``alert.raised`` on the notifications topic, with the
messages behind it) and the series cools down. Crisis signals
(:mod:`pepite_leaderboard.alerts_crisis`) are announced at once with severity
``critical``, for a human.

Replays are harmless: buckets are sets of message ids, an alert's id (and its event's)
is derived from what it is about, and an alert already stored is not sent again. The
alert is published before it is stored: a crash in between sends it again with the same
event id, which webhook delivery recognizes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pepite_contracts import (
    AlertNotice,
    AlertRaised,
    AnalyzedMessage,
    ChannelRef,
    Event,
    MemberErased,
    MessageAnalyzed,
    MessageKind,
    community_key,
    deterministic_event_id,
    encode_event,
)
from pepite_kit import EventPublisher
from pepite_kit.metrics import ALERTS_RAISED
from pepite_leaderboard.alerts_crisis import distress_cue, scam_wave
from pepite_leaderboard.alerts_detector import (
    HOUR,
    Assessment,
    DetectorConfig,
    SeriesKey,
    Signal,
    SpikeTracker,
    hour_of,
    series_of,
)
from pepite_leaderboard.alerts_repository import (
    AlertRepository,
    Observation,
    StoredAlert,
    Touched,
)
from pepite_leaderboard.settings import Settings

logger = logging.getLogger(__name__)

DISTRESS = "member_distress"
SCAM_WAVE = "scam_wave"

_TITLES = {
    Signal.VOLUME: "Message volume spike",
    Signal.NEGATIVE: "Spike of negative messages",
    Signal.COMPLAINTS: "Spike of complaints on one topic",
    Signal.TOXICITY: "Spike of toxic messages",
}


@dataclass(frozen=True)
class AlertRules:
    """The alerts' settings, from the service's settings.

    Attributes:
        detector: The spike detector's settings.
        toxicity_threshold: A toxicity score from which a message counts as toxic.
        scam_threshold: A scam score from which a message counts as a scam.
        scam_wave_authors: Different authors of scam messages that make a wave.
        scam_wave_window: Within this time.
        max_message_ids: Most message ids an alert carries.
    """

    detector: DetectorConfig
    toxicity_threshold: float = 0.5
    scam_threshold: float = 0.5
    scam_wave_authors: int = 3
    scam_wave_window: timedelta = timedelta(minutes=30)
    max_message_ids: int = 200


def spike_alert_id(community_id: str, series: SeriesKey, hour: datetime) -> str:
    return f"spike:{community_id}:{series.label()}:{hour:%Y-%m-%dT%H}"


def alert_event(community_id: str, notice: AlertNotice) -> AlertRaised:
    """The event of an alert; its id depends only on the alert's id."""
    return AlertRaised(
        event_id=deterministic_event_id("alert.raised", notice.alert_id),
        community_id=community_id,
        payload=notice,
    )


def spike_notice(
    community_id: str,
    series: SeriesKey,
    hour: datetime,
    found: Assessment,
    message_ids: list[str],
) -> AlertNotice:
    """What a spike alert says."""
    kind = f"{series.signal.value}_spike"
    about = f" (topic {series.scope})" if series.scope else ""
    first = hour - (found.window_hours - 1) * HOUR
    return AlertNotice(
        alert_id=spike_alert_id(community_id, series, hour),
        kind=kind,
        severity=found.severity,
        title=f"{_TITLES[series.signal]}{about}",
        detail=(
            f"{found.observed} messages in the {found.window_hours} h from "
            f"{first:%Y-%m-%d %H:00} UTC, where about {found.expected:g} are usual "
            f"(robust z {found.z_score:g})."
        ),
        metrics={
            "observed": float(found.observed),
            "expected": found.expected,
            "z_score": found.z_score,
            "p_value": found.p_value,
            "window_hours": float(found.window_hours),
        },
        message_ids=message_ids,
    )


class AlertsHandler:
    """Consumes ``message.analyzed`` (counts, evaluates, alerts) and ``member.erased``."""

    def __init__(
        self,
        repository: AlertRepository,
        publisher: EventPublisher,
        *,
        notifications_topic: str,
        rules: AlertRules,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._topic = notifications_topic
        self._rules = rules

    async def __call__(self, events: Sequence[Event]) -> None:
        latest: dict[str, AnalyzedMessage] = {}
        for event in events:
            if isinstance(event, MessageAnalyzed):
                latest[event.payload.message_id] = event.payload
            elif isinstance(event, MemberErased):
                erasure = event.payload
                await self._repository.erase_member(
                    erasure.community_id, erasure.member_id, erasure.pseudonym
                )
        if not latest:
            return
        observations = [self._observation(a) for a in latest.values()]
        touched = await self._repository.record(observations)
        await self._distress(list(latest.values()))
        await self._scam_waves([o for o in observations if o.scam])
        await self._spikes(touched)

    def _observation(self, analyzed: AnalyzedMessage) -> Observation:
        analysis = analyzed.analysis
        keys = series_of(
            kind=analysis.kind.value,
            sentiment=analysis.sentiment.value,
            toxicity=analysis.moderation.toxicity,
            topic_id=analyzed.topic_id,
            toxicity_threshold=self._rules.toxicity_threshold,
        )
        return Observation(
            message_id=analyzed.message_id,
            community_id=analyzed.community_id,
            author_id=analyzed.author.id,
            created_at=analyzed.created_at,
            hour=hour_of(analyzed.created_at),
            series=tuple(k.label() for k in keys),
            scam=analysis.kind is MessageKind.SCAM
            or analysis.moderation.scam >= self._rules.scam_threshold,
        )

    # ------------------------------------------------------------------ spikes

    async def _spikes(self, touched: set[Touched]) -> None:
        by_series: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for bucket in touched:
            by_series[(bucket.community_id, bucket.series)].append(bucket.hour)
        firsts: dict[str, datetime | None] = {}
        for (community_id, label), hours in sorted(by_series.items()):
            if community_id not in firsts:
                firsts[community_id] = await self._repository.first_hour(community_id)
            first = firsts[community_id]
            if first is None:
                continue
            await self._evaluate(community_id, SeriesKey.parse(label), sorted(hours), first)

    async def _evaluate(
        self, community_id: str, series: SeriesKey, hours: list[datetime], first: datetime
    ) -> None:
        config = self._rules.detector
        widest = max(config.windows)
        start = hours[0] - (config.baseline_hours + widest) * HOUR
        counts = await self._repository.counts(community_id, series.label(), start, hours[-1])
        cooldown = config.cooldown_hours * HOUR
        tracker = SpikeTracker(
            config.rules[series.signal],
            config,
            first_hour=first,
            alerts=await self._repository.alert_hours(
                community_id, series.label(), hours[0] - cooldown, hours[-1] + cooldown
            ),
        )
        for hour in hours:
            history = [
                counts.get(hour - (config.baseline_hours - i) * HOUR, 0)
                for i in range(config.baseline_hours)
            ]
            current = [counts.get(hour - (widest - 1 - i) * HOUR, 0) for i in range(widest)]
            found = tracker.evaluate(hour, history, current)
            if found is None:
                continue
            window = [hour - i * HOUR for i in range(found.window_hours)]
            message_ids = await self._repository.bucket_messages(
                community_id, series.label(), window, self._rules.max_message_ids
            )
            notice = spike_notice(community_id, series, hour, found, message_ids)
            await self._raise(community_id, notice, series=series.label(), hour=hour)

    # ------------------------------------------------------------------ crises

    async def _distress(self, analyzed: list[AnalyzedMessage]) -> None:
        by_community: dict[str, list[AnalyzedMessage]] = defaultdict(list)
        for message in analyzed:
            if not message.author.is_bot:
                by_community[message.community_id].append(message)
        for community_id, messages in by_community.items():
            texts = await self._repository.texts(community_id, [m.message_id for m in messages])
            for message in messages:
                cue = distress_cue(texts.get(message.message_id, ""), message.analysis.mood)
                if cue is None:
                    continue
                notice = AlertNotice(
                    alert_id=f"{DISTRESS}:{message.message_id}",
                    kind=DISTRESS,
                    severity="critical",
                    title=f"A member may be in distress in #{message.channel.name}",
                    detail=(
                        f"Their message says “{cue}” (mood: {message.analysis.mood.value})."
                        " Please have someone reach out to them now."
                    ),
                    channel=ChannelRef(id=message.channel.id, name=message.channel.name),
                    message_ids=[message.message_id],
                    member_id=message.author.id,
                )
                await self._raise(
                    community_id,
                    notice,
                    series=DISTRESS,
                    hour=hour_of(message.created_at),
                    member_id=message.author.id,
                )

    async def _scam_waves(self, scams: list[Observation]) -> None:
        rules = self._rules
        window = rules.scam_wave_window
        for community_id in sorted({o.community_id for o in scams}):
            times = [o.created_at for o in scams if o.community_id == community_id]
            sightings = await self._repository.scam_sightings(
                community_id, min(times) - window, max(times) + window
            )
            while True:
                wave = scam_wave(sightings, min_authors=rules.scam_wave_authors, window=window)
                if not wave:
                    break
                onset = hour_of(wave[0].created_at)
                cooldown = rules.detector.cooldown_hours * HOUR
                recent = await self._repository.alert_hours(
                    community_id, SCAM_WAVE, onset - cooldown, onset + cooldown
                )
                if not recent:
                    authors = {s.author_id for s in wave}
                    notice = AlertNotice(
                        alert_id=f"{SCAM_WAVE}:{community_id}:{wave[0].message_id}",
                        kind=SCAM_WAVE,
                        severity="critical",
                        title="A wave of scam messages",
                        detail=(
                            f"{len(wave)} scam messages from {len(authors)} members within "
                            f"{window.total_seconds() / 60:g} minutes, from "
                            f"{wave[0].created_at:%Y-%m-%d %H:%M} UTC."
                        ),
                        metrics={"messages": float(len(wave)), "authors": float(len(authors))},
                        message_ids=[s.message_id for s in wave][: rules.max_message_ids],
                    )
                    await self._raise(community_id, notice, series=SCAM_WAVE, hour=onset)
                last = wave[-1].created_at
                sightings = [s for s in sightings if s.created_at > last]

    # ------------------------------------------------------------------ raising

    async def _raise(
        self,
        community_id: str,
        notice: AlertNotice,
        *,
        series: str,
        hour: datetime,
        member_id: str | None = None,
    ) -> None:
        if await self._repository.raised([notice.alert_id]):
            return
        event = alert_event(community_id, notice)
        await self._publisher.send(
            self._topic, encode_event(event), key=community_key(community_id)
        )
        await self._publisher.flush()
        await self._repository.store_alert(
            StoredAlert(
                alert_id=notice.alert_id,
                community_id=community_id,
                kind=notice.kind,
                series=series,
                hour=hour,
                severity=notice.severity,
                message_ids=notice.message_ids,
                member_id=member_id,
                title=notice.title,
                detail=notice.detail,
                channel=notice.channel,
                metrics=notice.metrics,
            )
        )
        ALERTS_RAISED.labels(kind=notice.kind, severity=notice.severity).inc()
        logger.info(
            "alert raised",
            extra={"community": community_id, "alert": notice.alert_id, "kind": notice.kind},
        )


def alert_rules(settings: Settings) -> AlertRules:
    """The alerts' rules from the service's settings."""
    detector = DetectorConfig(
        baseline_hours=settings.alerts_baseline_days * 24,
        min_history_hours=round(settings.alerts_min_history_days * 24),
        max_p_value=settings.alerts_max_p_value,
        cooldown_hours=settings.alerts_cooldown_hours,
    )
    return AlertRules(
        detector=detector,
        toxicity_threshold=settings.alerts_toxicity_threshold,
        scam_threshold=settings.alerts_scam_threshold,
        scam_wave_authors=settings.alerts_scam_wave_authors,
        scam_wave_window=timedelta(minutes=settings.alerts_scam_wave_minutes),
    )
