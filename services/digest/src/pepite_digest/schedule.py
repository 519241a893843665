"""The weekly digest of every community, on its schedule, in its time zone.

A community's settings say when its digest goes out (Monday 9:00 by default). Once
that moment has passed, the digest of the seven days before that day is built, stored
and announced with ``digest.published`` (delivered by webhooks). Each week is done
once: a restarted or second scheduler finds the run recorded and leaves it, and the
event id is fixed by the digest, so a repeat is recognized downstream too.

Right after a community's digest, every member of that community who turned
personalization on gets their own digest of the week, stored and announced the same way
(``digest.published`` with the member's id), each run recorded apart. The insights
report of the same seven days (as UTC days) is announced with ``insights.report``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pepite_digest.announce import announce_digest, announce_insights_report
from pepite_digest.personal_service import DEFAULT_LOOKBACK, PersonalDigestService
from pepite_digest.repository import COMMUNITIES
from pepite_digest.service import DigestService, EmptyPeriodError
from pepite_digest.writer import DigestWriter
from pepite_kit import Database, EventPublisher, IndexSpec
from pepite_reports.digests.models import Digest
from pepite_reports.insights import InsightsService, NoDataError

DIGEST_RUNS = "digest_runs"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

SCHEDULE_INDEXES = (IndexSpec(DIGEST_RUNS, [("community_id", 1), ("at", -1)], "community_at"),)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    community_id: str
    timezone: str
    weekday: int
    hour: int


def due_week(now: datetime, schedule: Schedule) -> tuple[date, date]:
    """The seven days (first, last) whose digest is due at ``now``: those before the
    latest scheduled moment that has passed, in the community's time zone."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    day = local.date() - timedelta(days=(local.weekday() - schedule.weekday) % 7)
    if datetime.combine(day, time(schedule.hour), zone) > local:
        day -= timedelta(days=7)
    return day - timedelta(days=7), day - timedelta(days=1)


def _schedule(doc: dict[str, Any]) -> Schedule | None:
    settings = doc.get("digest") or {}
    if settings.get("enabled") is False:
        return None
    weekday = str(settings.get("weekday") or "monday")
    return Schedule(
        community_id=doc["_id"],
        timezone=str(doc.get("timezone") or "UTC"),
        weekday=WEEKDAYS.index(weekday) if weekday in WEEKDAYS else 0,
        hour=int(settings.get("hour", 9)),
    )


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def schedules(self) -> list[Schedule]:
        """The schedules of the communities whose digest is on."""
        cursor = self._db[COMMUNITIES].find({}, {"timezone": 1, "digest": 1})
        return [s async for doc in cursor if (s := _schedule(doc)) is not None]

    async def done(self, run_id: str) -> bool:
        return await self._db[DIGEST_RUNS].find_one({"_id": run_id}, {"_id": 1}) is not None

    async def record(self, run_id: str, community_id: str, outcome: str) -> None:
        await self._db[DIGEST_RUNS].update_one(
            {"_id": run_id},
            {
                "$setOnInsert": {
                    "community_id": community_id,
                    "outcome": outcome,
                    "at": datetime.now(UTC),
                }
            },
            upsert=True,
        )


class DigestScheduler:
    """Builds and announces the digests that are due, then looks again every ``poll_s``."""

    def __init__(
        self,
        db: Database,
        publisher: EventPublisher,
        *,
        notifications_topic: str,
        poll_s: float = 60.0,
        personal_lookback: timedelta = DEFAULT_LOOKBACK,
        writer: DigestWriter | None = None,
    ) -> None:
        self._repository = ScheduleRepository(db)
        self._service = DigestService(db, writer=writer)
        self._personal = PersonalDigestService(db, lookback=personal_lookback)
        self._insights = InsightsService(db)
        self._publisher = publisher
        self._topic = notifications_topic
        self._poll_s = poll_s

    async def run_forever(self) -> None:
        while True:
            try:
                await self.publish_due(datetime.now(UTC))
            except Exception:
                # The next look tries again; one community's failure is logged below.
                logger.exception("could not look for due digests")
            await asyncio.sleep(self._poll_s)

    async def publish_due(self, now: datetime) -> list[str]:
        """Build, store and announce every digest due at ``now``; their ids."""
        published = []
        for schedule in await self._repository.schedules():
            first, last = due_week(now, schedule)
            run_id = f"{schedule.community_id}:{first}:{last}"
            if await self._repository.done(run_id):
                continue
            try:
                digest = await self._service.community_digest(schedule.community_id, first, last)
            except EmptyPeriodError:
                await self._repository.record(run_id, schedule.community_id, "empty")
                continue
            except Exception:
                logger.exception("digest failed", extra={"community": schedule.community_id})
                continue
            await self._announce(digest)
            await self._insights_report(schedule.community_id, last)
            # Recorded once the personal digests are out too: a crash in between redoes
            # the week, the announcement's fixed id making the repeat harmless.
            await self._personal_digests(digest, run_id)
            await self._repository.record(run_id, schedule.community_id, "published")
            logger.info("digest published", extra={"digest": digest.digest_id})
            published.append(digest.digest_id)
        return published

    async def _personal_digests(self, community: Digest, run_id: str) -> None:
        """Build, store and announce the week's digest of every consenting member, once."""
        community_id = community.community_id
        readers = [
            member_id
            for member_id in await self._personal.readers(community_id)
            if not await self._repository.done(f"{run_id}:{member_id}")
        ]
        if not readers:
            return
        period = await self._personal.period(community)
        for member_id in readers:
            try:
                digest = await self._personal.build(period, member_id)
            except Exception:
                # One member's failure does not keep the others' digests back.
                logger.exception(
                    "personal digest failed",
                    extra={"digest": community.digest_id, "member": member_id},
                )
                continue
            await self._announce(digest)
            await self._repository.record(f"{run_id}:{member_id}", community_id, "published")
        logger.info(
            "personal digests published",
            extra={"digest": community.digest_id, "count": len(readers)},
        )

    async def _insights_report(self, community_id: str, last: date) -> None:
        """Announce the insights report of the digest's seven days (as UTC days, like
        every insights report), for subscribers who track the numbers week by week."""
        try:
            report = await self._insights.report(community_id, days=7, until=last)
        except NoDataError:
            return
        except Exception:
            # The digest is out; the report waits for a reader to ask the API for it.
            logger.exception("insights report failed", extra={"community": community_id})
            return
        await announce_insights_report(self._publisher, self._topic, report)

    async def _announce(self, digest: Digest) -> None:
        await announce_digest(self._publisher, self._topic, digest)
