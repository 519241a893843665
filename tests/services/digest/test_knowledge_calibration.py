"""Fitting a community's FAQ confidence curve: `pepite knowledge calibrate` on a real MongoDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.conftest import Stack
from typer.testing import CliRunner, Result

from pepite_contracts import MessageKind
from pepite_digest.knowledge_calibration import (
    KNOWLEDGE_SHARE,
    Judge,
    past_pairs,
    questions_after,
    score_questions,
    split_days,
)
from pepite_digest.knowledge_cli import app
from pepite_digest.repository import DigestRepository
from pepite_embeddings import Embedder
from pepite_kit import Database
from pepite_knowledge import (
    KNOWLEDGE_CALIBRATIONS,
    CalibrationRepository,
    StoredEntry,
    embed_entries,
)

pytestmark = pytest.mark.asyncio

DAY0 = datetime(2024, 5, 1, 8, tzinfo=UTC)
#: Questions that come back every day in other words, and the answer they always get.
TOPICS = [
    (
        "Run sudo ubuntu-drivers autoinstall and reboot to get the nvidia driver.",
        [
            "How do I install the nvidia driver?",
            "what's the right way to get nvidia drivers on ubuntu",
            "nvidia proprietary driver install how?",
            "my nvidia card has no driver, how do I install one",
            "best way to set up the nvidia graphics driver?",
            "how to get the official nvidia driver working",
        ],
    ),
    (
        "Boot the previous kernel from the grub menu and reinstall linux-firmware.",
        [
            "wifi stopped working after the kernel update",
            "after upgrading the kernel my wireless is gone",
            "no wireless since the latest kernel update, help",
            "kernel upgrade broke my wifi, what now?",
            "wifi adapter not found after updating the kernel",
            "lost wifi after yesterday's kernel upgrade",
        ],
    ),
    (
        "chsh -s $(which zsh) then log out and back in.",
        [
            "how do I change my default shell to zsh",
            "make zsh my login shell?",
            "switch from bash to zsh permanently",
            "how to set zsh as default shell",
            "I want zsh instead of bash by default",
            "changing the login shell to zsh how",
        ],
    ),
    (
        "Look in /var/log/apache2/error.log for the errors.",
        [
            "where are the apache log files",
            "apache error log location?",
            "where does apache2 write its logs",
            "can't find apache's error log",
            "which folder has the apache logs",
            "where do I find apache2 error messages",
        ],
    ),
    (
        "Use ncdu on the root folder to see which folders take the disk space.",
        [
            "my disk is full, how do I find what uses the space",
            "what is eating my disk space?",
            "how to see which directories are biggest",
            "find large folders filling the disk",
            "root partition is full, how to find the culprit",
            "tool to show disk usage per folder",
        ],
    ),
]
#: Questions asked once, in the later days only: nothing in the past answers them.
ONE_OFFS = [
    ("Which font does the terminal use by default?", "It is Ubuntu Mono at size 13."),
    ("Is there a way to see the battery wear level?", "upower shows capacity against design."),
    ("What does the orange dot in the dock mean?", "It marks an application with a window."),
    ("Can I play DVDs out of the box?", "Encrypted discs need libdvd-pkg reconfigured."),
    ("Why is my clock one hour off after dual booting?", "Windows keeps local time in the RTC."),
    ("How do I take a screenshot of one window?", "Press Alt and Print for the focused one."),
    ("where are the wallpapers stored?", "They live in the backgrounds share folder."),
    ("Can I rename my hostname without reinstalling?", "hostnamectl set-hostname does it."),
    ("How do I check which ports are listening?", "ss -tulpn lists the listening sockets."),
    ("Is it safe to delete the thumbnail cache?", "Yes, thumbnails are rebuilt when needed."),
    ("Why does my mouse scroll feel reversed?", "Natural scrolling is on in the settings."),
    ("how can I make a bootable usb stick?", "Startup Disk Creator writes the ISO for you."),
    ("What is snapd doing at boot?", "It refreshes snaps and mounts their images."),
    ("Can I limit the CPU frequency?", "cpupower frequency-set caps the maximum speed."),
]
DAYS = 8
PER_TOPIC_PER_DAY = 5


def message(
    n: int,
    name: str,
    text: str,
    kind: MessageKind,
    at: datetime,
    *,
    reply_to: int | None = None,
) -> dict[str, Any]:
    return {
        "_id": f"discord:acme:{n}",
        "community_id": "acme",
        "channel": {"id": "help", "name": "help"},
        "author": {"id": f"discord:acme:u-{name}", "name": name, "is_bot": False},
        "text": text,
        "created_at": at,
        "reply_to_id": f"discord:acme:{reply_to}" if reply_to else None,
        "thread": None,
        "reactions": [],
        "mentions": [],
        "analysis": {"kind": kind.value, "sentiment": "neutral"},
    }


def history(days: int, *, one_offs_from: int) -> list[dict[str, Any]]:
    """Each day the topics' questions in new words, answered; one-offs in the later days."""
    messages: list[dict[str, Any]] = []
    n = 0
    for day in range(days):
        asked: list[tuple[str, str]] = []
        for answer, paraphrases in TOPICS:
            for k in range(PER_TOPIC_PER_DAY):
                asked.append(
                    (paraphrases[(day * PER_TOPIC_PER_DAY + k) % len(paraphrases)], answer)
                )
        if day >= one_offs_from:
            half = len(ONE_OFFS) // 2
            asked += ONE_OFFS[:half] if day == one_offs_from else ONE_OFFS[half:]
        for slot, (question, answer) in enumerate(asked):
            at = DAY0 + timedelta(days=day, minutes=12 * slot)
            n += 2
            messages.append(message(n, f"asker{n}", question, MessageKind.QUESTION, at))
            messages.append(
                message(
                    n + 1,
                    "helper",
                    answer,
                    MessageKind.ANSWER,
                    at + timedelta(minutes=2),
                    reply_to=n,
                )
            )
    return messages


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def invoke(db: Database, stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("MONGODB_URI", stack.mongodb_uri)
    monkeypatch.setenv("PEPITE_MONGODB_DB", db.name)
    return CliRunner().invoke(app, ["calibrate", *args])


async def test_a_fit_on_recurring_questions_answers_them_and_not_one_offs(
    mongo_db: Database, stack: Stack, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    await mongo_db["messages"].insert_many(history(DAYS, one_offs_from=6))

    # The command runs its own event loop: off this test's loop.
    result = await asyncio.to_thread(invoke, mongo_db, stack, monkeypatch, "-c", "acme")

    assert result.exit_code == 0, result.stderr
    assert "asking" in result.stderr  # progress goes to stderr
    stored = await CalibrationRepository(mongo_db).get("acme")
    assert stored is not None
    assert stored.slope > 0
    assert f"slope {stored.slope:.3f}, intercept {stored.intercept:.3f}" in result.stdout
    assert stored.questions >= 50
    assert stored.correct >= 0.6 * stored.questions
    assert stored.hit_rate == pytest.approx(stored.correct / stored.questions)
    assert stored.target_precision == 0.5
    assert await mongo_db[KNOWLEDGE_CALIBRATIONS].count_documents({}) == 1

    # Scored again the way the command did: the fitted curve answers the questions that
    # recur (at the API's 0.5) and none of those the past cannot answer.
    messages = await DigestRepository(mongo_db).messages(
        "acme", DAY0 - timedelta(days=1), DAY0 + timedelta(days=DAYS + 1)
    )
    cut = split_days(messages, KNOWLEDGE_SHARE)
    now = datetime.now(UTC)
    entries = [p.entry("acme", now) for p in past_pairs(messages, cut)]
    stored_entries = [
        StoredEntry(e, v) for e, v in zip(entries, embed_entries(embedder, entries), strict=True)
    ]
    questions = questions_after(messages, cut)
    # The last 2 of 8 days are asked (the miner's answered questions of those days).
    assert cut == DAY0.replace(hour=0) + timedelta(days=6)
    assert len(questions) == stored.questions
    scores, labels = score_questions(stored_entries, embedder, questions, Judge(embedder))
    confidences = np.array([stored.curve.confidence(s) for s in scores])
    one_off = np.array([q.question_text in dict(ONE_OFFS) for q in questions])
    assert one_off.sum() >= 10  # the miner may pass over one
    assert (confidences[one_off] < 0.5).all()
    assert (confidences[~one_off & (labels == 1)] >= 0.5).mean() >= 0.8


async def test_too_little_history_is_refused_and_nothing_is_stored(
    mongo_db: Database, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three days: 25 questions asked after the cut, fewer than the 50 a fit needs.
    await mongo_db["messages"].insert_many(history(3, one_offs_from=99))

    result = await asyncio.to_thread(invoke, mongo_db, stack, monkeypatch, "-c", "acme")

    assert result.exit_code == 1
    assert "not enough evidence" in result.stderr
    assert "at least 50 questions" in result.stderr
    assert await mongo_db[KNOWLEDGE_CALIBRATIONS].count_documents({}) == 0

    # A community without messages at all: the same clear refusal.
    empty = await asyncio.to_thread(invoke, mongo_db, stack, monkeypatch, "-c", "nobody")
    assert empty.exit_code == 1
    assert "no messages" in empty.stderr
    assert await mongo_db[KNOWLEDGE_CALIBRATIONS].count_documents({}) == 0
