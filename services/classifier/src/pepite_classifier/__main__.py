"""Start the classifier: ``python -m pepite_classifier``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from pepite_classifier.analysis.factory import LLM_INDEXES, build_analyzer
from pepite_classifier.analysis.llm.prompt import CacheKeys
from pepite_classifier.analysis.llm.topic_namer import OpenAITopicNamer
from pepite_classifier.analysis.llm_repository import LlmRepository
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_classifier.handlers import RawMessageHandler
from pepite_classifier.placement import StreamActivity, TopicPlacer
from pepite_classifier.privacy_stage import PrivacyStage
from pepite_classifier.repository import INDEXES, AnalysisRepository, ClassifierRepository
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_classifier.settings import Settings
from pepite_classifier.stage import AnalysisStage
from pepite_classifier.topics import (
    TOPIC_INDEXES,
    TopicAssigner,
    TopicRepository,
    recluster_when_needed,
)
from pepite_contracts import AnalyzerName, Topic
from pepite_embeddings.embedder import Embedder
from pepite_kit import ConsumerLoop, Runtime, WorkerSpec, event_loop_for, run_worker

logger = logging.getLogger(__name__)


class Classifier:
    """The classifier's long-lived parts, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedder = Embedder()
        self.local = LocalAnalyzer(embedder=self.embedder)
        self.activity = StreamActivity()

    def build_loops(self, runtime: Runtime) -> Sequence[ConsumerLoop[Any]]:
        settings = self.settings
        stage = AnalysisStage(
            db=runtime.db,
            store=ClassifierRepository(runtime.db),
            analyses=AnalysisRepository(runtime.db),
            analyzer=build_analyzer(settings, runtime.db, self.local),
            topics=TopicAssigner(TopicRepository(runtime.db), similarity=settings.topic_similarity),
            rollups=RollupRepository(runtime.db),
            publisher=runtime.publisher,
            analyzed_topic=settings.topic_name(Topic.MESSAGES_ANALYZED),
            activity=self.activity,
            # The cache is searched whatever the analyzer now: it may have been filled
            # while the LLM was configured.
            privacy=PrivacyStage(
                runtime.db,
                cache_keys=CacheKeys(
                    settings.openai_model, settings.llm_text_chars, settings.llm_context_chars
                ),
            ),
        )
        handler = RawMessageHandler(stage)
        return [
            event_loop_for(
                name="raw-messages",
                settings=settings,
                group_id=settings.consumer_group,
                handlers={
                    settings.topic_name(Topic.MESSAGES_RAW): handler,
                    settings.topic_name(Topic.MEMBERS_EVENTS): handler,
                },
                publisher=runtime.publisher,
            )
        ]

    def build_background(self, runtime: Runtime) -> Sequence[Callable[[], Awaitable[None]]]:
        namer = (
            OpenAITopicNamer(self.settings, LlmRepository(runtime.db))
            if self.settings.analyzer is AnalyzerName.OPENAI
            else None
        )
        reclustering = partial(recluster_when_needed, runtime.db, self.settings, namer=namer)

        async def warm_up_then_recluster() -> None:
            await self.warm_up()
            # Once per database: messages stored before they had search terms get them.
            await ClassifierRepository(runtime.db).backfill_search_terms()
            await reclustering()

        placer = TopicPlacer(
            db=runtime.db,
            analyses=AnalysisRepository(runtime.db),
            embedder=self.embedder,
            assigner=TopicAssigner(
                TopicRepository(runtime.db), similarity=self.settings.topic_similarity
            ),
            rollups=RollupRepository(runtime.db),
            activity=self.activity,
            refiner=self.local,
            publisher=runtime.publisher,
            analyzed_topic=self.settings.topic_name(Topic.MESSAGES_ANALYZED),
        )
        return [warm_up_then_recluster, placer.run_forever]

    async def warm_up(self) -> None:
        """Load the embedding model now rather than in the middle of the first batch."""
        try:
            await asyncio.to_thread(self.embedder.embed, ["warm up"])
        except Exception:
            # The first batch will try again and fail loudly if the model is truly broken.
            logger.exception("could not load the embedding model ahead of time")
        else:
            logger.info("embedding model loaded")


def main() -> None:
    settings = Settings()
    classifier = Classifier(settings)
    spec = WorkerSpec(
        name=settings.service_name,
        indexes=[*INDEXES, *ROLLUP_INDEXES, *TOPIC_INDEXES, *LLM_INDEXES],
        build_loops=classifier.build_loops,
        build_background=classifier.build_background,
    )
    run_worker(spec, settings)


if __name__ == "__main__":
    main()
