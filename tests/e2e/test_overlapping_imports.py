"""Last week's and this week's exports, imported in any order: one copy of each message,
the newest text wins, and a re-import changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Env, ServiceProcess, processed, wait_for
from tests.services.ingestor.dce_helpers import dce_export, dce_message

pytestmark = pytest.mark.slow

T0 = datetime(2024, 4, 1, tzinfo=UTC)


def message(n: int, content: str | None = None, **overrides: Any) -> dict[str, Any]:
    timestamp = (T0 + timedelta(hours=n)).isoformat()
    return dce_message(str(1_000 + n), content or f"message {n}", timestamp=timestamp, **overrides)


def write(path: Path, messages: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(dce_export(messages), indent=2, ensure_ascii=False))
    return path


@pytest.mark.parametrize("newest_first", [False, True], ids=["in-order", "newest-first"])
def test_overlapping_exports_store_each_message_once_with_its_latest_text(
    env: Env, classifier: ServiceProcess, sync_db: Any, tmp_path: Path, newest_first: bool
) -> None:
    last_week = write(tmp_path / "last-week.json", [message(n) for n in range(1, 61)])
    edited_at = (T0 + timedelta(days=5)).isoformat()
    this_week = write(
        tmp_path / "this-week.json",
        [
            message(n, content="message 50, corrected", timestampEdited=edited_at)
            if n == 50
            else message(n)
            for n in range(40, 101)
        ],
    )
    order = [this_week, last_week] if newest_first else [last_week, this_week]
    for path in order:
        env.pepite("import", str(path), "--community", "acme", "--no-progress")
    topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + "messages.raw"
    wait_for(lambda: processed(classifier, topic) >= 121, within_s=180, what="both imports")

    docs = {doc["_id"]: doc for doc in sync_db["messages"].find({"community_id": "acme"})}
    assert sorted(docs) == sorted(f"discord:acme:{1_000 + n}" for n in range(1, 101))
    corrected = docs["discord:acme:1050"]
    assert corrected["text"] == "message 50, corrected"
    assert corrected["edited_at"] == T0 + timedelta(days=5)
    assert docs["discord:acme:1049"]["text"] == "message 49"

    # Importing last week's export once more neither duplicates nor reverts the edit.
    env.pepite("import", str(last_week), "--community", "acme", "--no-progress")
    wait_for(lambda: processed(classifier, topic) >= 181, within_s=60, what="the re-import")
    assert sync_db["messages"].count_documents({"community_id": "acme"}) == 100
    again = sync_db["messages"].find_one({"_id": "discord:acme:1050"})
    assert again["text"] == "message 50, corrected"
