"""The analysis stage: what happens to a batch once its messages are stored.

Messages whose text changed since their last analysis (new ones, edits; not replays, not
reactions) are analyzed in one call, insight messages are placed in a topic, the analyses
and the rollup changes they cause are written in one transaction, and ``message.analyzed``
is published for each, before the batch's offsets are committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pymongo.asynchronous.client_session import AsyncClientSession

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest, Analyzer
from pepite_classifier.analyzed_events import analyzed_event, now_ms, publish_analyzed
from pepite_classifier.placement import StreamActivity, embedded_insight
from pepite_classifier.privacy import ERASED_ANALYSIS
from pepite_classifier.privacy_stage import PrivacyStage
from pepite_classifier.repository import (
    AnalysisRepository,
    AnalysisWrite,
    ClassifierRepository,
    StoredMessage,
)
from pepite_classifier.rollups import rollup_changes
from pepite_classifier.rollups_repository import RollupRepository
from pepite_classifier.service import BatchWrites, analysis_digest
from pepite_classifier.topics import TopicAssigner
from pepite_contracts import INSIGHT_KINDS, AnalyzerName, MessageDeletion
from pepite_kit import Database, EventPublisher
from pepite_kit.metrics import ANALYZER_BATCH_SECONDS, MESSAGES_ANALYZED

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analyzed:
    """A message with its new analysis, before it is written."""

    message: StoredMessage
    outcome: AnalysisOutcome
    digest: str
    topic_id: str | None = None
    #: An insight message without an embedding: the placer gives it a topic later.
    topic_pending: bool = False


class AnalysisStage:
    """Stores a batch, analyzes what changed, moves the rollups, publishes the results."""

    def __init__(
        self,
        *,
        db: Database,
        store: ClassifierRepository,
        analyses: AnalysisRepository,
        analyzer: Analyzer,
        topics: TopicAssigner,
        rollups: RollupRepository,
        publisher: EventPublisher,
        analyzed_topic: str,
        activity: StreamActivity | None = None,
        privacy: PrivacyStage | None = None,
    ) -> None:
        self._db = db
        self._store = store
        self._analyses = analyses
        self._analyzer = analyzer
        self._topics = topics
        self._rollups = rollups
        self._publisher = publisher
        self._analyzed_topic = analyzed_topic
        self._activity = activity or StreamActivity()
        self._privacy = privacy or PrivacyStage(db)

    async def run(self, writes: BatchWrites) -> None:
        with self._activity.handling():
            await self._run(writes)

    async def _run(self, writes: BatchWrites) -> None:
        erased = await self._privacy.before_store(writes)
        deletions = writes.deletions
        writes.deletions = {}
        await self._store.apply(writes)
        await self._privacy.after_store(writes, erased)
        touched = [*writes.messages, *writes.edits]
        if touched:
            await self._analyze(touched)
        if deletions:
            await self._delete(deletions)

    async def _analyze(self, message_ids: Sequence[str]) -> None:
        stored = await self._analyses.live_messages(message_ids)
        pending = [
            (message, digest)
            for message in stored
            if (digest := analysis_digest(message.text, message.attachment_count))
            != message.analysis_digest
        ]
        if not pending:
            return
        # An erased member's message has nothing left to read: no analyzer sees it.
        outcomes = {m.id: AnalysisOutcome(ERASED_ANALYSIS) for m, _ in pending if m.erased}
        messages = [message for message, _ in pending if not message.erased]
        if messages:
            outcomes.update(await self._ask_analyzer(messages))
        analyzed = [
            Analyzed(message=message, outcome=outcomes[message.id], digest=digest)
            for message, digest in pending
        ]
        analyzed = await self._place_in_topics(analyzed)
        analyzed_at = now_ms()
        writes = [
            AnalysisWrite(
                message_id=item.message.id,
                analysis=item.outcome.analysis,
                digest=item.digest,
                previous_digest=item.message.analysis_digest,
                topic_id=item.topic_id,
                analyzed_at=analyzed_at,
                topic_pending=item.topic_pending,
            )
            for item in analyzed
        ]
        landed: list[Analyzed] = []

        async def write(session: AsyncClientSession) -> None:
            written = await self._analyses.store(writes, session=session)
            landed[:] = [item for item in analyzed if item.message.id in written]
            changes = rollup_changes(
                (
                    item.message.counted_before(),
                    item.message.counted_as(item.outcome.analysis, item.topic_id),
                )
                for item in landed
            )
            await self._rollups.apply(changes, session=session)

        # A topic rebuild replaces counters in its own transaction: a write conflict with
        # it is retried here rather than failing the batch.
        async with self._db.client.start_session() as session:
            await session.with_transaction(write)
        left_insights = [
            item.message.id
            for item in landed
            if item.message.prior is not None
            and item.message.prior.kind in INSIGHT_KINDS
            and item.outcome.analysis.kind not in INSIGHT_KINDS
        ]
        if left_insights:
            await self._topics.forget(left_insights)
        for item in landed:
            MESSAGES_ANALYZED.labels(analyzer=item.outcome.analysis.analyzer.value).inc()
        await publish_analyzed(
            self._publisher,
            self._analyzed_topic,
            (
                analyzed_event(
                    item.message,
                    item.outcome.analysis,
                    digest=item.digest,
                    topic_id=item.topic_id,
                    analyzed_at=analyzed_at,
                )
                for item in landed
            ),
        )

    async def _ask_analyzer(self, messages: Sequence[StoredMessage]) -> dict[str, AnalysisOutcome]:
        """The analyzer's outcome for each message, by id."""
        opted_out = await self._opted_out(messages)
        contexts = await self._contexts(messages, opted_out)
        requests = [
            AnalysisRequest(
                message_id=message.id,
                community_id=message.community_id,
                text=message.text,
                context=contexts.get(message.id, ()),
                author_is_bot=message.author.is_bot,
                attachment_count=message.attachment_count,
                ai_opt_out=message.author.id in opted_out,
            )
            for message in messages
        ]
        with ANALYZER_BATCH_SECONDS.labels(analyzer=self._analyzer.name.value).time():
            outcomes = await self._analyzer.analyze(requests)
        return {message.id: outcome for message, outcome in zip(messages, outcomes, strict=True)}

    async def _opted_out(self, messages: Sequence[StoredMessage]) -> set[str]:
        """Authors whose texts must not reach a remote model (only asked when one is used)."""
        if self._analyzer.name is AnalyzerName.LOCAL:
            return set()
        return await self._analyses.opted_out_of_ai(m.author.id for m in messages)

    async def _contexts(
        self, messages: Sequence[StoredMessage], opted_out: set[str]
    ) -> dict[str, tuple[str, ...]]:
        """The text each reply answers (its parent), for analyzers that weigh context.

        A parent written by a member who opted out of AI processing is left out, since the
        context travels with the reply to the model.
        """
        parents = await self._analyses.parents_of(messages)
        if parents and self._analyzer.name is not AnalyzerName.LOCAL:
            opted_out = opted_out | await self._analyses.opted_out_of_ai(
                author for _, author in parents.values()
            )
        return {
            message_id: (text,)
            for message_id, (text, author) in parents.items()
            if text and author not in opted_out
        }

    async def _place_in_topics(self, analyzed: list[Analyzed]) -> list[Analyzed]:
        """Topics for the insight messages that come with an embedding.

        The others wait for the :class:`~pepite_classifier.placement.TopicPlacer`, which
        embeds them in bulk when the stream is quiet.
        """
        embedded: dict[str, list[Analyzed]] = {}
        for item in analyzed:
            if item.outcome.analysis.kind in INSIGHT_KINDS and item.outcome.embedding is not None:
                embedded.setdefault(item.message.community_id, []).append(item)
        placed: dict[str, str | None] = {}
        for community_id, items in embedded.items():
            insights = [
                embedded_insight(item.message, item.outcome.analysis, item.outcome.embedding)
                for item in items
                if item.outcome.embedding is not None
            ]
            topic_ids = await self._topics.assign(community_id, insights)
            placed.update(zip((i.message_id for i in insights), topic_ids, strict=True))
        return [
            Analyzed(
                message=item.message,
                outcome=item.outcome,
                digest=item.digest,
                topic_id=placed.get(item.message.id),
                topic_pending=item.outcome.analysis.kind in INSIGHT_KINDS
                and item.message.id not in placed,
            )
            for item in analyzed
        ]

    async def _delete(self, deletions: dict[str, MessageDeletion]) -> None:
        counted = [m for m in await self._analyses.live_messages(deletions) if m.prior]

        async def write(session: AsyncClientSession) -> None:
            await self._store.delete_messages(deletions, session=session)
            changes = rollup_changes((m.counted_before(), None) for m in counted)
            await self._rollups.apply(changes, session=session)

        async with self._db.client.start_session() as session:
            await session.with_transaction(write)
        await self._topics.forget(list(deletions))
