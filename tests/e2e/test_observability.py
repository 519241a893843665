"""Every dashboard query and alert rule, run by the local stack's real Prometheus against
real services: the analyzed sample community (the classifier that analyzed it was
scraped while it ran), replayed by the other services, with a few API requests on top.

The services register with Prometheus through the targets file deploy/local/services.py
writes; each query is sent the way Grafana would send it, with the dashboard's variables
set to this run's environment and the sample community.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

import services  # deploy/local/services.py, on sys.path through tests/e2e/conftest.py
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import ClassifiedSample, ServiceProcess, free_port, wait_for

# Whichever test comes first waits for the sample to be analyzed (about four minutes).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PROMETHEUS = f"http://127.0.0.1:{os.environ.get('PEPITE_PROMETHEUS_PORT') or 9090}"
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
COMMUNITY = "sample"
#: Every service but the classifier, which the shared fixture ran (and stopped).
SERVICES = ("api", "api-worker", "digest", "leaderboard", "ingestor")
#: How far back the core panels are looked at: the classifier's samples are from when
#: the shared fixture ran, before this module, as a dashboard set to 3 hours shows them.
RANGE_S = 3 * 3600
STEP_S = 30
#: Grafana's $__rate_interval for the provisioned datasource: 4 x its 15 s timeInterval.
RATE_INTERVAL = "1m"
#: Panels that must show data for this environment: (dashboard file, panel title).
CORE_PANELS = frozenset(
    {
        ("pepite-pipeline.json", "Records processed"),
        ("pepite-pipeline.json", "Consumer lag"),
        ("pepite-pipeline.json", "Handler latency"),
        ("pepite-pipeline.json", "Analyzer throughput"),
        ("pepite-api.json", "API requests"),
        ("pepite-api.json", "API latency"),
        ("pepite-community.json", "Messages per day"),
        ("pepite-community.json", "Insights by kind"),
        ("pepite-community.json", "Last ingestion age"),
    }
)


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel}"


def panel_queries() -> list[PanelQuery]:
    queries = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append(PanelQuery(path.name, panel["title"], target["expr"]))
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
            assert match, f"{path.name}: ${variable['name']}"
            queries.append(PanelQuery(path.name, f"${variable['name']}", match[1]))
    return queries


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(RULES_DIR.glob("*.y*ml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                found.append((f"{path.name}: {name}", rule["expr"]))
    return found


def grafana_expr(expr: str, *, env: str, range_s: int) -> str:
    """``expr`` with the variables Grafana would substitute."""
    return (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", f"{range_s}s")
        .replace("$env", re.escape(env))
        .replace("$community", re.escape(COMMUNITY))
    )


class Prometheus:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def _data(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.http.get(path, params=params)
        body = response.json()
        assert response.status_code == 200, f"{params['query']}: {body.get('error')}"
        assert body["status"] == "success", f"{params['query']}: {body.get('error')}"
        assert body["data"]["resultType"] in {"vector", "matrix", "scalar"}, params["query"]
        result = body["data"]["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self._data("/api/v1/query", {"query": expr, "time": time.time()})

    def query_range(self, expr: str, seconds: int, step: int) -> list[dict[str, Any]]:
        end = time.time()
        params = {"query": expr, "start": end - seconds, "end": end, "step": step}
        return self._data("/api/v1/query_range", params)


@dataclass(frozen=True)
class Observed:
    env_name: str
    prometheus: Prometheus
    api: ServiceProcess


@pytest.fixture(scope="module")
def observed(classified_sample: ClassifiedSample) -> Iterator[Observed]:
    """The other services, started on the shared sample's topics and database, scraped."""
    started_at = time.monotonic()
    env = classified_sample.env
    env_name = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"].strip(".")
    prometheus = Prometheus(PROMETHEUS)
    try:
        config = prometheus.http.get("/api/v1/status/config").json()["data"]["yaml"]
    except httpx.HTTPError as exc:
        pytest.fail(f"the local stack's Prometheus is not reachable at {PROMETHEUS}: {exc}")
    targets_file = services.targets_file()
    assert str(targets_file) in config, (
        f"Prometheus does not read {targets_file}: run `deploy/local/stack.py up` to reload it"
    )
    extra = {
        # Refreshed often so the community gauges appear within seconds, not 30.
        "PEPITE_COMMUNITY_GAUGES_SECONDS": "2",
        "PEPITE_KNOWLEDGE_WARM_UP": "false",
    }
    started = [
        ServiceProcess(name, free_port(), {**env.vars, **extra}, env.tmp / f"obs-{name}.log")
        for name in SERVICES
    ]
    try:
        for service in started:
            service.start()
        for service in started:
            service.wait_healthy(timeout_s=120)

        def all_scraped() -> bool:
            up = prometheus.query(f'up{{job="pepite", env="{env_name}"}} == 1')
            return {series["metric"]["service"] for series in up} >= set(SERVICES)

        wait_for(all_scraped, within_s=60, what="Prometheus to scrape every service")
        print(
            f"\n{len(started)} services started and scraped in {time.monotonic() - started_at:.1f}s"
        )
        yield Observed(env_name, prometheus, next(s for s in started if s.name == "api"))
    finally:
        stopping = time.monotonic()
        with ThreadPoolExecutor(len(started)) as pool:
            # They only replayed the sample: no need to wait long for a clean exit.
            codes = list(pool.map(lambda service: service.stop(timeout_s=10), started))
        print(f"services stopped in {time.monotonic() - stopping:.1f}s (exit codes {codes})")
    assert not any(
        group["labels"]["env"] == env_name for group in json.loads(targets_file.read_text())
    ), "stopped services are still registered with Prometheus"


