"""Start and stop Pépite's services as local processes.

Used three ways: ``make up``/``make down`` (detached, with pid files under the data
folder), the end-to-end tests and the benchmark (attached, each with its own ports,
topic prefix and database).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Default local ports; the API's can be changed with PEPITE_API_PORT, the webhook
#: worker's with PEPITE_API_WORKER_PORT.
DEFAULT_PORTS: dict[str, int] = {
    "api": 8000,
    "ingestor": 8101,
    "classifier": 8102,
    "digest": 8103,
    "leaderboard": 8104,
    "api-worker": 8105,
}

#: Services whose module is not ``pepite_<name>``.
MODULES: dict[str, str] = {"api-worker": "pepite_api.worker"}

#: Services that read webhook secrets: they share one PEPITE_SECRETS_KEY.
_NEED_SECRETS_KEY = frozenset({"api", "api-worker"})


def data_dir() -> Path:
    return Path(os.environ.get("PEPITE_DATA_DIR", REPO_ROOT / ".pepite" / "data")).resolve()


#: The ``env`` label of the services ``make up`` starts; others take their topic prefix.
LOCAL_ENV = "local"

#: The file_sd targets file Prometheus of the local stack reads (deploy/local/stack.py
#: renders its path into the scrape config), inside the data folder.
TARGETS_FILE_NAME = "prometheus-targets.json"

#: Where a target's process id is kept: a ``__meta_`` label is dropped by Prometheus
#: after relabeling, so it never reaches the stored series.
_PID_LABEL = "__meta_pepite_pid"


def targets_file() -> Path:
    return data_dir() / TARGETS_FILE_NAME


def service_ports() -> dict[str, int]:
    ports = dict(DEFAULT_PORTS)
    if api_port := os.environ.get("PEPITE_API_PORT"):
        ports["api"] = int(api_port)
    if worker_port := os.environ.get("PEPITE_API_WORKER_PORT"):
        ports["api-worker"] = int(worker_port)
    return ports


def local_secrets_key() -> str:
    """The local stack's PEPITE_SECRETS_KEY: made once in the data folder, then reused.

    The API seals webhook secrets with it and the worker opens them, so both must get
    the same key, and it must survive restarts or stored secrets become unreadable.
    """
    path = data_dir() / "secrets.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside with mode 600, then linked into place: a concurrent start
        # either wins the link or reads the winner's complete key, never a partial one.
        draft = path.with_name(f".secrets.key.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


# ----- Prometheus targets: every started service registers itself -----


@contextlib.contextmanager
def _targets_locked() -> Iterator[list[dict[str, Any]]]:
    """The registered targets, to edit in place; written back atomically on exit.

    Services are started by several processes at once (``make up``, test sessions,
    benchmarks), so edits take turns on a lock file, and the file is replaced, never
    rewritten in place, so Prometheus never reads half of it. Entries of processes
    that are gone (a test session killed before it could stop its services) are
    dropped on every edit.
    """
    path = targets_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f".{path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            groups: list[dict[str, Any]] = []
            with contextlib.suppress(FileNotFoundError, ValueError):
                loaded = json.loads(path.read_text())
                if isinstance(loaded, list):
                    groups = [group for group in loaded if _owner_alive(group)]
            yield groups
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            draft.write_text(json.dumps(groups, indent=2) + "\n")
            os.replace(draft, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _owner_alive(group: Mapping[str, Any]) -> bool:
    try:
        pid = int(group.get("labels", {}).get(_PID_LABEL, ""))
    except (TypeError, ValueError):
        return False
    return _alive(pid)


def register_target(name: str, port: int, pid: int, env_label: str) -> None:
    """Let the local Prometheus scrape ``127.0.0.1:port`` as ``service=name, env=env_label``."""
    address = f"127.0.0.1:{port}"
    with _targets_locked() as groups:
        groups[:] = [group for group in groups if address not in group.get("targets", [])]
        groups.append(
            {
                "targets": [address],
                "labels": {"service": name, "env": env_label, _PID_LABEL: str(pid)},
            }
        )


def unregister_target(port: int) -> None:
    """Stop scraping ``127.0.0.1:port`` (a no-op when it is not registered)."""
    address = f"127.0.0.1:{port}"
    with _targets_locked() as groups:
        groups[:] = [group for group in groups if address not in group.get("targets", [])]


def env_label(env: Mapping[str, str]) -> str:
    """The ``env`` label of a service run with ``env``: its topic prefix, else ``local``."""
    prefix = env.get("PEPITE_KAFKA_TOPIC_PREFIX", "").strip(".")
    return prefix or LOCAL_ENV


@dataclass
class ServiceProcess:
    """One service process: started, probed on /healthz, stopped or killed."""

    name: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    #: The ``env`` label Prometheus scrapes it with; by default its topic prefix.
    scrape_env: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, detached: bool = False) -> ServiceProcess:
        env = {**os.environ, **self.env, "PEPITE_HTTP_PORT": str(self.port)}
        env.setdefault("PEPITE_LOG_FORMAT", "json")
        if self.name == "api":
            env["PEPITE_API_PORT"] = str(self.port)
        if self.name == "api-worker":
            env["PEPITE_API_WORKER_PORT"] = str(self.port)
        if self.name in _NEED_SECRETS_KEY and not env.get("PEPITE_SECRETS_KEY"):
            env["PEPITE_SECRETS_KEY"] = local_secrets_key()
        out = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")  # type: ignore[assignment]
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULES.get(self.name, f"pepite_{self.name}")],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
        )
        register_target(self.name, self.port, self.process.pid, self.scrape_env or env_label(env))
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}{self._log_hint()}"
                )
            if self.healthy():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy after {timeout_s:.0f}s{self._log_hint()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process is None:
            return None
        unregister_target(self.port)
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash a consumer must survive."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process is not None:
            unregister_target(self.port)

    def _log_hint(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return f" (log {self.log_path}):\n" + "\n".join(tail)


def metric_value(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from /metrics text."""
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total


