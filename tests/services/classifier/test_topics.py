"""Topics: clustering real sentence embeddings, stable ids, keyword names, assignment."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pymongo import AsyncMongoClient, MongoClient
from tests.conftest import Stack
from typer.testing import CliRunner

from pepite_classifier.rollups import rollup_changes, state_from_document
from pepite_classifier.rollups_repository import ROLLUP_INDEXES, RollupRepository
from pepite_classifier.topics import (
    TOPIC_INDEXES,
    EmbeddedInsight,
    TopicAssigner,
    TopicClusterer,
    TopicNaming,
    TopicRepository,
    TopicSettings,
    needs_recluster,
    other_topic_id,
    recluster_due,
)
from pepite_classifier.topics.clustering import OTHER, ClusteringParams, cluster, match_topics
from pepite_classifier.topics.keywords import keyword_name, terms, tokens, topic_keywords
from pepite_classifier.topics.repository import TOPIC_RUNS, TopicRun
from pepite_contracts import Analysis, MessageKind
from pepite_embeddings.embedder import Embedder
from pepite_kit import Database
from pepite_kit.cli import build_app
from pepite_kit.mongo import ensure_indexes
from pepite_reports.rollups import RollupReader

#: Paraphrases of five things a community says, in the kind each is.
GROUPS: dict[str, tuple[MessageKind, list[str]]] = {
    "nginx": (
        MessageKind.QUESTION,
        [
            "How do I configure nginx as a reverse proxy?",
            "What is the right nginx config for a reverse proxy in front of my app?",
            "Can someone help me set up an nginx reverse proxy configuration?",
            "How to configure nginx to forward requests to my backend?",
            "Where do I put proxy_pass in my nginx reverse proxy config?",
            "nginx reverse proxy setup: which config file do I edit?",
            "Is there an example nginx config for proxying to a local port?",
            "How do I make nginx proxy requests to a node app on port 3000?",
        ],
    ),
    "login": (
        MessageKind.PROBLEM,
        [
            "Login fails with error 500",
            "I get an error 500 when I try to log in",
            "Can't log in, the server returns error 500",
            "The login page shows an internal server error 500",
            "Logging in gives me a 500 internal error since this morning",
            "error 500 every time I submit the login form",
            "Sign in broken: HTTP 500 error after entering my password",
            "login keeps failing with a 500 server error",
        ],
    ),
    "billing": (
        MessageKind.COMPLAINT,
        [
            "I was charged twice for my subscription this month",
            "My card got billed two times for the same subscription",
            "Double charge on my invoice, I want a refund",
            "You charged me twice for one subscription payment",
            "Why was my credit card charged two times this month?",
            "I see two identical charges for my subscription on my bank statement",
            "Billed twice for the monthly plan, please refund one charge",
            "The subscription payment was taken twice from my card",
        ],
    ),
    "dark mode": (
        MessageKind.FEATURE_REQUEST,
        [
            "Please add a dark mode to the app",
            "Would love a dark theme option in the app",
            "Any plans for a dark mode? The white background hurts my eyes",
            "Feature request: dark mode for the mobile app",
            "Can we get a night theme with dark colors?",
            "A dark mode setting would be great",
            "Please support a dark theme, the bright UI is too much at night",
            "I would really like the app to have a dark mode",
        ],
    ),
    "export": (
        MessageKind.FEATURE_REQUEST,
        [
            "It would be great to export my data to CSV",
            "Please add a CSV export of the reports",
            "Can you add an option to download the data as a CSV file?",
            "Feature idea: export the table to Excel or CSV",
            "I need to export all my records to a spreadsheet",
            "An export to CSV button would save me a lot of time",
            "Could the dashboard let me download reports as CSV?",
            "Please let us export the data to a CSV spreadsheet",
        ],
    ),
}

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def corpus(embedder: Embedder) -> list[tuple[str, str, MessageKind, str, np.ndarray]]:
    """(message id, group, kind, text, embedding) of every paraphrase, in id order."""
    rows = [(group, kind, text) for group, (kind, texts) in GROUPS.items() for text in texts]
    vectors = embedder.embed([text for _, _, text in rows])
    return [
        (f"discord:acme:{n:03d}", group, kind, text, vectors[n])
        for n, (group, kind, text) in enumerate(rows)
    ]


SETTINGS = TopicSettings(topic_min_size=3, topic_first_run_messages=10)


def test_clusters_of_paraphrases_are_the_groups(
    corpus: list[tuple[str, str, MessageKind, str, np.ndarray]],
) -> None:
    vectors = np.stack([row[4] for row in corpus])
    groups = [row[1] for row in corpus]
    found = cluster(vectors, SETTINGS.clustering_params())
    assert len(found.centroids) == len(GROUPS)
    for topic in range(len(found.centroids)):
        members = [groups[i] for i in np.flatnonzero(found.labels == topic)]
        # Each topic is one group, and holds most of it.
        assert len(set(members)) == 1, members
        assert len(members) >= 6
    assert (found.labels == OTHER).sum() <= 4
    # Deterministic: the same input gives the same topics.
    again = cluster(vectors, SETTINGS.clustering_params())
    assert np.array_equal(again.labels, found.labels)
    assert np.array_equal(again.medoids, found.medoids)


def test_clustering_too_few_vectors_finds_nothing() -> None:
    vectors = np.eye(3, 8, dtype=np.float32)
    found = cluster(vectors, ClusteringParams(min_topic_size=5))
    assert len(found.centroids) == 0
    assert (found.labels == OTHER).all()


def test_matching_pairs_most_similar_first() -> None:
    known = np.eye(3, dtype=np.float32)
    new = np.array([[0.9, 0.1, 0], [0.95, 0, 0.05], [0, 0, 1]], dtype=np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    matches = match_topics(new, known, threshold=0.8)
    # New topic 1 is closer to known 0 than new topic 0 is: it takes the id.
    assert sorted((m.new, m.known) for m in matches) == [(1, 0), (2, 2)]


def test_keywords_skip_stop_words_urls_and_mentions() -> None:
    assert tokens("Bonjour, quelqu'un sait comment configurer l'authentification ?") == [
        None,
        None,
        None,
        None,
        "configurer",
        "authentification",
    ]
    words = [w for w in tokens("@ann hi! see https://x.io/a, error 500 at 12:30 in <@123>") if w]
    assert words == ["error", "500"]
    assert tokens("alice: my node.js app fails") == [None, "node.js", "app", "fails"]
    assert terms("login fails with error 500") == [
        "login",
        "fails",
        "error",
        "500",
        "login fails",
        "error 500",
    ]


def test_class_based_tf_idf_prefers_words_particular_to_a_topic() -> None:
    texts = [
        "nginx proxy config help",
        "nginx proxy config question",
        "nginx config for proxy",
        "login error 500 help",
        "login error 500 again",
        "login error on the config page",
    ]
    keywords = topic_keywords(texts, [0, 0, 0, 1, 1, 1], 2)
    # A phrase as frequent as its words says them both.
    assert keywords[0][0] == "nginx proxy"
    assert keywords[1][:2] == ["login error", "error 500"]
    # "config" is in both topics: it never comes before what sets them apart.
    assert "config" not in keywords[1][:2]
    assert keyword_name(keywords[1]) == "login error, error 500"
    assert keyword_name([]) == "miscellaneous"


def test_when_to_recluster() -> None:
    now = T0
    never = TopicRun("acme")
    assert not needs_recluster(never, 9, 0, now, SETTINGS)
    assert needs_recluster(never, 10, 0, now, SETTINGS)
    recent = TopicRun("acme", generation=1, finished_at=now - timedelta(minutes=5))
    old = TopicRun("acme", generation=1, finished_at=now - timedelta(hours=2))
    assert not needs_recluster(recent, 1000, 1000, now, SETTINGS)
    assert not needs_recluster(old, 199, 1000, now, SETTINGS)
    assert needs_recluster(old, 200, 1000, now, SETTINGS)
    # In a big community, a share of its size, not a fixed number, calls for a rerun.
    assert not needs_recluster(old, 400, 10_000, now, SETTINGS)
    assert needs_recluster(old, 500, 10_000, now, SETTINGS)


# ----- against MongoDB -----


@pytest.fixture
async def db(mongo_db: Database) -> Database:
    from pepite_classifier.repository import INDEXES

    await ensure_indexes(mongo_db, [*INDEXES, *ROLLUP_INDEXES, *TOPIC_INDEXES])
    return mongo_db


def insight(row: tuple[str, str, MessageKind, str, np.ndarray], n: int) -> EmbeddedInsight:
    message_id, _, kind, _, vector = row
    return EmbeddedInsight(message_id, "c1", kind, T0 + timedelta(minutes=n), vector)


async def store_messages(
    db: Database, rows: Sequence[tuple[str, str, MessageKind, str, np.ndarray]]
) -> list[str | None]:
    """Store analyzed messages and hand them to the assigner, as the classifier does."""
    docs: list[dict[str, Any]] = [
        {
            "_id": message_id,
            "community_id": "acme",
            "channel": {"id": "c1", "name": "general"},
            "author": {"id": "discord:acme:u1"},
            "created_at": T0 + timedelta(minutes=n),
            "text": text,
            "analysis": Analysis(kind=kind).model_dump(),
        }
        for n, (message_id, _, kind, text, _) in enumerate(rows)
    ]
    assigner = TopicAssigner(TopicRepository(db), similarity=SETTINGS.topic_similarity)
    topic_ids = await assigner.assign("acme", [insight(row, n) for n, row in enumerate(rows)])
    for doc, topic_id in zip(docs, topic_ids, strict=True):
        doc["topic_id"] = topic_id
    await db["messages"].insert_many(docs)
    await RollupRepository(db).apply(rollup_changes((None, state_from_document(d)) for d in docs))
    return topic_ids


async def topic_of_messages(db: Database) -> dict[str, str | None]:
    return {doc["_id"]: doc.get("topic_id") async for doc in db["messages"].find()}


async def test_recluster_names_topics_and_writes_them_everywhere(
    db: Database, corpus: list[tuple[str, str, MessageKind, str, np.ndarray]]
) -> None:
    # No topics yet: every message waits for the first run.
    assert await store_messages(db, corpus) == [None] * len(corpus)
    assert await TopicRepository(db).count_embeddings("acme") == (len(corpus), 0)

    result = await TopicClusterer(db, SETTINGS).recluster("acme")
    assert (result.messages, result.topics, result.new_topics) == (len(corpus), 5, 5)
    topics = await TopicRepository(db).topics("acme")
    names = {topic.name for topic in topics if not topic.is_other}
    for words in (("nginx", "proxy"), ("500", "login"), ("charged", "twice"), ("dark",), ("csv",)):
        assert any(any(word in name for word in words) for name in names), (words, names)
    assert all(topic.named_by is TopicNaming.KEYWORDS for topic in topics)

    # Every message has its topic, one topic per group.
    by_message = await topic_of_messages(db)
    by_group: dict[str, Counter[str | None]] = {}
    for message_id, group, *_ in corpus:
        by_group.setdefault(group, Counter())[by_message[message_id]] += 1
    for group, counts in by_group.items():
        topic_id, count = counts.most_common(1)[0]
        assert topic_id not in (None, other_topic_id("acme")), group
        assert count >= 6
    assert await TopicRepository(db).count_embeddings("acme") == (0, len(corpus))

    # The rollups count each kind in its topics.
    counts = await RollupReader(db).kind_counts("acme", T0.date(), T0.date())
    assert sum(line.count for line in counts) == len(corpus)
    assert all(line.topic_id is not None for line in counts)
    login = by_group["login"].most_common(1)[0][0]
    assert any(line.kind is MessageKind.PROBLEM and line.topic_id == login for line in counts)


async def test_topic_ids_are_stable_across_runs_and_from_scratch(
    db: Database, corpus: list[tuple[str, str, MessageKind, str, np.ndarray]]
) -> None:
    await store_messages(db, corpus)
    clusterer = TopicClusterer(db, SETTINGS)
    await clusterer.recluster("acme")
    first = await topic_of_messages(db)
    first_topics = {t.id: t.name for t in await TopicRepository(db).topics("acme")}

    again = await clusterer.recluster("acme")
    assert (again.kept_topics, again.new_topics, again.retired_topics) == (5, 0, 0)
    assert again.reassigned == 0
    assert await topic_of_messages(db) == first

    # Forget every topic: the same data gives the same ids again.
    await db["topics"].delete_many({})
    await db["topic_runs"].delete_many({})
    await db["messages"].update_many({}, {"$set": {"topic_id": None}})
    await db["message_embeddings"].update_many({}, {"$set": {"topic_id": None}})
    await clusterer.recluster("acme")
    assert await topic_of_messages(db) == first
    assert {t.id: t.name for t in await TopicRepository(db).topics("acme")} == first_topics


async def test_new_messages_join_known_topics_or_wait(
    db: Database,
    corpus: list[tuple[str, str, MessageKind, str, np.ndarray]],
    embedder: Embedder,
) -> None:
    await store_messages(db, corpus)
    await TopicClusterer(db, SETTINGS).recluster("acme")
    by_message = await topic_of_messages(db)
    nginx = by_message[corpus[0][0]]
    billing = by_message[corpus[16][0]]

    texts = [
        "how can I configure nginx to reverse proxy my app?",
        "they charged my card twice for the subscription",
        "what is your favourite pizza topping",
    ]
    vectors = embedder.embed(texts)
    assigner = TopicAssigner(TopicRepository(db), similarity=SETTINGS.topic_similarity)
    kinds = [MessageKind.QUESTION, MessageKind.COMPLAINT, MessageKind.QUESTION]
    new = [
        EmbeddedInsight(f"discord:acme:new{n}", "c1", kinds[n], T0, vectors[n]) for n in range(3)
    ]
    assert await assigner.assign("acme", new) == [nginx, billing, None]
    assert await TopicRepository(db).count_embeddings("acme") == (1, len(corpus) + 2)
    # Replaying the same assignment stores nothing new.
    assert await assigner.assign("acme", new) == [nginx, billing, None]
    assert await TopicRepository(db).count_embeddings("acme") == (1, len(corpus) + 2)
    await assigner.forget(["discord:acme:new2"])
    assert await TopicRepository(db).count_embeddings("acme") == (0, len(corpus) + 2)


async def test_a_recluster_drops_deleted_messages_and_retires_empty_topics(
    db: Database, corpus: list[tuple[str, str, MessageKind, str, np.ndarray]]
) -> None:
    await store_messages(db, corpus)
    clusterer = TopicClusterer(db, SETTINGS)
    await clusterer.recluster("acme")
    export = [row[0] for row in corpus if row[1] == "export"]
    await db["messages"].update_many(
        {"_id": {"$in": export}}, {"$set": {"deleted_at": T0, "text": ""}}
    )
    result = await clusterer.recluster("acme")
    assert (result.messages, result.topics, result.retired_topics) == (len(corpus) - 8, 4, 1)
    assert await db["message_embeddings"].count_documents({"_id": {"$in": export}}) == 0
    topics = await TopicRepository(db).topics("acme", active_only=False)
    retired = [topic for topic in topics if not topic.active]
    assert len(retired) == 1
    assert "csv" in retired[0].name


class FakeNamer:
    """Names clusters after their first keyword, and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[list[str], list[str]]]] = []

    async def name_clusters(
        self, community_id: str, clusters: Sequence[tuple[list[str], list[str]]]
    ) -> list[str | None]:
        self.calls.append(list(clusters))
        return [f"About {keywords[0]}" if keywords else None for _, keywords in clusters]


