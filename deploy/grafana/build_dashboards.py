"""Write Pépite's Grafana dashboards: the JSON files in deploy/grafana/dashboards.

    uv run python deploy/grafana/build_dashboards.py           # (re)write the JSON files
    uv run python deploy/grafana/build_dashboards.py --check   # exit 1 if they are out of date

The JSON is generated, never edited by hand: panels are declared below as titles and
PromQL, and the layout, ids and datasource references are filled in the same way for
every panel. tests/deploy/test_observability_config.py checks that the committed
files are this script's output, that every metric they name is defined in
pepite_kit.metrics, and tests/e2e/test_observability.py runs every query against a
real Prometheus.

Every query filters on ``env`` (the local stack labels each run's services with it;
the compose stack has none, which the ``All`` value ``.*`` matches too).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT_DIR = HERE / "dashboards"

#: The provisioned datasource (deploy/grafana/provisioning/datasources/prometheus.yml).
DATASOURCE = {"type": "prometheus", "uid": "pepite-prometheus"}

#: Label matcher every query carries, so one local run's services can be singled out.
ENV = 'env=~"$env"'
COMMUNITY = 'community=~"$community"'
RATE = "$__rate_interval"

GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and how its series are named in the legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel: a title, what it shows (description) and its queries."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Row:
    """A titled row; the panels after it, up to the next row, belong to it."""

    title: str


@dataclass(frozen=True)
class Variable:
    """A template variable filled from ``label_values(selector, label)``."""

    name: str
    label: str
    selector: str
    include_all: bool = True


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    items: tuple[Panel | Row, ...]
    variables: tuple[Variable, ...] = field(default=())

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


ENV_VARIABLE = Variable("env", "Environment", 'up{job="pepite"}')


def rate(metric: str, by: str, matchers: str = ENV, window: str = RATE) -> str:
    return f"sum by ({by}) (rate({metric}{{{matchers}}}[{window}]))"


def quantile(q: float, histogram: str, by: str, matchers: str = ENV) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(rate({histogram}_bucket{{{matchers}}}[{RATE}])))"
    )


def latency(histogram: str, by: str, legend: str, matchers: str = ENV) -> tuple[Query, ...]:
    return (
        Query(quantile(0.5, histogram, by, matchers), f"p50 {legend}"),
        Query(quantile(0.99, histogram, by, matchers), f"p99 {legend}"),
    )


CONSUMER = "{{group}} ← {{topic}}"

PIPELINE = Dashboard(
    uid="pepite-pipeline",
    title="Pépite / Pipeline health",
    description="Kafka consumers and producers of every service, analysis and LLM spend.",
    variables=(ENV_VARIABLE,),
    items=(
        Row("Services"),
        Panel(
            "Services up",
            "1 when Prometheus' last scrape of the service succeeded.",
            (Query(f'min by (service) (up{{job="pepite", {ENV}}})', "{{service}}"),),
            kind="stat",
            width=24,
            height=4,
        ),
        Row("Consumers"),
        Panel(
            "Records consumed",
            "Records fetched from each topic by each consumer group, per second.",
            (Query(rate("pepite_consumer_records_consumed_total", "topic, group"), CONSUMER),),
            unit="ops",
        ),
        Panel(
            "Records processed",
            "Records handled and committed, per second, by topic and consumer group.",
            (Query(rate("pepite_consumer_records_processed_total", "topic, group"), CONSUMER),),
            unit="ops",
        ),
        Panel(
            "Records failed",
            "Records whose decoding or handler failed, per second (stage: decode or handler).",
            (
                Query(
                    rate("pepite_consumer_records_failed_total", "topic, group, stage"),
                    "{{stage}} {{group}} ← {{topic}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Consumer lag",
            "Records on the broker not yet processed by the group, over its partitions.",
            (Query(f"max by (topic, group) (pepite_consumer_lag_records{{{ENV}}})", CONSUMER),),
            unit="short",
        ),
        Panel(
            "Handler latency",
            "Time a handler took for one batch: median and 99th percentile.",
            latency("pepite_consumer_handler_seconds", "topic, group", CONSUMER),
            unit="s",
        ),
        Panel(
            "Handler retries",
            "Retries of a batch's handler (kind: transient infrastructure failure or error).",
            (
                Query(
                    rate("pepite_consumer_retries_total", "topic, group, kind"),
                    "{{kind}} {{group}} ← {{topic}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Dead-letter queue size",
            "Records waiting in each topic's dead-letter twin.",
            (Query(f"max by (topic) (pepite_dead_letter_records{{{ENV}}})", "{{topic}}"),),
        ),
        Panel(
            "Records dead-lettered",
            "Records sent to a dead-letter topic, per second.",
            (Query(rate("pepite_consumer_records_dead_lettered_total", "topic, group"), CONSUMER),),
            unit="ops",
        ),
        Row("Producers"),
        Panel(
            "Records produced",
            "Records the broker acknowledged, per second, by topic.",
            (Query(rate("pepite_producer_records_total", "topic"), "{{topic}}"),),
            unit="ops",
        ),
        Panel(
            "Producer errors",
            "Records the broker did not acknowledge, per second, by topic.",
            (Query(rate("pepite_producer_errors_total", "topic"), "{{topic}}"),),
            unit="ops",
        ),
        Row("Analysis"),
        Panel(
            "Analyzer throughput",
            "Messages whose analysis was stored, per second, by analyzer.",
            (Query(rate("pepite_messages_analyzed_total", "analyzer"), "{{analyzer}}"),),
            unit="ops",
        ),
        Panel(
            "Analyzer batch latency",
            "Time to analyze one batch of messages: median and 99th percentile.",
            latency("pepite_analyzer_batch_seconds", "analyzer", "{{analyzer}}"),
            unit="s",
        ),
        Panel(
            "Messages embedded",
            "Messages turned into sentence embeddings, per second (local analysis).",
            (
                Query(
                    f"sum(rate(pepite_messages_embedded_total{{{ENV}}}[{RATE}]))",
                    "embedded",
                ),
            ),
            unit="ops",
        ),
        Row("LLM"),
        Panel(
            "LLM tokens",
            "Tokens billed, per second, by model and kind (prompt or completion).",
            (Query(rate("pepite_llm_tokens_total", "model, kind"), "{{model}} {{kind}}"),),
            unit="short",
        ),
        Panel(
            "LLM cost",
            "Estimated spend over the dashboard's time range, by model.",
            (
                Query(
                    f"sum by (model) (increase(pepite_llm_cost_usd_total{{{ENV}}}[$__range]))",
                    "{{model}}",
                ),
            ),
            unit="currencyUSD",
            kind="stat",
        ),
        Panel(
            "LLM cache hits",
            "Messages answered from the analysis cache instead of a paid call, per second.",
            (Query(f"sum(rate(pepite_llm_cache_hits_total{{{ENV}}}[{RATE}]))", "cache hits"),),
            unit="ops",
        ),
        Panel(
            "LLM fallbacks",
            "Messages analyzed locally instead of by the LLM, per second, by reason.",
            (Query(rate("pepite_llm_fallbacks_total", "reason"), "{{reason}}"),),
            unit="ops",
        ),
    ),
)

API_ONLY = f'service="api", {ENV}'

API = Dashboard(
    uid="pepite-api",
    title="Pépite / API",
    description="Requests the API served, its errors and latency, by route template.",
    variables=(ENV_VARIABLE,),
    items=(
        Panel(
            "API requests",
            "Requests served per second, by route template and status code.",
            (
                Query(
                    rate("pepite_http_requests_total", "method, route, status", API_ONLY),
                    "{{status}} {{method}} {{route}}",
                ),
            ),
            unit="reqps",
            width=24,
        ),
        Panel(
            "API 5xx rate",
            "Share of requests answered with a server error (5xx).",
            (
                Query(
                    f'(sum(rate(pepite_http_requests_total{{{API_ONLY}, status=~"5.."}}[{RATE}]))'
                    " or vector(0))"
                    f" / sum(rate(pepite_http_requests_total{{{API_ONLY}}}[{RATE}]))",
                    "5xx share",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "API 5xx by route",
            "Server errors per second, by route template.",
            (
                Query(
                    rate(
                        "pepite_http_requests_total", "method, route", f'{API_ONLY}, status=~"5.."'
                    ),
                    "{{method}} {{route}}",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "API latency",
            "Request latency by route template: median and 99th percentile.",
            latency(
                "pepite_http_request_seconds", "method, route", "{{method}} {{route}}", API_ONLY
            ),
            unit="s",
            width=24,
        ),
        Panel(
            "API 4xx by route",
            "Requests refused as bad, unauthorized or not found, per second, by route.",
            (
                Query(
                    rate(
                        "pepite_http_requests_total",
                        "route, status",
                        f'{API_ONLY}, status=~"4.."',
                    ),
                    "{{status}} {{route}}",
                ),
            ),
            unit="reqps",
            width=24,
        ),
    ),
)

WEBHOOKS = Dashboard(
    uid="pepite-webhooks-alerts",
    title="Pépite / Webhooks and alerts",
    description="Webhook deliveries of the API worker, and the alerts the services raise.",
    variables=(ENV_VARIABLE,),
    items=(
        Row("Webhooks"),
        Panel(
            "Delivery attempts by outcome",
            "Webhook delivery attempts per second, by outcome (success or failure).",
            (Query(rate("pepite_webhook_attempts_total", "outcome"), "{{outcome}}"),),
            unit="ops",
        ),
        Panel(
            "Deliveries",
            "Deliveries accepted by receivers and deliveries given up, per second.",
            (
                Query(
                    rate("pepite_webhook_deliveries_succeeded_total", "event_type"),
                    "succeeded {{event_type}}",
                ),
                Query(
                    rate("pepite_webhook_deliveries_failed_total", "event_type"),
                    "failed {{event_type}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Delivery retries",
            "Deliveries scheduled for another attempt, per second, by event type.",
            (Query(rate("pepite_webhook_retries_total", "event_type"), "{{event_type}}"),),
            unit="ops",
        ),
        Panel(
            "Attempt latency",
            "Time one delivery attempt took: median and 99th percentile, by event type.",
            latency("pepite_webhook_attempt_seconds", "event_type", "{{event_type}}"),
            unit="s",
        ),
        Panel(
            "Deliveries failed",
            "Deliveries given up over the dashboard's time range.",
            (
                Query(
                    f"sum(increase(pepite_webhook_deliveries_failed_total{{{ENV}}}[$__range]))",
                    "failed",
                ),
            ),
            kind="stat",
        ),
        Panel(
            "Subscriptions disabled",
            "Subscriptions disabled automatically over the dashboard's time range.",
            (
                Query(
                    "sum(increase(pepite_webhook_subscriptions_disabled_total"
                    f"{{{ENV}}}[$__range]))",
                    "disabled",
                ),
            ),
            kind="stat",
        ),
        Row("Alerts"),
        Panel(
            "Alerts raised",
            "Alerts raised in the last hour, by kind and severity.",
            (
                Query(
                    f"sum by (kind, severity) (increase(pepite_alerts_raised_total{{{ENV}}}[1h]))",
                    "{{severity}} {{kind}}",
                ),
            ),
        ),
        Panel(
            "Open alerts",
            "Alerts not yet resolved, by kind, over all communities.",
            (
                Query(
                    "sum by (kind) (max by (community, kind) "
                    f"(pepite_community_open_alerts{{{ENV}}}))",
                    "{{kind}}",
                ),
            ),
        ),
    ),
)

#: Community gauges are exported by every API worker alike: ``max`` keeps one copy.
PER_COMMUNITY = f"{ENV}, {COMMUNITY}"

COMMUNITY_PULSE = Dashboard(
    uid="pepite-community",
    title="Pépite / Community pulse",
    description="What the communities are saying: volume, insights, sentiment, open alerts.",
    variables=(
        ENV_VARIABLE,
        Variable("community", "Community", f"pepite_community_messages_24h{{{ENV}}}"),
    ),
    items=(
        Panel(
            "Messages per day",
            "Messages stored over the last 24 hours, by community.",
            (
                Query(
                    f"max by (community) (pepite_community_messages_24h{{{PER_COMMUNITY}}})",
                    "{{community}}",
                ),
            ),
        ),
        Panel(
            "Last ingestion age",
            "Time since the community's last message was ingested.",
            (
                Query(
                    "time() - max by (community) "
                    f"(pepite_community_last_ingested_timestamp_seconds{{{PER_COMMUNITY}}})",
                    "{{community}}",
                ),
            ),
            unit="s",
            kind="stat",
        ),
        Panel(
            "Insights by kind",
            "Insight-bearing messages over the last 7 days, by kind.",
            (
                Query(
                    "sum by (kind) (max by (community, kind) "
                    f"(pepite_community_insights_7d{{{PER_COMMUNITY}}}))",
                    "{{kind}}",
                ),
            ),
        ),
        Panel(
            "Sentiment",
            "Messages over the last 7 days, by sentiment.",
            (
                Query(
                    "sum by (sentiment) (max by (community, sentiment) "
                    f"(pepite_community_sentiment_7d{{{PER_COMMUNITY}}}))",
                    "{{sentiment}}",
                ),
            ),
        ),
        Panel(
            "Open alerts",
            "Alerts not yet resolved, by kind.",
            (
                Query(
                    "sum by (kind) (max by (community, kind) "
                    f"(pepite_community_open_alerts{{{PER_COMMUNITY}}}))",
                    "{{kind}}",
                ),
            ),
        ),
        Panel(
            "Gauges age",
            "Time since the API worker last refreshed these community figures.",
            (
                Query(
                    f"time() - max(pepite_community_gauges_refreshed_timestamp_seconds{{{ENV}}})",
                    "age",
                ),
            ),
            unit="s",
            kind="stat",
        ),
        Panel(
            "Gauge refresh errors",
            "Failed refreshes of the API worker's gauges, per second (the gauges keep their"
            " previous values meanwhile).",
            (Query(rate("pepite_gauges_refresh_errors_total", "part"), "{{part}}"),),
            unit="ops",
        ),
    ),
)

DASHBOARDS = (PIPELINE, API, WEBHOOKS, COMMUNITY_PULSE)


# --------------------------------------------------------------------------- rendering


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": True,
            "refId": chr(ord("A") + index),
        }
        for index, query in enumerate(panel.queries)
    ]
    if panel.kind == "stat":
        options: dict[str, Any] = {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
        custom: dict[str, Any] = {}
    else:
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        custom = {"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never"}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "custom": custom, "min": 0},
            "overrides": [],
        },
        "options": options,
        "targets": targets,
    }


def _variable_json(variable: Variable) -> dict[str, Any]:
    definition = f"label_values({variable.selector}, {variable.name})"
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"qryType": 1, "query": definition, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,
        "includeAll": variable.include_all,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of ``dashboard``: panels laid out left to right, in rows."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, item in enumerate(dashboard.items, start=1):
        if x + (GRID_WIDTH if isinstance(item, Row) else item.width) > GRID_WIDTH or (
            isinstance(item, Row) and x
        ):
            x, y, row_height = 0, y + row_height, 0
        if isinstance(item, Row):
            panels.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            continue
        panels.append(_panel_json(item, panel_id, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["pepite"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [_variable_json(variable) for variable in dashboard.variables]},
        "panels": panels,
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        dashboard.filename: json.dumps(dashboard_json(dashboard), indent=2, ensure_ascii=False)
        + "\n"
        for dashboard in DASHBOARDS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUTPUT_DIR / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    print(f"{len(stale)} dashboard(s) written" if stale else "dashboards up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
