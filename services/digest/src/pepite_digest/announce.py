"""Telling the outside world a digest or an insights report is out, on the notifications
topic: ``digest.published`` and ``insights.report``."""

from __future__ import annotations

from datetime import timedelta

from pepite_contracts import (
    DigestNotice,
    DigestPublished,
    InsightsReportNotice,
    InsightsReportPublished,
    community_key,
    deterministic_event_id,
    encode_event,
)
from pepite_kit import EventPublisher
from pepite_reports.digests.models import Digest
from pepite_reports.insights import InsightsReport
from pepite_reports.rollups import day_start


async def announce_digest(
    publisher: EventPublisher, topic: str, digest: Digest, *, cause: str | None = None
) -> None:
    """Publish ``digest.published`` for ``digest`` and wait until the broker has it.

    The event id is fixed by the digest (and by ``cause``, when one digest may be
    announced for several reasons, such as each request for it), so a repeat after a
    crash is recognized downstream.
    """
    id_parts = [digest.digest_id] if cause is None else [digest.digest_id, cause]
    event = DigestPublished(
        event_id=deterministic_event_id("digest.published", *id_parts),
        community_id=digest.community_id,
        payload=DigestNotice(
            digest_id=digest.digest_id,
            title=digest.title,
            period_start=digest.period_start,
            period_end=digest.period_end,
            summary=digest.summary,
            member_id=digest.member_id,
        ),
    )
    await publisher.send(topic, encode_event(event), key=community_key(digest.community_id))
    await publisher.flush()


#: Categories named in an ``insights.report`` notice; the full report has them all.
NOTICE_TOP_TOPICS = 5


def insights_notice(report: InsightsReport) -> InsightsReportNotice:
    """The short form of ``report`` that webhook subscribers receive.

    Args:
        report: the insights report over a window of whole UTC days.
    """
    window = report.window
    insight_lines = [line for line in report.kinds if line.is_insight]
    topics = sorted(
        (
            (line.kind, topic)
            for line in insight_lines
            for topic in line.topics
            if topic.count and topic.topic_id is not None and not topic.is_other
        ),
        key=lambda pair: (-pair[1].count, pair[1].name),
    )
    return InsightsReportNotice(
        report_id=f"{report.community_id}:{window.start}:{window.end}",
        window_start=day_start(window.start),
        # The window's days are included: it ends when its last day does.
        window_end=day_start(window.end + timedelta(days=1)),
        messages=report.messages,
        insights=report.insights,
        kinds={line.kind.value: line.count for line in insight_lines},
        top_topics=[
            {
                "kind": kind.value,
                "topic_id": topic.topic_id,
                "name": topic.name,
                "count": topic.count,
                "percent_of_kind": topic.percent_of_kind,
            }
            for kind, topic in topics[:NOTICE_TOP_TOPICS]
        ],
    )


async def announce_insights_report(
    publisher: EventPublisher, topic: str, report: InsightsReport
) -> None:
    """Publish ``insights.report`` for ``report``; its id is fixed by the community and
    window, so announcing the same window again is recognized downstream."""
    notice = insights_notice(report)
    event = InsightsReportPublished(
        event_id=deterministic_event_id("insights.report", notice.report_id),
        community_id=report.community_id,
        payload=notice,
    )
    await publisher.send(topic, encode_event(event), key=community_key(report.community_id))
    await publisher.flush()