def call_the_api(observed: Observed, classified_sample: ClassifiedSample) -> set[str]:
    """Requests that succeed, are refused and are not found; returns the routes called."""
    key = json.loads(
        classified_sample.env.pepite(
            "keys", "create", "--community", COMMUNITY, "--scope", "admin"
        ).stdout
    )["key"]
    client = httpx.Client(
        base_url=observed.api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    base = f"/v1/communities/{COMMUNITY}"
    for path in (base, f"{base}/status", f"{base}/insights", f"{base}/topics"):
        assert client.get(path).status_code == 200, path
    assert client.get(f"{base}/messages", params={"limit": 5}).status_code == 200
    assert client.get(f"{base}/messages/no-such-message").status_code in {400, 404}
    assert httpx.get(f"{observed.api.url}{base}", timeout=30).status_code == 401
    return {
        "/v1/communities/{community_id}",
        "/v1/communities/{community_id}/status",
        "/v1/communities/{community_id}/insights",
        "/v1/communities/{community_id}/topics",
        "/v1/communities/{community_id}/messages",
        "/v1/communities/{community_id}/messages/{message_id}",
    }


def test_every_dashboard_query_and_alert_rule_runs_and_core_panels_show_data(
    observed: Observed, classified_sample: ClassifiedSample
) -> None:
    prometheus, env_name = observed.prometheus, observed.env_name
    routes = call_the_api(observed, classified_sample)
    queries = panel_queries()
    assert {(q.dashboard, q.panel) for q in queries} >= CORE_PANELS

    # The scrapes of the API's own /healthz count too: wait for the routes just called.
    api_requests = next(q for q in queries if q.panel == "API requests")

    def requests_shown() -> bool:
        series = prometheus.query(grafana_expr(api_requests.expr, env=env_name, range_s=3600))
        return routes <= {s["metric"].get("route") for s in series}

    wait_for(requests_shown, within_s=60, what="the API requests panel to show the routes called")

    def empty_core_panels() -> set[tuple[str, str]]:
        empty = set()
        for query in queries:
            if (query.dashboard, query.panel) not in CORE_PANELS:
                continue
            expr = grafana_expr(query.expr, env=env_name, range_s=RANGE_S)
            if not prometheus.query_range(expr, RANGE_S, STEP_S):
                empty.add((query.dashboard, query.panel))
        return empty

    # rate() needs two scrapes after the requests, the gauges one refresh.
    wait_for(lambda: not empty_core_panels(), within_s=90, what="every core panel to show data")

    with_data_now = []
    for query in queries:
        expr = grafana_expr(query.expr, env=env_name, range_s=3600)
        if prometheus.query(expr):
            with_data_now.append(query.where)
        prometheus.query_range(expr, 600, STEP_S)  # raises if Prometheus refuses it
    for where, expr in rule_expressions():
        assert isinstance(prometheus.query(expr), list), where
    variables = {
        query.panel: prometheus.query(grafana_expr(query.expr, env=env_name, range_s=3600))
        for query in queries
        if query.panel.startswith("$")
    }
    assert env_name in {series["metric"].get("env") for series in variables["$env"]}
    assert COMMUNITY in {series["metric"].get("community") for series in variables["$community"]}
    print(f"\n{len(queries)} panel queries and {len(rule_expressions())} rules ran; with data now:")
    for where in sorted(set(with_data_now)):
        print(f"  {where}")
