"""The analysis stage against a real MongoDB and broker, with the real local analyzer.

What matters here is bookkeeping: a message is analyzed when its text changed and only
then, the rollups always equal what the stored analyses say, and every analysis that
landed is published once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.openai_server import FakeOpenAIServer
from tests.kafka_helpers import read_topic
from tests.services.classifier.conftest import CountingAnalyzer, make_stage

from pepite_classifier.analysis.base import AnalysisOutcome, AnalysisRequest, Analyzer
from pepite_classifier.analysis.factory import LLM_INDEXES, build_analyzer
from pepite_classifier.analysis.local import LocalAnalyzer
from pepite_classifier.placement import StreamActivity, TopicPlacer
from pepite_classifier.repository import INDEXES, AnalysisRepository
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_classifier.service import plan_writes
from pepite_classifier.settings import Settings
from pepite_classifier.stage import AnalysisStage
from pepite_classifier.topics import TOPIC_INDEXES, TopicAssigner, TopicRepository
from pepite_contracts import (
    INSIGHT_KINDS,
    AnalyzerName,
    ChannelRef,
    Event,
    Member,
    MessageAnalyzed,
    MessageDeleted,
    MessageDeletion,
    MessageIngested,
    NormalizedMessage,
    Platform,
    Topic,
    decode_event,
)
from pepite_embeddings.embedder import Embedder
from pepite_kit import Database, EventPublisher, KafkaSettings
from pepite_kit.mongo import ensure_indexes

pytestmark = pytest.mark.asyncio

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
ANN = Member(id="discord:acme:u1", native_id="u1", name="ann")
BOB = Member(id="discord:acme:u2", native_id="u2", name="bob")

TEXTS = [
    "How do I configure the webhook secret for the staging environment?",
    "The app crashes with error 500 every time I try to log in since the last update",
    "It would be great if you could add dark mode to the dashboard",
    "thanks a lot, that fixed it!",
    "good morning everyone",
    "lol",
]


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    await ensure_indexes(mongo_db, [*INDEXES, *ROLLUP_INDEXES, *TOPIC_INDEXES])
    return mongo_db


StageFor = Callable[[Analyzer], AnalysisStage]


@pytest.fixture
def stage_for(
    db: Database, publisher: EventPublisher, kafka_settings: KafkaSettings, embedder: Embedder
) -> StageFor:
    """Builds the stage around an analyzer, on the test's database and topics."""

    def build(analyzer: Analyzer) -> AnalysisStage:
        return make_stage(db, publisher, kafka_settings, analyzer)

    return build


def ingested(n: int, text: str, **overrides: Any) -> MessageIngested:
    fields: dict[str, Any] = {
        "id": f"discord:acme:{n}",
        "platform": Platform.DISCORD,
        "community_id": "acme",
        "native_id": str(n),
        "channel": ChannelRef(id="c1", name="general"),
        "author": ANN if n % 2 else BOB,
        "text": text,
        "created_at": T0 + timedelta(minutes=n),
    }
    fields.update(overrides)
    return MessageIngested(community_id="acme", payload=NormalizedMessage(**fields))


async def kinds_in_rollups(db: Database) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for doc in db["kind_rollups"].find({"community_id": "acme"}):
        counts[doc["kind"]] += doc["count"]
    return +counts


async def kinds_stored(db: Database) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for doc in db["messages"].find({"analysis": {"$exists": True}}, {"analysis.kind": 1}):
        counts[doc["analysis"]["kind"]] += 1
    return counts


async def total_in_activity(db: Database) -> int:
    return sum([doc["messages"] async for doc in db["activity_rollups"].find({})])


async def run(stage: AnalysisStage, *events: Event) -> None:
    await stage.run(plan_writes(list(events)))


async def test_new_messages_are_analyzed_counted_and_published(
    db: Database, stage_for: StageFor, local_analyzer: LocalAnalyzer, kafka_settings: KafkaSettings
) -> None:
    analyzer = CountingAnalyzer(local_analyzer)
    stage = stage_for(analyzer)
    events = [ingested(n, text) for n, text in enumerate(TEXTS)]

    await run(stage, *events)

    assert sorted(analyzer.seen) == sorted(e.payload.id for e in events)
    stored = await kinds_stored(db)
    assert sum(stored.values()) == len(TEXTS)
    assert await kinds_in_rollups(db) == stored
    assert await total_in_activity(db) == len(TEXTS)
    published = [
        decode_event(value)
        for value in await read_topic(
            kafka_settings, kafka_settings.topic_name(Topic.MESSAGES_ANALYZED)
        )
    ]
    assert all(isinstance(event, MessageAnalyzed) for event in published)
    by_id = {
        event.payload.message_id: event for event in published if isinstance(event, MessageAnalyzed)
    }
    assert set(by_id) == {e.payload.id for e in events}
    crash = by_id["discord:acme:1"].payload
    assert crash.analysis.kind.value == "problem"
    assert crash.author == ANN
    assert crash.channel.id == "c1"


