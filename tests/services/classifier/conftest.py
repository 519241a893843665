"""What the classifier's tests share: the real analyzer, a publisher, and stages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest, Analyzer
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_classifier.privacy_stage import PrivacyStage
from pepite_classifier.repository import AnalysisRepository, ClassifierRepository
from pepite_classifier.rollups_repository import RollupRepository
from pepite_classifier.stage import AnalysisStage
from pepite_classifier.topics import TopicAssigner, TopicRepository
from pepite_contracts import AnalyzerName, Topic, all_topics
from pepite_embeddings.embedder import Embedder
from pepite_kit import Database, EventPublisher, KafkaSettings, ensure_topics


class CountingAnalyzer:
    """The real local analyzer, noting which messages it is asked about."""

    name = AnalyzerName.LOCAL

    def __init__(self, inner: LocalAnalyzer) -> None:
        self.inner = inner
        self.seen: list[str] = []

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        self.seen.extend(request.message_id for request in requests)
        return await self.inner.analyze(requests)

    async def aclose(self) -> None:
        await self.inner.aclose()


def make_stage(
    db: Database,
    publisher: EventPublisher,
    kafka_settings: KafkaSettings,
    analyzer: Analyzer,
    *,
    privacy: PrivacyStage | None = None,
) -> AnalysisStage:
    """A stage on the test's database and topics, as a consumer process would build it."""
    return AnalysisStage(
        db=db,
        store=ClassifierRepository(db),
        analyses=AnalysisRepository(db),
        analyzer=analyzer,
        topics=TopicAssigner(TopicRepository(db), similarity=0.4),
        rollups=RollupRepository(db),
        publisher=publisher,
        analyzed_topic=kafka_settings.topic_name(Topic.MESSAGES_ANALYZED),
        privacy=privacy,
    )


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def local_analyzer(embedder: Embedder) -> LocalAnalyzer:
    return LocalAnalyzer(embedder=embedder)


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    await ensure_topics(kafka_settings, kafka_settings.topic_names(all_topics()))
    async with EventPublisher(kafka_settings, client_id="classifier-test") as events:
        yield events
