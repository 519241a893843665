"""How long one refresh of the api-worker's community gauges takes.

Runs :class:`pepite_api.community_gauges_refresher.GaugeRefresher` against a database,
reading only, and prints one JSON line per refresh (seconds, communities exported) and
one with the median. By default it reads the demo database ``pepite`` as it is (the
``community_stored`` index the worker creates at start-up may be missing there; the
line says so). ``--scratch`` measures the same on a scratch copy holding what the
queries read (message times and storage stamps, rollups, alerts), with every index the
services declare, then drops the copy.

    uv run --frozen python bench/community_gauges_bench.py [--db pepite] [--repeat 5] [--scratch]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from pepite_api.community_gauges_refresher import GaugeRefresher
from pepite_api.community_gauges_repository import (
    ALERTS,
    COMMUNITY_GAUGE_INDEXES,
    MESSAGES,
)
from pepite_api.settings import Settings
from pepite_classifier.repository import INDEXES as CLASSIFIER_INDEXES
from pepite_classifier.rollups_repository import ROLLUP_INDEXES
from pepite_kit.mongo import Database, ensure_indexes
from pepite_reports.rollups import ACTIVITY_ROLLUPS, KIND_ROLLUPS

_COPIED_MESSAGE_FIELDS = {"community_id": 1, "created_at": 1, "stored_at": 1, "deleted_at": 1}


async def _copy(source: Database, target: Database) -> None:
    """Copy what the gauge queries read into ``target`` and index it as the services do."""
    for name, projection in (
        (MESSAGES, _COPIED_MESSAGE_FIELDS),
        (KIND_ROLLUPS, None),
        (ACTIVITY_ROLLUPS, None),
        (ALERTS, None),
    ):
        batch: list[dict[str, object]] = []
        async for doc in source[name].find({}, projection):
            batch.append(doc)
            if len(batch) == 5000:
                await target[name].insert_many(batch)
                batch = []
        if batch:
            await target[name].insert_many(batch)
    await ensure_indexes(target, [*CLASSIFIER_INDEXES, *ROLLUP_INDEXES, *COMMUNITY_GAUGE_INDEXES])


async def _measure(db: Database, settings: Settings, repeat: int, label: str) -> None:
    indexes = {doc["name"] async for doc in await db[MESSAGES].list_indexes()}
    refresher = GaugeRefresher(db, settings)
    seconds: list[float] = []
    for run in range(repeat):
        report = await refresher.refresh_once(None, now=datetime.now(UTC))
        if report.communities is None:
            raise SystemExit("the refresh failed; see the log above")
        seconds.append(report.communities_s)
        print(
            json.dumps(
                {
                    "database": label,
                    "run": run + 1,
                    "refresh_s": round(report.communities_s, 4),
                    "communities": len(report.communities),
                    "community_stored_index": "community_stored" in indexes,
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "database": label,
                "figure": "community gauges refresh, median seconds",
                "value": round(statistics.median(seconds), 4),
                "runs": repeat,
            }
        )
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="database to read (default: settings, pepite)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scratch", action="store_true", help="also measure on an indexed copy")
    args = parser.parse_args()
    settings = Settings()
    name = args.db or settings.mongodb_db
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri, tz_aware=True
    )
    try:
        await _measure(client[name], settings, args.repeat, name)
        if args.scratch:
            scratch = f"pepite_bench_gauges_{uuid.uuid4().hex[:8]}"
            try:
                await _copy(client[name], client[scratch])
                await _measure(client[scratch], settings, args.repeat, f"{name} copy, indexed")
            finally:
                await client.drop_database(scratch)
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
