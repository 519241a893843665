"""``pepite import`` on bad input: one line naming the file and the problem, non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Stack
from tests.kafka_helpers import read_topic
from tests.services.ingestor.dce_helpers import dce_export, dce_message
from tests.services.ingestor.slack_helpers import write_slack_export

from pepite_contracts import Event, MessageIngested, decode_event
from pepite_ingestor.importers import export_shares, iter_export
from pepite_kit import KafkaSettings
from pepite_kit.cli import main

PEPITE = str(Path(sys.executable).parent / "pepite")


def run_import(stack: Stack, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PEPITE, "import", *args, "--no-progress"],
        check=False,
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "PEPITE_KAFKA_TOPIC_PREFIX": prefix,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


ImportHere = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def import_here(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    stack: Stack,
    topic_prefix: str,
) -> ImportHere:
    """``pepite import`` through the command's entry point in this process.

    For refusals that come before anything is read or published: starting a process
    costs a second or two and proves nothing more about them. Output is captured at the
    file descriptors, as from a process, so stray log lines and warnings still show.
    """
    monkeypatch.setenv("KAFKA_BOOTSTRAP", stack.kafka_bootstrap)
    monkeypatch.setenv("PEPITE_KAFKA_TOPIC_PREFIX", topic_prefix)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = ["pepite", "import", *args, "--no-progress"]
        monkeypatch.setattr(sys, "argv", argv)
        capfd.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capfd.readouterr()
        code = exited.value.code
        return subprocess.CompletedProcess(argv, code if isinstance(code, int) else 1, out, err)

    return run


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_missing_file_is_named(stack: Stack, topic_prefix: str, tmp_path: Path) -> None:
    # A real process: the command's exit status and stderr as a shell sees them.
    missing = tmp_path / "nowhere.json"
    line = one_line_error(run_import(stack, topic_prefix, str(missing), "--community", "acme"))
    assert str(missing) in line
    assert "not found" in line


def test_a_non_json_file_is_refused_before_publishing(
    tmp_path: Path,
    import_here: ImportHere,
) -> None:
    path = tmp_path / "notes.json"
    path.write_text("these are not the messages you are looking for\n")
    line = one_line_error(import_here(str(path), "--community", "acme"))
    assert str(path) in line


def test_an_export_of_an_unknown_format_is_refused(
    tmp_path: Path,
    import_here: ImportHere,
) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"users": [], "posts": []}')
    line = one_line_error(import_here(str(path), "--community", "acme"))
    assert str(path) in line
    assert "discord" in line  # the supported formats are listed


def test_an_unknown_format_option_is_refused(
    sample_community: Path,
    import_here: ImportHere,
) -> None:
    path = sample_community / "rust.json"
    result = import_here(str(path), "--community", "acme", "--format", "fax")
    assert "fax" in one_line_error(result)


def test_a_truncated_export_names_file_and_position(
    stack: Stack, topic_prefix: str, sample_community: Path, tmp_path: Path
) -> None:
    path = tmp_path / "rust-truncated.json"
    path.write_bytes((sample_community / "rust.json").read_bytes()[:200_000])
    line = one_line_error(run_import(stack, topic_prefix, str(path), "--community", "acme"))
    assert str(path) in line
    assert "truncated" in line
    assert "byte" in line
    assert "import it again" in line


def test_a_bad_community_id_is_refused(
    sample_community: Path,
    import_here: ImportHere,
) -> None:
    export = str(sample_community / "rust.json")
    result = import_here(export, "--community", "a:b")
    assert "community" in one_line_error(result)


@pytest.mark.parametrize("encoding", ["utf-16"])
def test_a_wrongly_encoded_file_is_refused(
    tmp_path: Path,
    encoding: str,
    import_here: ImportHere,
) -> None:
    path = tmp_path / "export.json"
    export = '{"guild": {"id": "1", "name": "g"}, "channel": {}, "messages": []}'
    path.write_text(export, encoding=encoding)
    line = one_line_error(import_here(str(path), "--community", "acme"))
    assert str(path) in line


async def test_a_bad_file_among_good_ones_fails_alone_and_keeps_what_was_published(
    stack: Stack,
    topic_prefix: str,
    kafka_settings: KafkaSettings,
    sample_community: Path,
    tmp_path: Path,
) -> None:
    good = tmp_path / "rust.json"
    good.write_bytes((sample_community / "rust.json").read_bytes())
    bad = tmp_path / "stripe.json"
    bad.write_bytes((sample_community / "stripe.json").read_bytes()[:300_000])
    result = run_import(
        stack, topic_prefix, str(good), str(bad), "--community", "acme", "--workers", "2"
    )
    line = one_line_error(result)
    assert line.startswith(f"pepite: {bad}: ")
    found = re.search(r"\((\d+) events of this file before it were published", line)
    assert found is not None, line
    published = int(found[1])
    assert 0 < published < 3600

    assert f"imported {good}: 3600 messages" in result.stdout
    # Everything the import said it published is on the broker: the whole good file,
    # and the bad file's events before the damage.
    records = await read_topic(kafka_settings, kafka_settings.topic_name("messages.raw"))
    channels = Counter(json.loads(value)["payload"]["channel"]["name"] for value in records)
    assert channels["rust"] == 3600
    assert channels["stripe"] == published


async def test_a_slack_export_shared_between_workers_publishes_each_event_once_in_order(
    stack: Stack, topic_prefix: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    export = write_slack_export(tmp_path / "workspace.zip", 3000, channels=5, seed=3)
    expected = list(iter_export(export, "acme"))
    assert len(export_shares(export, "slack", 2)) == 2

    result = run_import(stack, topic_prefix, str(export), "--community", "acme", "--workers", "2")
    assert result.returncode == 0, result.stderr

    topics = await asyncio.gather(
        *(
            read_topic(kafka_settings, kafka_settings.topic_name(topic))
            for topic in ("messages.raw", "members.events")
        )
    )
    published = [decode_event(value) for values in topics for value in values]
    assert sorted(e.event_id for e in published) == sorted(e.event_id for e in expected)

    # Each channel's messages arrive in export order, whichever worker read them.
    def by_channel(events: list[Event]) -> dict[str, list[str]]:
        order: dict[str, list[str]] = {}
        for event in events:
            if isinstance(event, MessageIngested):
                order.setdefault(event.payload.channel.id, []).append(event.payload.id)
        return order

    assert by_channel(published) == by_channel(list(expected))


async def test_an_oversized_message_is_skipped_with_a_warning_and_the_rest_imported(
    stack: Stack, topic_prefix: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    path = tmp_path / "export.json"
    messages = [
        dce_message("1", "before"),
        dce_message("2", "x" * 3_000_000),
        dce_message("3", "after"),
    ]
    path.write_text(json.dumps(dce_export(messages)))
    result = run_import(stack, topic_prefix, str(path), "--community", "acme")
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip()
    assert warning.startswith(f"pepite: warning: {path}: message discord:acme:2 is ")
    assert "over the 1,048,576-byte limit" in warning
    records = await read_topic(kafka_settings, kafka_settings.topic_name("messages.raw"))
    assert sorted(json.loads(value)["payload"]["text"] for value in records) == ["after", "before"]
