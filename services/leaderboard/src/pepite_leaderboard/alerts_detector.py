"""Spike detection: is this hour's count unusual for this series? Pure, no I/O.

Each watched series (a community's message volume, its negative messages, its toxic
messages, its complaints on one topic) is a list of hourly counts. The count of the
hour under evaluation (and of the two hours ending with it, so a burst that straddles
an hour boundary is not cut in half) is compared with the same series over a rolling
window of past hours:

- the expected value is the median of the past windows at the same hour of the day
  (conversation follows the clock) when there are enough of them, else of every past
  window; the spread is 1.4826 x the median absolute deviation (MAD) of the same values,
  so past spikes do not inflate the baseline the way a mean and a standard deviation
  would;
- a count-data guard: the spread is never taken below the Poisson noise of the rate
  (``sqrt(lambda)``, ``lambda`` at least the window's mean and a floor), and the count
  must also be improbable under that Poisson rate (upper tail below ``max_p_value``), so
  two complaints where there are usually none is not a spike;
- and an absolute minimum count per series.

The service and ``bench/spike_eval.py`` both call :func:`assess` and
:class:`SpikeTracker`, so what the bench measures is what runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

HOUR = timedelta(hours=1)
_MAD_TO_SIGMA = 1.4826


class Signal(StrEnum):
    """What a series counts."""

    VOLUME = "volume"
    NEGATIVE = "negative_sentiment"
    COMPLAINTS = "complaints"
    TOXICITY = "toxicity"


@dataclass(frozen=True)
class SignalRule:
    """Thresholds of one signal.

    Attributes:
        min_count: The fewest messages (in the window evaluated) that can be a spike.
        z_threshold: Robust z-score at or above which the count is unusual.
        critical_z: Robust z-score from which the alert is ``critical`` (else ``warning``).
        floor_rate: Least hourly rate assumed by the Poisson guard, so a series that is
            usually empty does not make every message look improbable.
        seasonal: Compare with the same hour of past days (for series that follow the
            clock) rather than with every past hour.
        active_only: Leave hours without a message of the series out of the baseline:
            for busy series (volume) whose quiet hours (nights, days off) would pull the
            median to zero and make every busy hour look like a spike.
    """

    min_count: int
    z_threshold: float
    critical_z: float
    floor_rate: float
    seasonal: bool = False
    active_only: bool = False


@dataclass(frozen=True)
class DetectorConfig:
    """How spikes are told from ordinary hours.

    Attributes:
        baseline_hours: Length of the rolling baseline (14 days).
        min_history_hours: Hours of the community's history needed before any spike is
            called (no baseline, no alert).
        max_p_value: Upper tail of the Poisson guard.
        windows: Window lengths in hours evaluated at each hour (1 and 2: a burst across
            an hour boundary is seen whole in the two-hour window).
        cooldown_hours: After an alert, the same series stays quiet this long: one spike,
            one alert.
        rules: Thresholds per signal.
    """

    baseline_hours: int = 14 * 24
    min_history_hours: int = 3 * 24
    max_p_value: float = 1e-4
    windows: tuple[int, ...] = (1, 2)
    cooldown_hours: int = 6
    rules: dict[Signal, SignalRule] = field(
        default_factory=lambda: {
            Signal.VOLUME: SignalRule(
                min_count=30, z_threshold=6.0, critical_z=12.0, floor_rate=5.0, active_only=True
            ),
            Signal.NEGATIVE: SignalRule(
                min_count=15, z_threshold=6.0, critical_z=12.0, floor_rate=2.0, active_only=True
            ),
            Signal.COMPLAINTS: SignalRule(
                min_count=6, z_threshold=5.0, critical_z=10.0, floor_rate=0.25
            ),
            Signal.TOXICITY: SignalRule(
                min_count=6, z_threshold=5.0, critical_z=10.0, floor_rate=0.25
            ),
        }
    )


@dataclass(frozen=True)
class Assessment:
    """Why a count is a spike: the figures an alert shows."""

    observed: int
    expected: float
    spread: float
    z_score: float
    p_value: float
    window_hours: int
    severity: str


def poisson_upper_tail(count: int, rate: float) -> float:
    """P(X >= count) for X ~ Poisson(rate), summed in log space (no overflow)."""
    if count <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    # 1 - P(X <= count - 1); the terms are summed from the largest for accuracy.
    log_terms = [k * math.log(rate) - rate - math.lgamma(k + 1) for k in range(count)]
    top = max(log_terms)
    below = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    if below < 0.999:
        return max(0.0, 1.0 - below)
    # Near 1 the subtraction loses everything: sum the upper tail instead.
    tail = 0.0
    k = count
    term = math.exp(k * math.log(rate) - rate - math.lgamma(k + 1))
    while term > 1e-300 and k < count + 10_000:
        tail += term
        k += 1
        term *= rate / k
        if term < tail * 1e-16:
            break
    return tail


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _window_sums(counts: Sequence[int], width: int) -> list[int]:
    """Sums of ``width`` consecutive counts, ending at each index from ``width - 1``."""
    if width == 1:
        return list(counts)
    running = sum(counts[:width])
    sums = [running]
    for i in range(width, len(counts)):
        running += counts[i] - counts[i - width]
        sums.append(running)
    return sums


def assess(
    history: Sequence[int], current: Sequence[int], rule: SignalRule, config: DetectorConfig
) -> Assessment | None:
    """Whether the latest hour is a spike of its series.

    Args:
        history: Hourly counts of the series before the hour evaluated, oldest first,
            the last one the hour just before (missing hours as zeros).
        current: The hours evaluated, ending with the latest: at least ``max(windows)``
            hours (the earlier ones are the end of ``history`` again, or zeros).
        rule: The signal's thresholds.
        config: The detector's settings.

    Returns:
        The strongest window's assessment when it is a spike, else None.
    """
    best: Assessment | None = None
    for width in config.windows:
        observed = sum(current[-width:])
        if observed < rule.min_count or len(history) < width:
            continue
        sums = _window_sums(history, width)
        if rule.seasonal and len(sums) >= 24 * 7:
            # Windows ending at the same hour of past days: the last is 24 hours back.
            baseline = [float(v) for v in sums[len(sums) - 24 :: -24]]
        else:
            baseline = [float(v) for v in sums]
        if rule.active_only:
            baseline = [v for v in baseline if v > 0]
            if len(baseline) < 24:
                continue
        expected = _median(baseline)
        mad = _median([abs(v - expected) for v in baseline])
        rate = max(expected, sum(baseline) / len(baseline), rule.floor_rate * width)
        spread = max(_MAD_TO_SIGMA * mad, math.sqrt(rate))
        z_score = (observed - expected) / spread
        if z_score < rule.z_threshold:
            continue
        p_value = poisson_upper_tail(observed, rate)
        if p_value > config.max_p_value:
            continue
        severity = "critical" if z_score >= rule.critical_z else "warning"
        found = Assessment(
            observed=observed,
            expected=round(expected, 2),
            spread=round(spread, 2),
            z_score=round(z_score, 2),
            p_value=p_value,
            window_hours=width,
            severity=severity,
        )
        if best is None or found.z_score > best.z_score:
            best = found
    return best


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (its bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SeriesKey:
    """One watched series of a community: a signal, on one topic for complaints."""

    signal: Signal
    scope: str = ""

    def label(self) -> str:
        """The series as one string: ``volume``, ``complaints:<topic id>``."""
        return self.signal.value if not self.scope else f"{self.signal.value}:{self.scope}"

    @classmethod
    def parse(cls, label: str) -> SeriesKey:
        """The series a :meth:`label` names.

        Raises:
            ValueError: not a known signal.
        """
        signal, _, scope = label.partition(":")
        return cls(Signal(signal), scope)


@dataclass
class SpikeTracker:
    """Evaluates one series hour after hour, with the cooldown: one spike, one alert.

    The caller gives the counts; the tracker keeps the hours of the series' alerts.

    Args:
        rule: The series' thresholds.
        config: The detector's settings.
        first_hour: The first hour of the community's history (no alert before
            ``min_history_hours`` of it).
        alerts: Hours of the series' alerts so far.
    """

    rule: SignalRule
    config: DetectorConfig
    first_hour: datetime
    alerts: list[datetime] = field(default_factory=list)

    def cooling(self, hour: datetime) -> bool:
        """Whether an alert of the series is closer to ``hour`` than the cooldown.

        Both sides count: hours are evaluated again when late messages arrive, and an
        hour just before an alert belongs to the same spike.
        """
        cooldown = timedelta(hours=self.config.cooldown_hours)
        return any(abs(hour - alerted) < cooldown for alerted in self.alerts)

    def evaluate(
        self, hour: datetime, history: Sequence[int], current: Sequence[int]
    ) -> Assessment | None:
        """Assess ``hour``; a spike is returned once, then the series cools down."""
        if hour - self.first_hour < timedelta(hours=self.config.min_history_hours):
            return None
        if self.cooling(hour):
            return None
        found = assess(history, current, self.rule, self.config)
        if found is not None:
            self.alerts.append(hour)
        return found


#: Series of complaints whose message is not placed in a topic yet.
UNASSIGNED_TOPIC = "unassigned"


def series_of(
    *,
    kind: str,
    sentiment: str,
    toxicity: float,
    topic_id: str | None,
    toxicity_threshold: float = 0.5,
) -> list[SeriesKey]:
    """The series one analyzed message counts in."""
    keys = [SeriesKey(Signal.VOLUME)]
    if sentiment == "negative":
        keys.append(SeriesKey(Signal.NEGATIVE))
    if kind == "toxic" or toxicity >= toxicity_threshold:
        keys.append(SeriesKey(Signal.TOXICITY))
    if kind == "complaint":
        keys.append(SeriesKey(Signal.COMPLAINTS, topic_id or UNASSIGNED_TOPIC))
    return keys
