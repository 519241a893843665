"""Format detection and dispatch by format name."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.services.ingestor.dce_helpers import FIXTURES

from pepite_contracts import deterministic_event_id
from pepite_ingestor.importers import (
    IMPORTERS,
    SNIFFERS,
    ExportFormatError,
    UnknownFormatError,
    detect_format,
    iter_export,
    supported_formats,
)
from pepite_ingestor.importers.common import fast_event_id


@pytest.mark.parametrize(
    "name",
    ["general.json", "thread.json", "empty.json", "minimal.json", "messages-first.json"],
)
def test_discord_exports_are_detected(name: str) -> None:
    assert detect_format(FIXTURES / name) == "discord"


def test_detection_reads_only_the_head(tmp_path: Path) -> None:
    # Damage far past the head does not change what the file is.
    data = (FIXTURES / "general.json").read_bytes()
    path = tmp_path / "big.json"
    path.write_bytes(data[:-3] + b" " * 100_000 + b"garbage")

    assert detect_format(path) == "discord"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "an empty file"),
        (b"  \n\t ", "a file with only whitespace"),
        (b"PK\x03\x04\x14\x00", "not a JSON file"),
        (b'{"a": tru}', "invalid JSON"),
        (b"[1, 2, 3]", "a JSON array"),
        (b'{"name": "x", "messages": []}', "JSON of another shape (top-level keys: 'name', "),
        (b"{}", "top-level keys: none"),
    ],
)
def test_unknown_files_are_described(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(content)

    with pytest.raises(UnknownFormatError) as caught:
        detect_format(path)

    assert str(caught.value).startswith(f"{path}: not a supported chat export: ")
    assert expected in caught.value.problem
    assert (
        "(supported formats: discord, discourse, jsonl, slack, telegram, whatsapp)"
        in caught.value.problem
    )


def test_broken_json_is_located(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b'{"guild": {"id": "1" "name": "x"}, "channel": {"id": "2"}}')

    with pytest.raises(UnknownFormatError) as caught:
        detect_format(path)

    assert "invalid JSON" in caught.value.problem
    assert caught.value.position is not None
    assert caught.value.position.startswith("byte 2")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        detect_format(tmp_path / "missing.json")

    assert not isinstance(caught.value, UnknownFormatError)
    assert caught.value.problem == "file not found"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match="a directory"):
        detect_format(tmp_path)


def test_unknown_format_name_lists_supported_ones() -> None:
    with pytest.raises(UnknownFormatError) as caught:
        iter_export(FIXTURES / "general.json", "test", fmt="irc")

    assert caught.value.problem == (
        "unknown format 'irc' "
        "(supported formats: discord, discourse, jsonl, slack, telegram, whatsapp)"
    )


def test_explicit_format_skips_detection() -> None:
    events = list(iter_export(FIXTURES / "thread.json", "test", fmt="discord"))

    assert len(events) == 2


def test_every_format_has_a_sniffer_and_an_importer() -> None:
    assert set(SNIFFERS) == set(IMPORTERS) == set(supported_formats())


@pytest.mark.parametrize(
    "parts",
    [
        ("message.ingested", "discord:c:1", ""),
        ("message.ingested", "discord:c:1", "2024-04-18T12:05:30.123456+00:00"),
        ("member.joined", "discord:c-é:🎉"),
        (),
    ],
)
def test_fast_event_id_matches_the_contracts(parts: tuple[str, ...]) -> None:
    assert fast_event_id(*parts) == deterministic_event_id(*parts)
