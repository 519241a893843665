"""Dashboards, alert rules and scrape configs, checked without a running Prometheus.

promtool (from the Prometheus the local stack uses) checks both scrape configs and
every rules file; the dashboards must be the output of deploy/grafana/build_dashboards.py,
use the provisioned datasource, and name only metrics Pépite defines. The queries
themselves are run against a real Prometheus in tests/e2e/test_observability.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from pepite_kit import metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"

#: Series Prometheus makes itself for every target.
BUILT_IN_METRICS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
#: The series names a metric of each type is exposed as, after its base name.
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}
PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "atan2"}
)
SEVERITIES = {"info", "warning", "critical"}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


stack = load_module(REPO_ROOT / "deploy" / "local" / "stack.py", "pepite_local_stack")
services = load_module(REPO_ROOT / "deploy" / "local" / "services.py", "pepite_local_services")
build_dashboards = load_module(GRAFANA_DIR / "build_dashboards.py", "pepite_build_dashboards")


# --------------------------------------------------------------------------- helpers


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every variable's selector."""
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                yield f"{name} / {panel['title']} / {target['refId']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(
                r"label_values\((?P<selector>.+),\s*\w+\)", variable["query"]["query"]
            )
            assert match, (
                f"{name}: variable {variable['name']} is not label_values(selector, label)"
            )
            yield f"{name} / ${variable['name']}", match["selector"]


