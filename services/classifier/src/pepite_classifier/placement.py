"""Topic placement (and refinement) of insight messages the analyzer did not embed.

Embedding is the costliest step of analysis on a CPU. A message that reaches the stage
with an embedding is placed in a topic at once; any other insight message is counted at
once under "not yet categorized" and embedded here, in large batches, when the stream
is quiet, so that a burst of imported history is stored, analyzed and counted first.
A steady stream still gets its topics: a batch is placed at least every
``max_wait_s`` whatever the load.

A message the local analyzer judged by its fast path alone is analyzed again here with
its embedding (:meth:`LocalAnalyzer.refine_batch`): the stacked heads decide, the
rollups move to the refined kind and sentiment, and ``message.analyzed`` is published
again with the analysis and the topic. A message no longer judged an insight leaves
"not yet categorized" without a topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence

from pymongo.asynchronous.client_session import AsyncClientSession

from pepite_classifier.analysis.base import AnalysisRequest
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_classifier.analyzed_events import analyzed_event, now_ms, publish_analyzed
from pepite_classifier.repository import AnalysisRepository, StoredMessage, TopicPlacement
from pepite_classifier.rollups import rollup_changes
from pepite_classifier.rollups_repository import RollupRepository
from pepite_classifier.topics import EmbeddedInsight, TopicAssigner
from pepite_contracts import INSIGHT_KINDS, Analysis, AnalyzerName
from pepite_embeddings import Embedding
from pepite_embeddings.embedder import Embedder
from pepite_kit import Database, EventPublisher

logger = logging.getLogger(__name__)


class StreamActivity:
    """Whether the consumer is handling a batch, and since when it has not been.

    Background work waits for a lull; a batch that takes seconds to analyze is not one.
    """

    def __init__(self) -> None:
        self._last = 0.0
        self._in_flight = 0

    def touch(self) -> None:
        self._last = time.monotonic()

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Marks the stream busy while a batch is handled."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self.touch()

    def quiet_for(self) -> float:
        if self._in_flight:
            return 0.0
        return time.monotonic() - self._last


class TopicPlacer:
    """Embeds waiting insight messages and places them in topics, rollups included."""

    def __init__(
        self,
        *,
        db: Database,
        analyses: AnalysisRepository,
        embedder: Embedder,
        assigner: TopicAssigner,
        rollups: RollupRepository,
        activity: StreamActivity,
        refiner: LocalAnalyzer | None = None,
        publisher: EventPublisher | None = None,
        analyzed_topic: str | None = None,
        batch_size: int = 256,
        quiet_s: float = 2.0,
        max_wait_s: float = 30.0,
        poll_s: float = 1.0,
    ) -> None:
        self._db = db
        self._analyses = analyses
        self._embedder = embedder
        self._assigner = assigner
        self._rollups = rollups
        self._activity = activity
        self._refiner = refiner
        self._publisher = publisher
        self._analyzed_topic = analyzed_topic
        self._batch_size = batch_size
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._poll_s = poll_s

    async def run_forever(self) -> None:
        """Background job: place waiting messages whenever the stream allows, until cancelled."""
        last_run = time.monotonic()
        while True:
            quiet = self._activity.quiet_for() >= self._quiet_s
            overdue = time.monotonic() - last_run >= self._max_wait_s
            placed = 0
            if quiet or overdue:
                try:
                    placed = await self.place_batch()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("topic placement failed; retrying later")
                last_run = time.monotonic()
            if not placed:
                await asyncio.sleep(self._poll_s)

    async def place_all(self) -> int:
        """Place every waiting message now (for commands and tests); returns how many."""
        total = 0
        while placed := await self.place_batch():
            total += placed
        return total

    async def place_batch(self) -> int:
        """Embed and place one batch of waiting messages; returns how many were written
        (a message analyzed anew or deleted meanwhile is left to its new analysis)."""
        waiting = await self._analyses.unplaced_insights(self._batch_size)
        if not waiting:
            return 0
        vectors = await asyncio.to_thread(self._embedder.embed, [m.text for m in waiting])
        final = await self._refined(waiting, vectors)
        topic_ids: dict[str, str | None] = {}
        by_community: dict[str, list[int]] = {}
        for index, message in enumerate(waiting):
            if message.id in final and final[message.id].kind in INSIGHT_KINDS:
                by_community.setdefault(message.community_id, []).append(index)
        for community_id, indexes in by_community.items():
            insights = [
                embedded_insight(waiting[i], final[waiting[i].id], vectors[i]) for i in indexes
            ]
            found = await self._assigner.assign(community_id, insights)
            topic_ids.update(zip((i.message_id for i in insights), found, strict=True))
        placements = [
            TopicPlacement(
                m.id,
                m.analysis_digest,
                topic_ids.get(m.id),
                refined=final[m.id] if final[m.id] is not m.analysis else None,
            )
            for m in waiting
            if m.analysis_digest is not None and m.id in final
        ]
        by_id = {m.id: m for m in waiting}
        written: set[str] = set()

        async def write(session: AsyncClientSession) -> None:
            written.clear()
            written.update(await self._analyses.place(placements, session=session))
            # The message leaves "not yet categorized" for its topic, maybe another kind.
            changes = rollup_changes(
                (
                    by_id[p.message_id].counted_before(),
                    by_id[p.message_id].counted_as(final[p.message_id], p.topic_id),
                )
                for p in placements
                if p.message_id in written
            )
            await self._rollups.apply(changes, session=session)

        async with self._db.client.start_session() as session:
            await session.with_transaction(write)
        await self._publish([p for p in placements if p.message_id in written], by_id, final)
        return len(written)

    async def _refined(
        self, waiting: Sequence[StoredMessage], vectors: Embedding
    ) -> dict[str, Analysis]:
        """Each waiting message's analysis: refined with its embedding when the local
        analyzer gave it, as stored otherwise (an LLM's answer is kept)."""
        final = {m.id: m.analysis for m in waiting if m.analysis is not None}
        if self._refiner is None:
            return final
        local = [
            index
            for index, m in enumerate(waiting)
            if m.analysis is not None and m.analysis.analyzer is AnalyzerName.LOCAL
        ]
        if not local:
            return final
        messages = [waiting[index] for index in local]
        parents = await self._analyses.parents_of(messages)
        requests = [
            AnalysisRequest(
                message_id=m.id,
                community_id=m.community_id,
                text=m.text,
                context=(parents[m.id][0],) if parents.get(m.id, ("", ""))[0] else (),
                author_is_bot=m.author.is_bot,
                attachment_count=m.attachment_count,
            )
            for m in messages
        ]
        outcomes = await asyncio.to_thread(self._refiner.refine_batch, requests, vectors[local])
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome.analysis != message.analysis:
                final[message.id] = outcome.analysis
        return final

    async def _publish(
        self,
        placements: list[TopicPlacement],
        by_id: dict[str, StoredMessage],
        final: dict[str, Analysis],
    ) -> None:
        """``message.analyzed`` again for placed messages: their topic, maybe a new kind."""
        if self._publisher is None or self._analyzed_topic is None or not placements:
            return
        analyzed_at = now_ms()
        await publish_analyzed(
            self._publisher,
            self._analyzed_topic,
            (
                analyzed_event(
                    by_id[placement.message_id],
                    final[placement.message_id],
                    digest=placement.digest,
                    topic_id=placement.topic_id,
                    analyzed_at=analyzed_at,
                    placed=True,
                )
                for placement in placements
            ),
        )


def embedded_insight(
    message: StoredMessage, analysis: Analysis, vector: Embedding
) -> EmbeddedInsight:
    """What topic assignment needs of an insight message."""
    return EmbeddedInsight(
        message_id=message.id,
        channel_id=message.channel.id,
        kind=analysis.kind,
        created_at=message.created_at,
        embedding=vector,
    )