async def test_a_replay_is_not_analyzed_again_and_moves_no_count(
    db: Database, stage_for: StageFor, local_analyzer: LocalAnalyzer
) -> None:
    analyzer = CountingAnalyzer(local_analyzer)
    stage = stage_for(analyzer)
    events = [ingested(n, text) for n, text in enumerate(TEXTS)]
    await run(stage, *events)
    before = (await kinds_in_rollups(db), await total_in_activity(db))
    analyzer.seen.clear()

    await run(stage, *events)
    # A reaction changes the stored message but not what it says: no new analysis.
    reacted = ingested(3, TEXTS[3], reactions=[{"emoji": "👍", "count": 2}])
    await run(stage, reacted)

    assert analyzer.seen == []
    assert (await kinds_in_rollups(db), await total_in_activity(db)) == before


async def test_an_edit_moves_the_message_to_its_new_kind(
    db: Database, stage_for: StageFor, local_analyzer: LocalAnalyzer
) -> None:
    analyzer = CountingAnalyzer(local_analyzer)
    stage = stage_for(analyzer)
    await run(stage, ingested(1, "thanks a lot, that fixed it!"))
    first = (await kinds_stored(db)).most_common(1)[0][0]

    edited = ingested(
        1,
        "The app crashes with error 500 every time I try to log in since the last update",
        edited_at=T0 + timedelta(hours=1),
    )
    await run(stage, edited)

    stored = await kinds_stored(db)
    assert stored == Counter({"problem": 1})
    assert first != "problem"
    assert await kinds_in_rollups(db) == stored
    assert await total_in_activity(db) == 1
    assert analyzer.seen == ["discord:acme:1", "discord:acme:1"]


async def test_a_deletion_takes_the_message_out_of_every_count(
    db: Database, stage_for: StageFor, local_analyzer: LocalAnalyzer
) -> None:
    analyzer = CountingAnalyzer(local_analyzer)
    stage = stage_for(analyzer)
    events = [ingested(n, text) for n, text in enumerate(TEXTS)]
    await run(stage, *events)
    deleted = events[1].payload
    deletion = MessageDeleted(
        community_id="acme",
        payload=MessageDeletion(
            id=deleted.id,
            platform=deleted.platform,
            community_id="acme",
            native_id=deleted.native_id,
            channel=deleted.channel,
            deleted_at=T0 + timedelta(days=1),
        ),
    )

    await run(stage, deletion)
    await run(stage, deletion)  # a replayed deletion decrements nothing more
    await run(stage, events[1])  # nor does a re-import bring the message back

    assert await total_in_activity(db) == len(TEXTS) - 1
    assert await kinds_in_rollups(db) == await kinds_stored(db)
    doc = await db["messages"].find_one({"_id": deleted.id})
    assert doc is not None
    assert "analysis" not in doc
    assert doc["text"] == ""
    assert await db["message_embeddings"].count_documents({"_id": deleted.id}) == 0


