"""Fixtures for the importer tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.services.ingestor.dce_helpers import ExportWriter, dce_export


@pytest.fixture
def write_export(tmp_path: Path) -> ExportWriter:
    """Write ``dce_export(messages, channel)`` as indented UTF-8 JSON, like DCE does."""

    def write(
        messages: list[dict[str, Any]],
        channel: dict[str, Any] | None = None,
        name: str = "export.json",
    ) -> Path:
        path = tmp_path / name
        text = json.dumps(dce_export(messages, channel), indent=2, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write
