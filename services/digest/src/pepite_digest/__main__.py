"""Start the digest service: ``python -m pepite_digest``.

It publishes each community's weekly digest on its schedule (``digest.published`` on
the notifications topic), builds the digests asked for through the API
(``digests.requests``), follows members' consent and erasures, and serves /healthz
and /metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pepite_contracts import Topic
from pepite_digest.consent import CONSENT_INDEXES, ConsentRepository
from pepite_digest.handlers import DigestRequestHandler, MemberEventsHandler
from pepite_digest.journal_repository import JOURNAL_INDEXES
from pepite_digest.journal_schedule import JournalScheduler
from pepite_digest.journal_service import JournalDataOwner
from pepite_digest.knowledge import KnowledgeBuilder, KnowledgePrivacy
from pepite_digest.personal_repository import PERSONAL_DIGEST_INDEXES, PersonalDigestRepository
from pepite_digest.privacy import MemberDataOwner
from pepite_digest.repository import DIGEST_INDEXES
from pepite_digest.requests_repository import DigestRequestRepository
from pepite_digest.schedule import SCHEDULE_INDEXES, DigestScheduler
from pepite_digest.service import DigestService
from pepite_digest.settings import Settings
from pepite_digest.unanswered import UnansweredWatcher
from pepite_digest.unanswered_repository import UNANSWERED_INDEXES, UnansweredRepository
from pepite_digest.writer import build_writer
from pepite_embeddings import Embedder
from pepite_kit import ConsumerLoop, Runtime, WorkerSpec, event_loop_for, run_worker
from pepite_knowledge import KNOWLEDGE_INDEXES


def member_data_owners(runtime: Runtime) -> list[MemberDataOwner]:
    """Every store of per-member data in this service, told of withdrawals and erasures."""
    return [
        KnowledgePrivacy(runtime.db),
        JournalDataOwner(runtime.db),
        PersonalDigestRepository(runtime.db),
        UnansweredRepository(runtime.db),
    ]


def main() -> None:
    settings = Settings()

    def loops(runtime: Runtime) -> Sequence[ConsumerLoop[Any]]:
        handler = MemberEventsHandler(ConsentRepository(runtime.db), member_data_owners(runtime))
        requests = DigestRequestHandler(
            DigestService(runtime.db, writer=build_writer(settings, runtime.db)),
            DigestRequestRepository(runtime.db),
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
        )
        return [
            event_loop_for(
                name="member-events",
                settings=settings,
                group_id=settings.consumer_group,
                handlers={settings.topic_name(Topic.MEMBERS_EVENTS): handler},
                publisher=runtime.publisher,
            ),
            event_loop_for(
                name="digest-requests",
                settings=settings,
                group_id=settings.requests_consumer_group,
                handlers={settings.topic_name(Topic.DIGEST_REQUESTS): requests},
                publisher=runtime.publisher,
            ),
        ]

    def background(runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        scheduler = DigestScheduler(
            runtime.db,
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
            poll_s=settings.digest_poll_seconds,
            personal_lookback=timedelta(days=settings.personal_lookback_days),
            # A misconfigured LLM stops the service at start-up rather than at 9 on Monday.
            writer=build_writer(settings, runtime.db),
        )
        knowledge = KnowledgeBuilder(runtime.db, Embedder(), poll_s=settings.knowledge_poll_seconds)
        journals = JournalScheduler(
            runtime.db,
            poll_s=settings.journal_poll_seconds,
            catch_up_days=settings.journal_catch_up_days,
        )
        unanswered = UnansweredWatcher(
            runtime.db,
            runtime.publisher,
            notifications_topic=settings.topic_name(Topic.NOTIFICATIONS),
            after=timedelta(hours=settings.unanswered_after_hours),
            horizon=timedelta(days=settings.unanswered_horizon_days),
            poll_s=settings.unanswered_poll_seconds,
        )
        return [
            scheduler.run_forever,
            knowledge.run_forever,
            journals.run_forever,
            unanswered.run_forever,
        ]

    run_worker(
        WorkerSpec(
            name=settings.service_name,
            indexes=[
                *DIGEST_INDEXES,
                *SCHEDULE_INDEXES,
                *CONSENT_INDEXES,
                *KNOWLEDGE_INDEXES,
                *JOURNAL_INDEXES,
                *PERSONAL_DIGEST_INDEXES,
                *UNANSWERED_INDEXES,
            ],
            build_loops=loops,
            build_background=background,
        ),
        settings,
    )


if __name__ == "__main__":
    main()