async def test_an_opted_out_member_is_never_sent_to_the_model_not_even_as_context(
    db: Database,
    stage_for: StageFor,
    local_analyzer: LocalAnalyzer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    secret = "my password reset link never arrives, I am locked out of my account"
    with FakeOpenAIServer() as fake:
        settings = Settings(
            analyzer=AnalyzerName.OPENAI,
            openai_base_url=fake.base_url,
            openai_api_key="test-key",
            openai_backoff_s=0.01,
        )
        await ensure_indexes(db, LLM_INDEXES)
        openai = build_analyzer(settings, db, local_analyzer)
        stage = stage_for(openai)
        # Bob (even ids) opted out; Ann did not.
        await run(stage, ingested(1, "hello all, first time here"))
        await db["members"].update_one({"_id": BOB.id}, {"$set": {"ai_opt_out": True}}, upsert=True)
        await run(
            stage,
            ingested(2, secret),
            ingested(3, "did you try clearing the cache?", reply_to_id="discord:acme:2"),
            ingested(5, "How do I export my data to CSV?"),
        )
        sent = [item for call in fake.completions() for item in call.items]
        await openai.aclose()

    sent_texts = " ".join(item.text + " " + (item.context or "") for item in sent)
    assert "clearing the cache" in sent_texts
    assert "export my data" in sent_texts
    assert secret not in sent_texts
    stored = {
        doc["_id"]: doc["analysis"]["analyzer"]
        async for doc in db["messages"].find({}, {"analysis.analyzer": 1})
    }
    assert stored["discord:acme:2"] == "local"
    assert stored["discord:acme:3"] == "openai"


class WithoutEmbeddings:
    """The local analyzer's answers without their embeddings, as an LLM would answer."""

    name = AnalyzerName.OPENAI

    def __init__(self, inner: LocalAnalyzer) -> None:
        self.inner = inner

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        return [AnalysisOutcome(o.analysis) for o in await self.inner.analyze(requests)]

    async def aclose(self) -> None:
        return None


async def test_insights_without_embedding_are_counted_at_once_and_placed_later(
    db: Database, stage_for: StageFor, local_analyzer: LocalAnalyzer, embedder: Embedder
) -> None:
    stage = stage_for(WithoutEmbeddings(local_analyzer))
    events = [ingested(n, text) for n, text in enumerate(TEXTS)]
    await run(stage, *events)
    waiting = await db["messages"].count_documents({"topic_pending": True})
    insights = await db["messages"].count_documents(
        {"analysis.kind": {"$in": [k.value for k in INSIGHT_KINDS]}}
    )
    assert waiting == insights >= 2
    assert await total_in_activity(db) == len(TEXTS)

    placer = TopicPlacer(
        db=db,
        analyses=AnalysisRepository(db),
        embedder=embedder,
        assigner=TopicAssigner(TopicRepository(db), similarity=0.4),
        rollups=RollupRepository(db),
        activity=StreamActivity(),
    )
    assert await placer.place_all() == waiting

    assert await db["messages"].count_documents({"topic_pending": True}) == 0
    assert await db["message_embeddings"].count_documents({}) == insights
    assert await kinds_in_rollups(db) == await kinds_stored(db)
    assert await total_in_activity(db) == len(TEXTS)
    assert await placer.place_all() == 0


OPINIONS = [
    "Honestly the new interface is terrible, everything is slower and harder to find now",
    "I love the new version, everything is so fast and smooth now!",
    "the search is kind of meh since the redesign, not sure I like it",
]


async def test_the_placer_refines_local_insights_with_their_embeddings_and_republishes(  # noqa: PLR0917 - fixtures
    db: Database,
    stage_for: StageFor,
    local_analyzer: LocalAnalyzer,
    embedder: Embedder,
    publisher: EventPublisher,
    kafka_settings: KafkaSettings,
) -> None:
    texts = [*TEXTS, *OPINIONS]
    await run(
        local_analyzer_stage := stage_for(local_analyzer),
        *[ingested(n, text) for n, text in enumerate(texts)],
    )
    del local_analyzer_stage
    waiting = await db["messages"].count_documents({"topic_pending": True})
    insights = await db["messages"].count_documents(
        {"analysis.kind": {"$in": [k.value for k in INSIGHT_KINDS]}}
    )
    # The fast path decided alone: nothing embedded yet, every insight waits.
    assert waiting == insights >= 4
    assert await db["message_embeddings"].count_documents({}) == 0
    analyzed_topic = kafka_settings.topic_name(Topic.MESSAGES_ANALYZED)

    placer = TopicPlacer(
        db=db,
        analyses=AnalysisRepository(db),
        embedder=embedder,
        assigner=TopicAssigner(TopicRepository(db), similarity=0.4),
        rollups=RollupRepository(db),
        activity=StreamActivity(),
        refiner=local_analyzer,
        publisher=publisher,
        analyzed_topic=analyzed_topic,
    )
    assert await placer.place_all() == waiting

    # What is stored is what the analyzer says when it embeds insights at once.
    inline = LocalAnalyzer(embedder=embedder, embed_inline=True).analyze_batch(
        [
            AnalysisRequest(message_id=f"discord:acme:{n}", community_id="acme", text=text)
            for n, text in enumerate(texts)
        ]
    )
    stored = {
        doc["_id"]: doc async for doc in db["messages"].find({}, {"analysis": 1, "topic_id": 1})
    }
    for n, outcome in enumerate(inline):
        doc = stored[f"discord:acme:{n}"]
        assert doc["analysis"]["kind"] == outcome.analysis.kind.value, texts[n]
        assert doc["analysis"]["sentiment"] == outcome.analysis.sentiment.value, texts[n]
        assert doc["analysis"]["kind_scores"] == {
            kind.value: score for kind, score in outcome.analysis.kind_scores.items()
        }
    assert await db["messages"].count_documents({"topic_pending": True}) == 0
    assert await kinds_in_rollups(db) == await kinds_stored(db)
    assert await total_in_activity(db) == len(texts)

    # Each placed message is published again, with its final analysis and its topic.
    events = [decode_event(value) for value in await read_topic(kafka_settings, analyzed_topic)]
    assert len(events) == len(texts) + waiting
    latest = {e.payload.message_id: e.payload for e in events if isinstance(e, MessageAnalyzed)}
    for message_id, payload in latest.items():
        assert payload.analysis.kind.value == stored[message_id]["analysis"]["kind"]
        assert payload.topic_id == stored[message_id].get("topic_id")
    assert len({e.event_id for e in events}) == len(events)