def rule_files() -> list[Path]:
    return sorted([*RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.yaml")])


def rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                yield path, rule


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values may hold anything
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text):
        if match[1] not in PROMQL_KEYWORDS:
            names.add(match[1])
    return names


def defined_metric_names() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def find_promtool() -> Path | None:
    """promtool beside the prometheus binary deploy/local/stack.py runs (its Prometheus part)."""
    on_path = shutil.which("prometheus")
    candidates = [Path(on_path).parent / "promtool"] if on_path else []
    config = stack.Config.from_env()
    candidates.append(config.stack_dir / "deb" / "prometheus" / "usr" / "bin" / "promtool")
    if which := shutil.which("promtool"):
        candidates.append(Path(which))
    return next((path for path in candidates if path.is_file()), None)


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = find_promtool()
    if path is None:
        pytest.skip(
            "no promtool: neither beside a prometheus on PATH nor in the local stack's "
            "unpacked package (run `make stack-up` to install it)"
        )
    return path


def run_promtool(promtool: Path, *args: str) -> str:
    done = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, check=False, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.fixture
def rendered_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local config as deploy/local/stack.py renders it, into a scratch data folder."""
    monkeypatch.setenv("PEPITE_DATA_DIR", str(tmp_path))
    part = stack.Prometheus(stack.Config.from_env(), stack.Output(quiet=True))
    assert part.render_config()
    return Path(part.config_file)


# --------------------------------------------------------------------------- scrape configs


def test_local_config_passes_promtool(promtool: Path, rendered_local: Path) -> None:
    output = run_promtool(promtool, "check", "config", str(rendered_local))
    assert "SUCCESS" in output
    assert str(RULES_DIR) in output  # the rules were found and checked along


def test_compose_config_passes_promtool(promtool: Path, tmp_path: Path) -> None:
    # The rules folder is mounted at /etc/prometheus/rules in the container.
    text = (PROMETHEUS_DIR / "prometheus.compose.yml").read_text()
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/rules", str(RULES_DIR)))
    output = run_promtool(promtool, "check", "config", str(config))
    assert str(RULES_DIR) in output


def test_local_config_reads_the_targets_file_services_write(rendered_local: Path) -> None:
    config = yaml.safe_load(rendered_local.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    files = [path for sd in jobs["pepite"]["file_sd_configs"] for path in sd["files"]]
    assert files == [str(services.targets_file())]
    assert json.loads(services.targets_file().read_text()) == []
    assert "{{" not in rendered_local.read_text()


def test_started_services_register_and_stopped_ones_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEPITE_DATA_DIR", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    services.register_target("digest", 18103, gone.pid, "tdead")
    services.register_target("api", 18000, os.getpid(), "local")
    services.register_target("classifier", 18102, os.getpid(), "t1234")
    services.register_target("api", 18000, os.getpid(), "t5678")  # the port was reused

    groups = json.loads(services.targets_file().read_text())
    # The dead process's entry is gone, and a port is listed once, with its last owner.
    assert {(g["targets"][0], g["labels"]["service"], g["labels"]["env"]) for g in groups} == {
        ("127.0.0.1:18102", "classifier", "t1234"),
        ("127.0.0.1:18000", "api", "t5678"),
    }
    services.unregister_target(18102)
    services.unregister_target(18102)
    groups = json.loads(services.targets_file().read_text())
    assert [g["targets"] for g in groups] == [["127.0.0.1:18000"]]


def test_env_label_is_the_topic_prefix_or_local() -> None:
    assert services.env_label({"PEPITE_KAFKA_TOPIC_PREFIX": "tabc123."}) == "tabc123"
    assert services.env_label({}) == services.LOCAL_ENV


# --------------------------------------------------------------------------- rules


def test_every_rules_file_passes_promtool(promtool: Path) -> None:
    files = rule_files()
    assert len(files) >= 2
    for path in files:
        run_promtool(promtool, "check", "rules", str(path))


def test_the_alerts_operators_rely_on_exist() -> None:
    alerts = {rule["alert"]: rule for _, rule in rules() if "alert" in rule}
    names = {name: metric_names(rule["expr"]) for name, rule in alerts.items()}
    assert "PepiteServiceDown" in alerts
    assert "pepite_consumer_lag_records" in names["PepiteConsumerLagGrowing"]
    assert "pepite_dead_letter_records" in names["PepiteDeadLetterQueueGrowing"]
    assert "pepite_http_requests_total" in names["PepiteApiErrorRateHigh"]
    assert "pepite_webhook_deliveries_failed_total" in names["PepiteWebhookDeliveriesFailing"]
    assert "pepite_community_last_ingested_timestamp_seconds" in names["PepiteCommunitySilent"]


def test_every_alert_has_a_severity_and_says_what_to_do() -> None:
    for path, rule in rules():
        if "alert" not in rule:
            continue
        where = f"{path.name}: {rule['alert']}"
        assert rule["labels"]["severity"] in SEVERITIES, where
        assert rule["annotations"]["summary"].strip(), where
        assert len(rule["annotations"]["description"].split()) >= 8, where
        if rule["labels"]["severity"] != "info":
            assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{where}: no `for`"


# --------------------------------------------------------------------------- dashboards


def test_dashboards_are_the_build_script_output() -> None:
    rendered = build_dashboards.render()
    committed = {path.name for path in DASHBOARDS_DIR.glob("*.json")}
    assert committed == set(rendered), "run deploy/grafana/build_dashboards.py"
    for name, text in rendered.items():
        assert (DASHBOARDS_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is out of date: run deploy/grafana/build_dashboards.py"
        )


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    found = dashboards()
    uids = [dashboard["uid"] for dashboard in found.values()]
    assert len(set(uids)) == len(uids)
    assert set(uids) == {
        "pepite-pipeline",
        "pepite-api",
        "pepite-webhooks-alerts",
        "pepite-community",
    }
    community = found["pepite-community.json"]["templating"]["list"]
    assert "community" in {variable["name"] for variable in community}


def test_every_panel_queries_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uid = next(source["uid"] for source in provisioned if source["type"] == "prometheus")
    expected = {"type": "prometheus", "uid": uid}
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"] == expected, f"{name}: ${variable['name']}"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            where = f"{name}: {panel['title']}"
            assert panel["datasource"] == expected, where
            assert panel["targets"], f"{where} has no query"
            for target in panel["targets"]:
                assert target["datasource"] == expected, where
                assert target["expr"].strip(), where


def test_panels_fit_the_grid_and_have_unique_ids() -> None:
    for name, dashboard in dashboards().items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(set(ids)) == len(ids), name
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] >= 0, f"{name}: {panel['title']}"
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"


def test_every_metric_named_is_defined_or_built_in() -> None:
    known = defined_metric_names() | BUILT_IN_METRICS
    expressions = [*dashboard_expressions()]
    expressions += [(f"{path.name}: {rule.get('alert')}", rule["expr"]) for path, rule in rules()]
    unknown = {
        f"{where}: {name}"
        for where, expr in expressions
        for name in metric_names(expr)
        if name not in known
    }
    assert not unknown, "metrics not defined in pepite_kit.metrics:\n" + "\n".join(sorted(unknown))


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(pepite_http_request_seconds_bucket{route=~"a.b"}[5m])))'
        " / on (env) group_left (x) (time() - max(up offset 5m)) > 1e3 and bool foo:bar"
    )
    assert metric_names(expr) == {"pepite_http_request_seconds_bucket", "up", "foo:bar"}
    assert "pepite_consumer_lag_records" in defined_metric_names()
    assert "pepite_http_request_seconds_bucket" in defined_metric_names()
    assert "pepite_http_requests_total" in defined_metric_names()
