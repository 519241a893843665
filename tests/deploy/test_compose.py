"""The docker compose stack, checked without a Docker engine.

docker-compose.yml and the files it mounts are parsed and checked for the
properties a production deployment relies on: pinned images, health checks
that gate start-up order, required secrets, KRaft Kafka, a MongoDB replica
set, and Prometheus and Grafana wired to the services. When the docker
compose plugin is installed, ``docker compose config`` (which needs no
daemon) also validates the file against the compose specification.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.compose.yml"
GRAFANA_PROVISIONING = REPO_ROOT / "deploy" / "grafana" / "provisioning"

WORKERS = ("ingestor", "classifier", "digest", "leaderboard")
APP_SERVICES = (*WORKERS, "api", "api-worker")
#: Services run from another service's image (the API's worker from the API's).
IMAGE_OF = {"api-worker": "api"}
ALL_SERVICES = ("kafka", "mongodb", *APP_SERVICES, "prometheus", "grafana")
#: Variables compose must refuse to run without.
REQUIRED_SECRETS = (
    "MONGO_ROOT_PASSWORD",
    "PEPITE_API_ADMIN_KEY",
    "PEPITE_SECRETS_KEY",
    "GRAFANA_ADMIN_PASSWORD",
)
#: The only ports reachable from the host, and only on loopback.
PUBLISHED = {"api": "127.0.0.1:8000:8000", "grafana": "127.0.0.1:3000:3000"}

SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY")
#: ``${VAR:?message}``: compose fails when VAR is unset or empty.
REQUIRED_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}")
#: major.minor.patch, optionally followed by a variant (``3.11.14-slim-bookworm``).
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+._][0-9A-Za-z][0-9A-Za-z._+-]*)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
HEALTHZ_URL = re.compile(r"http://127\.0\.0\.1:(?P<port>\d+)/healthz")
#: Any compose interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``...
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return dict(pairs)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def interpolate(value: str) -> str:
    """Resolve compose interpolation as an empty environment would, except that a
    required variable becomes ``required-<NAME>`` instead of an error."""

    def resolve(match: re.Match[str]) -> str:
        if match["op"] in {":-", "-"}:
            return match["arg"]
        if match["op"] == ":?":
            return f"required-{match['name']}"
        return f"optional-{match['name']}"

    return VARIABLE.sub(resolve, value).replace("$$", "$")


def build_args_of(service: Mapping[str, Any]) -> dict[str, str]:
    args = service.get("build", {}).get("args") or {}
    if isinstance(args, list):
        return dict(item.split("=", 1) for item in args)
    return {str(key): str(value) for key, value in args.items()}


def image_pin_problem(reference: str) -> str | None:
    """Why an image reference is not pinned to one exact image, or None if it is."""
    name, _, digest = reference.partition("@")
    if digest:
        return None if DIGEST.match(digest) else f"malformed digest {digest!r}"
    last_segment = name.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return "no tag (implicitly latest)"
    tag = last_segment.rsplit(":", 1)[1]
    if "latest" in tag.lower():
        return f"floating tag {tag!r}"
    if "$" in tag:
        return f"tag {tag!r} comes from the environment"
    if not EXACT_TAG.match(tag):
        return f"tag {tag!r} is not an exact major.minor.patch version"
    return None


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical.append(line[:-1].strip())
            continue
        logical.append(line)
        joined = " ".join(part for part in logical if part)
        logical = []
        keyword, _, arguments = joined.partition(" ")
        yield keyword.upper(), arguments.strip()


def healthcheck_command(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict), "docker-compose.yml must be a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return list(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- structure


def test_compose_file_follows_the_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the compose spec has no version key"
    assert set(compose) <= {"name", "services", "volumes", "networks", "configs", "secrets"} | {
        key for key in compose if str(key).startswith("x-")
    }


def test_every_part_of_the_stack_is_a_service(services: dict[str, Any]) -> None:
    missing = set(ALL_SERVICES) - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_every_service_restarts_unless_stopped(services: dict[str, Any]) -> None:
    wrong = {name: s.get("restart") for name, s in services.items()}
    assert all(value == "unless-stopped" for value in wrong.values()), wrong


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith(("/", ".", "~")):
                assert source in declared, f"{name}: volume {source!r} is not declared"


def test_bind_mounted_files_exist_in_the_repository(services: dict[str, Any]) -> None:
    checked = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
            elif volume.get("type") == "bind":
                source = volume["source"]
            else:
                continue
            if source.startswith(("./", "../")):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
                checked += 1
    assert checked, "expected Prometheus and Grafana configuration to be bind-mounted"


def test_only_the_api_and_grafana_are_published_and_only_on_loopback(
    services: dict[str, Any],
) -> None:
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert published == {name: [port] for name, port in PUBLISHED.items()}


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("apache/kafka:3.9.1", True),
        ("python:3.11.14-slim-bookworm", True),
        ("prom/prometheus:v3.5.0", True),
        ("ghcr.io/astral-sh/uv:0.13.8", True),
        ("mongo@sha256:" + "a" * 64, True),
        ("localhost:5000/pepite/api:1.2.3", True),
        ("mongo", False),
        ("mongo:latest", False),
        ("mongo:7", False),
        ("mongo:7.0", False),
        ("python:3.11-slim-bookworm", False),
        ("grafana/grafana:${GRAFANA_TAG}", False),
        ("localhost:5000/pepite/api", False),
    ],
)
def test_pin_checker(reference: str, pinned: bool) -> None:
    assert (image_pin_problem(reference) is None) is pinned


def test_every_image_is_pinned_to_an_exact_tag(services: dict[str, Any]) -> None:
    problems = {
        name: problem
        for name, service in services.items()
        if "image" in service and (problem := image_pin_problem(str(service["image"])))
    }
    assert not problems, problems


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_app_services_build_from_the_shared_dockerfile(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (REPO_ROOT / build.get("context", ".")).resolve() == REPO_ROOT, name
        assert build["dockerfile"] == "deploy/docker/Dockerfile", name
        assert build_args_of(services[name]) == {"SERVICE": IMAGE_OF.get(name, name)}, name
    assert DOCKERFILE.is_file()


# --------------------------------------------------------------------------- health and order


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        if isinstance(test, str):
            assert test.strip(), name
        else:
            assert isinstance(test, list), name
            assert test[0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck test {test[0]!r}"
            assert len(test) > 1, f"{name}: healthcheck has no command"


def test_every_dependency_waits_for_health(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on must be a mapping"
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert isinstance(options, dict), f"{name} -> {dependency}"
            assert options.get("condition") == "service_healthy", f"{name} -> {dependency}"


def test_app_services_start_after_kafka_and_mongodb(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert set(services[name]["depends_on"]) >= {"kafka", "mongodb"}, name


def test_app_healthchecks_probe_the_port_the_service_listens_on(
    services: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        env = environment_of(services[name])
        expected = "8000" if name == "api" else "8080"
        assert env["PEPITE_HTTP_PORT"] == expected, name
        # The kit binds to loopback by default: Prometheus could not scrape.
        assert env["PEPITE_HTTP_HOST"] == "0.0.0.0", name
        match = HEALTHZ_URL.search(healthcheck_command(services[name]))
        assert match, f"{name}: healthcheck does not GET /healthz"
        assert match["port"] == expected, name


# --------------------------------------------------------------------------- secrets


def test_no_secret_is_a_literal(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in environment_of(service).items():
            upper = key.upper()
            if "KEYFILE" in upper or not SECRET_NAME.search(upper):
                continue
            assert REQUIRED_VAR.search(value), f"{name}: {key} must be set from ${{VAR:?...}}"


def test_credentials_in_uris_come_from_required_variables(services: dict[str, Any]) -> None:
    checked = 0
    for name, service in services.items():
        for key, value in environment_of(service).items():
            if "://" not in value:
                continue
            password = urlsplit(interpolate(value)).password
            if password is not None:
                assert password.startswith("required-"), f"{name}: {key} has a literal password"
                checked += 1
    assert checked >= len(APP_SERVICES)


def test_required_secrets_are_all_demanded(compose_text: str) -> None:
    demanded = {match["name"] for match in REQUIRED_VAR.finditer(compose_text)}
    assert demanded >= set(REQUIRED_SECRETS)


# --------------------------------------------------------------------------- kafka


def test_kafka_runs_kraft_with_a_combined_node(services: dict[str, Any], compose_text: str) -> None:
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = environment_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "CONTROLLER://" in env["KAFKA_LISTENERS"]
    assert "zookeeper" not in compose_text.lower()


def test_kafka_single_node_settings(services: dict[str, Any]) -> None:
    env = environment_of(services["kafka"])
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    # Services create their topics and .dlq twins themselves.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    data_dir = env["KAFKA_LOG_DIRS"]
    assert any(str(v).endswith(f":{data_dir}") for v in services["kafka"]["volumes"])
    assert "kafka-broker-api-versions.sh" in healthcheck_command(services["kafka"])


def test_services_bootstrap_from_the_advertised_listener(services: dict[str, Any]) -> None:
    advertised = environment_of(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert advertised == "PLAINTEXT://kafka:9092"
    for name in APP_SERVICES:
        env = environment_of(services[name])
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert env["PEPITE_KAFKA_IDEMPOTENCE"] == "true", name
        assert env["PEPITE_LOG_FORMAT"] == "json", name


# --------------------------------------------------------------------------- mongodb


def test_mongodb_is_an_authenticated_replica_set(services: dict[str, Any]) -> None:
    mongodb = services["mongodb"]
    assert re.fullmatch(r"mongo:(6\.0|7\.0)\.\d+", str(mongodb["image"]))
    command = [str(part) for part in mongodb["command"]]
    assert "--replSet" in command
    replica_set = command[command.index("--replSet") + 1]
    assert "--bind_ip_all" in command
    # Access control on a replica set requires internal authentication.
    assert "--keyFile" in command
    env = environment_of(mongodb)
    assert REQUIRED_VAR.search(env["MONGO_INITDB_ROOT_PASSWORD"])
    assert env["MONGO_INITDB_ROOT_USERNAME"]
    check = healthcheck_command(mongodb)
    assert "rs.initiate" in check
    assert f"_id: '{replica_set}'" in check
    assert "host: 'mongodb:27017'" in check
    # Credentials are read from the container's environment, not interpolated.
    assert "$$MONGO_INITDB_ROOT_PASSWORD" in check


def test_services_connect_to_the_replica_set_with_auth(services: dict[str, Any]) -> None:
    command = [str(part) for part in services["mongodb"]["command"]]
    replica_set = command[command.index("--replSet") + 1]
    for name in APP_SERVICES:
        uri = urlsplit(interpolate(environment_of(services[name])["MONGODB_URI"]))
        assert uri.scheme == "mongodb", name
        assert uri.hostname == "mongodb", name
        assert uri.port == 27017, name
        query = parse_qs(uri.query)
        assert query["replicaSet"] == [replica_set], name
        assert query["authSource"] == ["admin"], name
        assert uri.username == interpolate(
            environment_of(services["mongodb"])["MONGO_INITDB_ROOT_USERNAME"]
        ), name


# --------------------------------------------------------------------------- api


def test_api_has_a_required_admin_key(services: dict[str, Any]) -> None:
    env = environment_of(services["api"])
    assert REQUIRED_VAR.fullmatch(env["PEPITE_API_ADMIN_KEY"])
    for name in WORKERS:
        assert "PEPITE_API_ADMIN_KEY" not in environment_of(services[name]), name


# --------------------------------------------------------------------------- prometheus


def _scrape_targets() -> dict[str, str]:
    """service label -> target of the Pépite scrape jobs."""
    config = load_yaml(PROMETHEUS_CONFIG)
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            service = (group.get("labels") or {}).get("service")
            if service:
                assert len(group["targets"]) == 1, service
                targets[service] = group["targets"][0]
    return targets


def test_prometheus_config_scrapes_every_service_and_itself() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "prometheus" in jobs
    assert set(_scrape_targets()) == set(APP_SERVICES)


def test_prometheus_targets_match_the_ports_services_listen_on(
    services: dict[str, Any],
) -> None:
    for service, target in _scrape_targets().items():
        port = environment_of(services[service])["PEPITE_HTTP_PORT"]
        assert target == f"{service}:{port}"


def test_prometheus_mounts_its_config_and_rules(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    volumes = [str(v) for v in prometheus["volumes"]]
    assert "./deploy/prometheus/prometheus.compose.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    command = [str(part) for part in prometheus["command"]]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    assert "/-/ready" in healthcheck_command(prometheus)
    config = load_yaml(PROMETHEUS_CONFIG)
    rules_mount = next(v for v in volumes if v.startswith("./deploy/prometheus/rules:"))
    rules_dir = rules_mount.split(":")[1]
    assert any(pattern.startswith(f"{rules_dir}/") for pattern in config["rule_files"])


def test_alert_rules_parse() -> None:
    files = sorted((REPO_ROOT / "deploy" / "prometheus" / "rules").glob("*.y*ml"))
    assert files
    alerts = set()
    for path in files:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                assert rule["expr"], path
                if "alert" in rule:
                    alerts.add(rule["alert"])
    assert "PepiteServiceDown" in alerts


# --------------------------------------------------------------------------- grafana


def test_grafana_datasource_is_the_default_prometheus() -> None:
    config = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")
    assert config["apiVersion"] == 1
    sources = {source["uid"]: source for source in config["datasources"]}
    prometheus = sources["pepite-prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    assert sum(bool(source.get("isDefault")) for source in sources.values()) == 1


def test_grafana_dashboards_provider_reads_the_mounted_folder(
    services: dict[str, Any],
) -> None:
    config = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "pepite.yml")
    paths = {provider["options"]["path"] for provider in config["providers"]}
    assert paths == {"/var/lib/grafana/dashboards"}
    volumes = [str(v) for v in services["grafana"]["volumes"]]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert (REPO_ROOT / "deploy" / "grafana" / "dashboards").is_dir()


def test_grafana_waits_for_prometheus_and_needs_an_admin_password(
    services: dict[str, Any],
) -> None:
    grafana = services["grafana"]
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert REQUIRED_VAR.fullmatch(environment_of(grafana)["GF_SECURITY_ADMIN_PASSWORD"])
    assert "/api/health" in healthcheck_command(grafana)


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_pins_its_base_images(dockerfile: list[tuple[str, str]]) -> None:
    stages: set[str] = set()
    froms = 0
    for keyword, arguments in dockerfile:
        if keyword != "FROM":
            continue
        froms += 1
        words = [word for word in arguments.split() if not word.startswith("--")]
        image = words[0]
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
        if image.lower() in stages:
            continue
        assert image_pin_problem(image) is None, f"FROM {image}: {image_pin_problem(image)}"
    assert froms >= 2, "expected a multi-stage build"


def test_dockerfile_final_stage_does_not_run_as_root(dockerfile: list[tuple[str, str]]) -> None:
    last_from = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    users = [args for keyword, args in dockerfile[last_from:] if keyword == "USER"]
    assert users, "no USER after the last FROM: the service would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}


def test_dockerfile_builder_and_runtime_share_the_python_image(
    dockerfile: list[tuple[str, str]],
) -> None:
    # The venv's interpreter is a symlink into the builder's Python.
    python_images = {
        args.split()[0] for keyword, args in dockerfile if keyword == "FROM" and "python:" in args
    }
    assert len(python_images) == 1, python_images


def test_dockerfile_installs_one_service_from_the_lock(
    dockerfile: list[tuple[str, str]],
) -> None:
    syncs = [args for keyword, args in dockerfile if keyword == "RUN" and "uv sync" in args]
    assert syncs
    for command in syncs:
        assert "--frozen" in command
        assert "--no-dev" in command
        assert '--package "pepite-${SERVICE}"' in command
    env = " ".join(args for keyword, args in dockerfile if keyword == "ENV")
    assert "PEPITE_SERVICE=${SERVICE}" in env
    cmd = next(args for keyword, args in reversed(dockerfile) if keyword == "CMD")
    assert "pepite_${PEPITE_SERVICE}" in cmd
    assert "exec python -m" in cmd


def test_dockerfile_copies_every_workspace_manifest(dockerfile: list[tuple[str, str]]) -> None:
    copies = " ".join(args for keyword, args in dockerfile if keyword == "COPY")
    members = sorted(REPO_ROOT.glob("libs/*/pyproject.toml")) + sorted(
        REPO_ROOT.glob("services/*/pyproject.toml")
    )
    assert members
    for manifest in members:
        relative = manifest.relative_to(REPO_ROOT).as_posix()
        assert relative in copies, f"Dockerfile does not copy {relative} before the deps layer"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert patterns >= {".git", ".venv", ".pepite", ".env", "tests", "**/__pycache__"}
    # The build needs these; an ignore rule would break it silently.
    assert not patterns & {"libs", "services", "uv.lock", "pyproject.toml"}


# --------------------------------------------------------------------------- docker compose


@pytest.fixture(scope="module")
def docker_compose() -> list[str]:
    """The ``docker compose`` command, or skip when the plugin is not installed."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if version.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    return [docker, "compose"]


def _compose_config(
    docker_compose: list[str], tmp_path: Path, secrets: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in REQUIRED_SECRETS and not key.startswith("COMPOSE_")
    }
    env.update(secrets)
    # An empty env file: a developer's .env must not satisfy the check.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("", encoding="utf-8")
    return subprocess.run(
        [
            *docker_compose,
            "--env-file",
            str(empty_env_file),
            "-f",
            str(COMPOSE_FILE),
            "config",
            "-q",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_docker_compose_config_accepts_the_file(docker_compose: list[str], tmp_path: Path) -> None:
    secrets = {name: f"dummy-{name.lower()}" for name in REQUIRED_SECRETS}
    result = _compose_config(docker_compose, tmp_path, secrets)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_docker_compose_config_refuses_a_missing_secret(
    docker_compose: list[str], tmp_path: Path, missing: str
) -> None:
    secrets = {name: "dummy" for name in REQUIRED_SECRETS if name != missing}
    result = _compose_config(docker_compose, tmp_path, secrets)
    assert result.returncode != 0
    assert missing in result.stderr