# ----- make up / make down: detached processes with pid files -----


def _pid_file(name: str) -> Path:
    return data_dir() / "run" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(name: str) -> int | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    return pid if _alive(pid) else None


def up(stack_env: Mapping[str, str]) -> int:
    failures = 0
    started: list[ServiceProcess] = []
    for name, port in service_ports().items():
        if (pid := _read_pid(name)) is not None:
            # Registered again in case the targets file was wiped since it started.
            register_target(name, port, pid, LOCAL_ENV)
            print(f"{name}: already running (pid {pid}) on 127.0.0.1:{port}")
            continue
        service = ServiceProcess(
            name, port, stack_env, data_dir() / "logs" / f"{name}.log", scrape_env=LOCAL_ENV
        )
        service.start(detached=True)
        _pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        _pid_file(name).write_text(str(service.pid))
        started.append(service)
    for service in started:
        try:
            service.wait_healthy()
            print(f"{service.name}: healthy on {service.url} (log {service.log_path})")
        except (RuntimeError, TimeoutError) as exc:
            failures += 1
            print(f"{service.name}: failed to start: {exc}", file=sys.stderr)
    return 1 if failures else 0


def down() -> int:
    ports = service_ports()
    for name in DEFAULT_PORTS:
        unregister_target(ports[name])
        pid = _read_pid(name)
        if pid is None:
            _pid_file(name).unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        _pid_file(name).unlink(missing_ok=True)
        print(f"{name}: stopped")
    return 0


def status() -> int:
    down_count = 0
    rows = []
    for name, port in service_ports().items():
        pid = _read_pid(name)
        healthy = pid is not None and ServiceProcess(name, port).healthy()
        down_count += not healthy
        rows.append({"service": name, "pid": pid, "port": port, "healthy": healthy})
    for row in rows:
        print(json.dumps(row))
    return 1 if down_count else 0


def _stack_env() -> dict[str, str]:
    """KAFKA_BOOTSTRAP and MONGODB_URI of the running local stack (or the environment's)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import stack  # the sibling module

    return stack.env()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Pépite's services as local processes.")
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    if args.command == "up":
        return up(_stack_env())
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