async def test_a_namer_names_new_topics_once(
    db: Database, corpus: list[tuple[str, str, MessageKind, str, np.ndarray]]
) -> None:
    await store_messages(db, corpus)
    # A member who opted out of AI processing: their texts are never shown to a namer.
    await db["members"].insert_one({"_id": "discord:acme:u1", "ai_opt_out": True})
    await db["messages"].update_many(
        {"_id": corpus[1][0]}, {"$set": {"author.id": "discord:acme:u2"}}
    )
    namer = FakeNamer()
    clusterer = TopicClusterer(db, SETTINGS, namer=namer)
    await clusterer.recluster("acme")
    [call] = namer.calls
    assert len(call) == 5
    samples = [text for cluster_samples, _ in call for text in cluster_samples]
    assert samples == [corpus[1][3]]
    topics = await TopicRepository(db).topics("acme")
    named = [t for t in topics if not t.is_other]
    assert all(t.named_by is TopicNaming.NAMER and t.name.startswith("About ") for t in named)

    await clusterer.recluster("acme")
    # Same keywords: the names are kept and the namer is not asked again.
    assert len(namer.calls) == 1
    assert {t.name for t in await TopicRepository(db).topics("acme")} == {t.name for t in topics}


async def test_the_background_check_reclusters_only_communities_that_need_it(
    db: Database, corpus: list[tuple[str, str, MessageKind, str, np.ndarray]]
) -> None:
    await store_messages(db, corpus[:5])
    assert await recluster_due(db, SETTINGS) == []
    await store_messages(db, corpus[5:])
    assert await recluster_due(db, SETTINGS) == ["acme"]
    # Just done, nothing pending: nothing to do.
    assert await recluster_due(db, SETTINGS) == []
    run = await TopicRepository(db).run("acme")
    assert (run.generation, run.messages, run.topics) == (1, len(corpus), 5)


