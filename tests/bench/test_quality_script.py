"""bench/quality.py on a tiny evaluation folder: figures, skips and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, rows: list[dict[str, str]], *, extra_line: str | None = None) -> None:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if extra_line is not None:
        lines.insert(1, extra_line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_quality(eval_dir: Path, cache_dir: Path) -> tuple[int, list[dict[str, object]], str]:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "quality.py"),
            "--eval-dir",
            str(eval_dir),
            "--cache-dir",
            str(cache_dir),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, lines, result.stderr


def figure(lines: list[dict[str, object]], task: str, metric: str, **extra: object) -> object:
    for line in lines:
        wanted = line.get("task") == task and line.get("metric") == metric
        if wanted and all(line.get(key) == value for key, value in extra.items()):
            return line["value"]
    raise AssertionError(f"no {metric} {extra} for {task} in {lines}")


def test_scores_known_tasks_skips_unknown_ones_and_names_a_bad_line(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    write_jsonl(
        eval_dir / "toxicity_fr_test.jsonl",
        [
            {"id": "1", "text": "ferme ta gueule espèce de connard", "label": "toxic"},
            {"id": "2", "text": "Merci beaucoup pour ton aide !", "label": "normal"},
            {"id": "3", "text": "Bonne journée à tous", "label": "normal"},
        ],
    )
    write_jsonl(
        eval_dir / "feature_request_test.jsonl",
        [
            {"id": "1", "text": "It would be nice to have a dark mode option", "label": "feature"},
            {"id": "2", "text": "lol ok", "label": "other"},
        ],
    )
    write_jsonl(
        eval_dir / "sentiment_en_test.jsonl",
        [
            {"id": "1", "text": "I love it", "label": "positive"},
            {"id": "2", "text": "I hate it", "label": "negative"},
        ],
        extra_line='{"id": "broken", "text": ',
    )
    write_jsonl(eval_dir / "weather_test.jsonl", [{"id": "1", "text": "sunny", "label": "sun"}])

    code, lines, stderr = run_quality(eval_dir, tmp_path / "cache")

    assert code == 1
    error = next(line for line in lines if line.get("status") == "error")
    assert error["task"] == "sentiment_en"
    assert "sentiment_en_test.jsonl:2" in str(error["error"])
    assert "sentiment_en_test.jsonl:2" in stderr
    skipped = next(line for line in lines if line.get("status") == "skipped")
    assert skipped["task"] == "weather"

    assert figure(lines, "toxicity_fr", "n") == 3
    assert figure(lines, "toxicity_fr", "accuracy") == 1.0
    assert figure(lines, "toxicity_fr", "recall", **{"class": "toxic"}) == 1.0
    matrix = figure(lines, "toxicity_fr", "confusion_matrix")
    assert matrix == [[1, 0], [0, 2]]
    assert figure(lines, "feature_request", "macro_f1") == 1.0
    methods = {line["method"] for line in lines if "method" in line}
    assert methods == {"shipped"}


def test_a_label_the_task_does_not_have_is_an_error(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    write_jsonl(
        eval_dir / "question_test.jsonl",
        [
            {"id": "1", "text": "is it raining?", "label": "question"},
            {"id": "2", "text": "it is raining", "label": "maybe"},
        ],
    )

    code, lines, _ = run_quality(eval_dir, tmp_path / "cache")

    assert code == 1
    assert lines == [
        {
            "task": "question",
            "split": "test",
            "status": "error",
            "error": f"{eval_dir / 'question_test.jsonl'}:2: label 'maybe' is not one of"
            " ['question', 'statement']",
        }
    ]
