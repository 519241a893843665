"""Every metric defined in pepite_kit.metrics is recorded somewhere in the code.

A metric declared and never set shows on dashboards as a flat nothing and misleads;
this reads the sources (no import needed) and finds, for each metric object, a call
that records into it.
"""

from __future__ import annotations

import re

import pytest
from prometheus_client import Counter, Gauge, Histogram
from tests.conftest import REPO_ROOT

from pepite_kit import metrics

METRICS_FILE = REPO_ROOT / "libs" / "kit" / "src" / "pepite_kit" / "metrics.py"
SOURCES = {
    str(path.relative_to(REPO_ROOT)): path.read_text()
    for root in (*REPO_ROOT.glob("libs/*/src"), *REPO_ROOT.glob("services/*/src"))
    for path in root.rglob("*.py")
    if path != METRICS_FILE
}
DECLARED = sorted(
    name
    for name, value in vars(metrics).items()
    if name.isupper() and isinstance(value, Counter | Gauge | Histogram)
)


def test_metrics_are_declared_with_the_prefix() -> None:
    assert len(DECLARED) > 30
    for name in DECLARED:
        assert getattr(metrics, name)._name.startswith("pepite_"), name


@pytest.mark.parametrize("name", DECLARED)
def test_metric_is_recorded_somewhere(name: str) -> None:
    recorded = re.compile(rf"\b{name}\s*\.\s*(?:labels|inc|dec|set|observe|time)\s*\(")
    users = [path for path, text in SOURCES.items() if recorded.search(text)]
    assert users, f"{name} is declared in pepite_kit.metrics but never recorded"