# ----- the commands -----


def test_rebuild_and_list_commands(
    stack: Stack,
    db_name: str,
    monkeypatch: pytest.MonkeyPatch,
    corpus: list[tuple[str, str, MessageKind, str, np.ndarray]],
) -> None:
    async def seed() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            stack.mongodb_uri, tz_aware=True
        )
        try:
            await store_messages(client[db_name], corpus)
        finally:
            await client.close()

    async def drop() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
        await client.drop_database(db_name)
        await client.close()

    asyncio.run(seed())
    monkeypatch.setenv("MONGODB_URI", stack.mongodb_uri)
    monkeypatch.setenv("PEPITE_MONGODB_DB", db_name)
    monkeypatch.setenv("PEPITE_TOPIC_MIN_SIZE", "3")
    sync_client: MongoClient[dict[str, Any]] = MongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        runner = CliRunner()
        # The service is reclustering this community: the command waits for it to end,
        # or says so when told not to wait.
        runs = sync_client[db_name][TOPIC_RUNS]
        runs.insert_one(
            {
                "_id": "acme",
                "lease_owner": "the-service",
                "lease_until": datetime.now(UTC) + timedelta(minutes=5),
            }
        )
        busy = runner.invoke(build_app(), ["topics", "rebuild", "-c", "acme", "--wait-s", "0"])
        assert busy.exit_code == 1
        assert "topics of 'acme' are being rebuilt; try again when it is done" in busy.output
        runs.update_one(
            {"_id": "acme"}, {"$set": {"lease_until": datetime.now(UTC) + timedelta(seconds=3)}}
        )
        rebuilt = runner.invoke(build_app(), ["topics", "rebuild", "-c", "acme"])
        assert rebuilt.exit_code == 0, rebuilt.output
        assert "being rebuilt; waiting for it to end" in rebuilt.stderr
        assert f"5 topics from {len(corpus)} insight messages" in rebuilt.output
        # Progress goes to stderr, one line per step.
        assert "clustering 40 messages" in rebuilt.stderr
        listed = runner.invoke(build_app(), ["topics", "list", "-c", "acme", "--format", "json"])
        assert listed.exit_code == 0, listed.output
        topics = json.loads(listed.stdout)
        assert sorted(topic["size"] for topic in topics if not topic["is_other"])[-1] >= 6
        table = runner.invoke(build_app(), ["topics", "list", "-c", "acme"])
        assert "(other)" in table.output
        assert "TOPIC" in table.output.splitlines()[0]
        empty = runner.invoke(build_app(), ["topics", "rebuild", "-c", "nobody"])
        assert empty.exit_code == 1
        assert "no insight messages with embeddings in community 'nobody'" in empty.output
        # ...and leaves no topic behind for it.
        nothing = runner.invoke(build_app(), ["topics", "list", "-c", "nobody"])
        assert nothing.exit_code == 1
        assert "no topics in community 'nobody'" in nothing.output
    finally:
        sync_client.close()
        asyncio.run(drop())


async def test_messages_arriving_during_a_run_get_its_topics(
    db: Database,
    corpus: list[tuple[str, str, MessageKind, str, np.ndarray]],
    embedder: Embedder,
) -> None:
    await store_messages(db, corpus)
    late_text = "how can I configure nginx to reverse proxy my app?"
    late = (
        "discord:acme:late",
        "nginx",
        MessageKind.QUESTION,
        late_text,
        embedder.embed([late_text])[0],
    )

    class ArrivingNamer(FakeNamer):
        async def name_clusters(
            self, community_id: str, clusters: Sequence[tuple[list[str], list[str]]]
        ) -> list[str | None]:
            # The classifier stores a message while the run is naming topics: there
            # are no centroids yet, so it waits without a topic.
            assert await store_messages(db, [late]) == [None]
            return [None] * len(clusters)

    await TopicClusterer(db, SETTINGS, namer=ArrivingNamer()).recluster("acme")
    by_message = await topic_of_messages(db)
    assert by_message[late[0]] == by_message[corpus[0][0]] is not None
    assert await TopicRepository(db).count_embeddings("acme") == (0, len(corpus) + 1)
