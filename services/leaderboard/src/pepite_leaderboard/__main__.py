"""Start the leaderboard service: ``python -m pepite_leaderboard``.

It raises alerts from message.analyzed (spikes, members in distress, scam waves, see
docs/alerts.md), keeps themed leaderboards from the same analyses and announces
their changes (see docs/leaderboards.md), keeps the community KPI rollups (see
docs/kpis.md), and serves /healthz and /metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pepite_contracts import Topic
from pepite_kit import ConsumerLoop, Runtime, WorkerSpec, event_loop_for, run_worker
from pepite_leaderboard.alerts_handlers import AlertsHandler, alert_rules
from pepite_leaderboard.alerts_repository import ALERT_INDEXES, AlertRepository
from pepite_leaderboard.kpi_handlers import KpiEventsHandler, KpiUpdater
from pepite_leaderboard.kpi_repository import KPI_INDEXES, KpiRepository
from pepite_leaderboard.scores_handlers import ScoresHandler, scoring_policy
from pepite_leaderboard.scores_notices import LeaderboardNotifier
from pepite_leaderboard.scores_repository import SCORES_INDEXES, ScoresRepository
from pepite_leaderboard.scores_service import ScoreUpdater
from pepite_leaderboard.settings import Settings


def main() -> None:
    settings = Settings()

    def loops(runtime: Runtime) -> Sequence[ConsumerLoop[Any]]:
        alerts = AlertsHandler(
            AlertRepository(runtime.db),
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
            rules=alert_rules(settings),
        )
        scores = ScoresHandler(ScoreUpdater(ScoresRepository(runtime.db), scoring_policy(settings)))
        kpi_repository = KpiRepository(runtime.db)
        kpis = KpiEventsHandler(
            KpiUpdater(
                kpi_repository,
                answer_window=timedelta(minutes=settings.kpi_answer_window_minutes),
            ),
            kpi_repository,
        )

        def following_analyses(name: str, group_id: str, handler: Any) -> ConsumerLoop[Any]:
            """A loop of its own group over analyses and member events (erasures)."""
            return event_loop_for(
                name=name,
                settings=settings,
                group_id=group_id,
                handlers={
                    settings.topic_name(Topic.MESSAGES_ANALYZED): handler,
                    settings.topic_name(Topic.MEMBERS_EVENTS): handler,
                },
                publisher=runtime.publisher,
            )

        return [
            # Community KPIs: rollups follow analyses and joins; erasures drop member ids.
            following_analyses("kpis", settings.kpi_consumer_group, kpis),
            # Spikes and crisis signals follow analyses; erasures reach their records.
            following_analyses("alerts", settings.alerts_consumer_group, alerts),
            # Themed leaderboards: scores follow analyses; erasures remove them.
            following_analyses("scores", settings.leaderboard_consumer_group, scores),
        ]

    def background(runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        notifier = LeaderboardNotifier(
            runtime.db,
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
            interval_s=settings.leaderboard_notify_seconds,
            top_size=settings.leaderboard_notice_top,
        )
        return [notifier.run_forever]

    run_worker(
        WorkerSpec(
            name=settings.service_name,
            indexes=[*ALERT_INDEXES, *SCORES_INDEXES, *KPI_INDEXES],
            build_loops=loops,
            build_background=background,
        ),
        settings,
    )


if __name__ == "__main__":
    main()
