"""``make demo``: import the sample community into the running services and show the result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from services import REPO_ROOT, data_dir, service_ports

COMMUNITY = os.environ.get("PEPITE_DEMO_COMMUNITY", "sample")


def sample_folder() -> Path:
    shared = Path(os.environ.get("PEPITE_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return (shared / "datasets" / "sample-community").resolve()


def demo_key(pepite: str) -> str:
    """A read key of the demo community, made once and kept in the data folder."""
    path = data_dir() / f"{COMMUNITY}.read-key"
    if path.is_file():
        return path.read_text().strip()
    out = subprocess.run(
        [pepite, "keys", "create", "--community", COMMUNITY, "--scope", "read", "--name", "demo"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    key = str(json.loads(out)["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def working_key(pepite: str, port: int) -> str:
    key = demo_key(pepite)
    try:
        api_get(port, f"/v1/communities/{COMMUNITY}", key)
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise
        # The database was wiped since the key was made: make another.
        (data_dir() / f"{COMMUNITY}.read-key").unlink()
        key = demo_key(pepite)
    return key


def api_get(port: int, path: str, key: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def main() -> int:
    folder = sample_folder()
    if not folder.is_dir():
        print(f"demo: no sample community at {folder} (set PEPITE_SHARED_DIR)", file=sys.stderr)
        return 1
    pepite = str(Path(sys.executable).parent / "pepite")
    print(f"demo: importing {folder} into community '{COMMUNITY}'")
    started = time.monotonic()
    result = subprocess.run(
        [pepite, "import", str(folder), "--community", COMMUNITY],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(result.stdout, end="")
    if result.returncode != 0:
        return result.returncode
    published = sum(int(n) for n in re.findall(r": (\d+) messages", result.stdout))

    port = service_ports()["api"]
    key = working_key(pepite, port)

    def api_status(port: int) -> dict[str, object]:
        return api_get(port, f"/v1/communities/{COMMUNITY}/status", key)

    print(f"demo: waiting for the classifier to store and analyze {published} messages")
    status: dict[str, object] = {}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            status = api_status(port)
        except (urllib.error.URLError, OSError):
            status = {}
        analyzed = status.get("analyzed", 0)
        assert isinstance(analyzed, int)
        if analyzed >= published:
            break
        time.sleep(0.5)
    else:
        print(f"demo: timed out; last status: {status}", file=sys.stderr)
        return 1
    print(f"demo: stored and analyzed in {time.monotonic() - started:.1f}s")
    # Insights are then embedded, refined and placed in topics in bulk.
    shown = -1
    while time.monotonic() < deadline:
        status = api_status(port)
        waiting = status.get("awaiting_topic", 0)
        assert isinstance(waiting, int)
        if waiting == 0:
            break
        if waiting // 5000 != shown:
            shown = waiting // 5000
            print(f"demo: {waiting} insight messages still to place in topics", flush=True)
        time.sleep(1.0)
    else:
        print(f"demo: timed out placing topics; last status: {status}", file=sys.stderr)
        return 1
    print(f"demo: done in {time.monotonic() - started:.1f}s")
    print(json.dumps(status, indent=2))
    # Topics are reclustered in the background as insights accumulate; rebuild them now
    # so the report below shows the categories of the whole import.
    for command in (
        ["topics", "rebuild", "--community", COMMUNITY],
        ["insights", "--community", COMMUNITY, "--days", "30"],
    ):
        print(f"\n$ pepite {' '.join(command)}", flush=True)
        step = subprocess.run([pepite, *command], check=False)
        if step.returncode != 0:
            return step.returncode
    data = Path(os.environ.get("PEPITE_DATA_DIR", REPO_ROOT / ".pepite" / "data"))
    prometheus = os.environ.get("PEPITE_PROMETHEUS_PORT", "9090")
    print(
        "\nWhere to look:\n"
        f"  status      .venv/bin/pepite status --community {COMMUNITY}\n"
        f"  insights    .venv/bin/pepite insights --community {COMMUNITY} --months 3\n"
        f"  API         curl -H 'Authorization: Bearer {key}' \\\n"
        f"                http://127.0.0.1:{port}/v1/communities/{COMMUNITY}/insights?days=30\n"
        f"              (docs: http://127.0.0.1:{port}/docs; key kept in"
        f" {data_dir() / (COMMUNITY + '.read-key')})\n"
        f"  metrics     http://127.0.0.1:{port}/metrics and each service's /metrics\n"
        f"  Prometheus  http://127.0.0.1:{prometheus}\n"
        f"  logs        {data / 'logs'}\n"
        "  stop        make down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
