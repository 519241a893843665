"""Write large, realistic exports for the import benchmark, streaming to disk.

Messages are drawn from the sample community (real text, authors, replies, mentions
and reactions), given fresh ids and times, and written the way each exporter does.
Memory stays flat whatever the number of messages.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ijson

#: Discord epoch, for snowflakes that look real (and sort by time, as real ones do).
_DISCORD_EPOCH_MS = 1_420_070_400_000
_START = datetime(2025, 1, 1, tzinfo=UTC)


def sample_messages(sample: Path, limit: int = 20_000) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of the sample community, to draw from."""
    drawn: list[dict[str, Any]] = []
    for path in sorted(sample.glob("*.json")):
        with path.open("rb") as stream:
            for message in ijson.items(stream, "messages.item", use_float=True):
                if message.get("type") in ("Default", "Reply"):
                    drawn.append(message)
                if len(drawn) >= limit:
                    return drawn
    return drawn


def _snowflake(at: datetime, sequence: int) -> str:
    millis = int(at.timestamp() * 1000) - _DISCORD_EPOCH_MS
    return str((millis << 22) | (sequence & 0x3FFFFF))


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def write_dce_export(
    folder: Path, messages: int, *, channels: int, sample: Path, seed: int = 0
) -> list[Path]:
    """Write ``messages`` messages as one DiscordChatExporter file per channel.

    Returns:
        The files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pool = sample_messages(sample)
    rng = random.Random(seed)
    written: list[Path] = []
    sequence = 0
    for number, count in enumerate(_spread(messages, channels)):
        channel_id = str(900_000_000_000_000_000 + number)
        path = folder / f"channel-{number:02d}.json"
        header = {
            "guild": {"id": "800000000000000000", "name": "Bench Guild", "iconUrl": ""},
            "channel": {
                "id": channel_id,
                "type": "GuildTextChat",
                "categoryId": "700000000000000000",
                "category": "Community",
                "name": f"channel-{number:02d}",
                "topic": None,
            },
            "dateRange": {"after": None, "before": None},
            "exportedAt": "2025-12-31T00:00:00+00:00",
        }
        recent: list[str] = []
        at = _START
        with path.open("w", encoding="utf-8") as out:
            head = json.dumps(header, indent=2, ensure_ascii=False)
            out.write(head[:-2] + ',\n  "messages": [')
            for index in range(count):
                at += timedelta(seconds=rng.randint(1, 90))
                sequence += 1
                message = dict(rng.choice(pool))
                message["id"] = _snowflake(at, sequence)
                message["timestamp"] = at.isoformat()
                if message.get("type") == "Reply" and recent:
                    message["reference"] = {
                        "messageId": rng.choice(recent),
                        "channelId": channel_id,
                        "guildId": "800000000000000000",
                    }
                else:
                    message["type"] = "Default"
                    message["reference"] = None
                recent = [*recent[-49:], message["id"]]
                out.write("\n" if index == 0 else ",\n")
                out.write(json.dumps(message, indent=2, ensure_ascii=False))
            out.write(f'\n  ],\n  "messageCount": {count}\n}}\n')
        written.append(path)
    return written
