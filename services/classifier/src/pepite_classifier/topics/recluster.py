"""Clustering a community's insight messages into named topics with stable ids."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from pepite_classifier.rollups_repository import RollupRepository
from pepite_classifier.topics.clustering import (
    OTHER,
    Clustering,
    assign,
    closest_members,
    cluster,
    match_topics,
)
from pepite_classifier.topics.keywords import keyword_name, topic_keywords
from pepite_classifier.topics.model import (
    Topic,
    TopicNaming,
    other_topic_id,
    topic_id_for,
)
from pepite_classifier.topics.naming import KeywordNamer, TopicNamer
from pepite_classifier.topics.repository import (
    LiveMessage,
    StoredEmbeddings,
    TopicRepository,
    TopicRun,
    TopicWrite,
)
from pepite_classifier.topics.settings import TopicSettings
from pepite_contracts import MessageKind
from pepite_kit import Database

logger = logging.getLogger(__name__)

#: How long a run may hold a community before another may take over (a crashed run).
LEASE = timedelta(minutes=30)
#: Texts per topic read to find its keywords: the most central ones.
KEYWORD_TEXTS_PER_TOPIC = 1000
#: Texts outside topics read as the "elsewhere" class of keyword rarity.
KEYWORD_TEXTS_OTHER = 3000
#: Central messages shown to a namer and kept as a topic's samples.
SAMPLES = 8
#: Keywords compared to tell whether a known topic changed enough to be renamed.
NAME_KEYWORDS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReclusterResult:
    """What a clustering run found and changed."""

    community_id: str
    messages: int
    topics: int
    started_at: datetime | None = None
    other: int = 0
    new_topics: int = 0
    kept_topics: int = 0
    retired_topics: int = 0
    reassigned: int = 0
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class TopicClusterer:
    """Reclusters one community at a time (a lease keeps runs of one community apart)."""

    def __init__(
        self, db: Database, settings: TopicSettings, *, namer: TopicNamer | None = None
    ) -> None:
        self._repository = TopicRepository(db)
        self._rollups = RollupRepository(db)
        self._settings = settings
        self._namer: TopicNamer = namer or KeywordNamer()

    async def recluster(
        self, community_id: str, *, progress: Progress | None = None
    ) -> ReclusterResult:
        """Cluster every insight message of a community, keeping known topics' ids.

        Clusters close to a known topic keep its id (and its name when its keywords
        barely changed); others get an id derived from their most central message;
        known topics no cluster matches are retired. Every message's ``topic_id`` is
        written (messages in no cluster get the community's "other" topic) and the
        community's rollups are rebuilt.

        Raises:
            ReclusterBusyError: another run of the same community is in progress.
        """
        owner = uuid.uuid4().hex
        await self._repository.acquire(community_id, owner, LEASE)
        run: TopicRun | None = None
        try:
            result = await self._recluster(community_id, progress or _silent)
            run = TopicRun(
                community_id=community_id,
                started_at=result.started_at,
                finished_at=datetime.now(UTC),
                messages=result.messages,
                topics=result.topics,
                duration_s=result.duration_s,
            )
            return result
        finally:
            await self._repository.release(community_id, owner, run)

    async def _recluster(self, community_id: str, say: Progress) -> ReclusterResult:
        clock = _Clock()
        started_at = datetime.now(UTC)
        say("loading embeddings")
        stored, live = await self._load(community_id)
        known_topics, known_centroids = await self._repository.known_centroids(community_id)
        if not len(stored) and not known_topics:
            # Nothing to cluster and nothing to retire: leave no trace of the community.
            return ReclusterResult(community_id=community_id, messages=0, topics=0)
        if len(known_centroids) and known_centroids.shape[1] != stored.vectors.shape[1]:
            # Another embedding model: old centroids cannot be compared, start afresh.
            known_topics, known_centroids = [], known_centroids[:0]
        clock.lap("load")

        say(f"clustering {len(stored):,} messages")
        clustering = await asyncio.to_thread(
            cluster,
            stored.vectors,
            self._settings.clustering_params(),
            known_centroids=known_centroids if len(known_centroids) else None,
        )
        clock.lap("cluster")

        say(f"naming {len(clustering.centroids)} topics")
        samples, keywords = await self._keywords(stored, clustering)
        topic_ids = self._topic_ids(community_id, stored, clustering, known_topics, known_centroids)
        previous = await self._repository.topic_names(topic_ids)
        names = await self._names(community_id, keywords, samples, topic_ids, previous)
        clock.lap("name")

        say("saving topics")
        now = datetime.now(UTC)
        writes = [
            TopicWrite(
                Topic(
                    id=topic_id,
                    community_id=community_id,
                    name=names[index][0],
                    named_by=names[index][1],
                    keywords=keywords[index],
                    size=int(np.count_nonzero(clustering.labels == index)),
                    kinds=_kinds(stored, live, clustering.labels == index),
                    medoid_id=stored.message_ids[int(clustering.medoids[index])],
                    sample_ids=[
                        stored.message_ids[i] for i in closest_members(clustering, index, SAMPLES)
                    ],
                    created_at=known.created_at if (known := previous.get(topic_id)) else now,
                    updated_at=now,
                ),
                clustering.centroids[index],
            )
            for index, topic_id in enumerate(topic_ids)
        ]
        other_id = other_topic_id(community_id)
        other = int(np.count_nonzero(clustering.labels == OTHER))
        writes.append(
            TopicWrite(
                Topic(
                    id=other_id,
                    community_id=community_id,
                    name="other",
                    size=other,
                    kinds=_kinds(stored, live, clustering.labels == OTHER),
                    is_other=True,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        known_ids = {topic.id for topic in known_topics}
        retired = sorted(known_ids - set(topic_ids))
        await self._repository.save_topics(community_id, writes, retired)
        all_ids = [*topic_ids, other_id]
        reassigned = await self._write_topics(
            stored.message_ids, live, [all_ids[label] for label in clustering.labels]
        )
        reassigned += await self._catch_up(community_id, started_at, clustering, topic_ids)
        clock.lap("save")

        say("rebuilding rollups")
        await self._rollups.rebuild(community_id)
        clock.lap("rollups")
        result = ReclusterResult(
            community_id=community_id,
            messages=len(stored),
            topics=len(topic_ids),
            started_at=started_at,
            other=other,
            new_topics=len(set(topic_ids) - known_ids),
            kept_topics=len(set(topic_ids) & known_ids),
            retired_topics=len(retired),
            reassigned=reassigned,
            duration_s=clock.total(),
            timings=clock.laps,
        )
        logger.info(
            "topics rebuilt",
            extra={
                "community_id": community_id,
                "messages": result.messages,
                "topics": result.topics,
                "new_topics": result.new_topics,
                "retired_topics": result.retired_topics,
                "duration_s": round(result.duration_s, 2),
            },
        )
        return result

    async def _load(self, community_id: str) -> tuple[StoredEmbeddings, dict[str, LiveMessage]]:
        """The community's embeddings of live insight messages; stale ones are dropped."""
        stored = await self._repository.load_embeddings(community_id)
        live = await self._repository.live_insights(stored.message_ids)
        stale = [message_id for message_id in stored.message_ids if message_id not in live]
        if stale:
            # Deleted, or re-analyzed as another kind without the embedding being dropped.
            await self._repository.delete_embeddings(stale)
            stored = stored.subset(
                [i for i, message_id in enumerate(stored.message_ids) if message_id in live]
            )
        return stored, live

    async def _write_topics(
        self,
        message_ids: Sequence[str],
        live: dict[str, LiveMessage],
        topic_of: Sequence[str | None],
    ) -> int:
        """Write the topic of each message whose topic changed; how many did."""
        changes: dict[str | None, list[str]] = defaultdict(list)
        for message_id, new in zip(message_ids, topic_of, strict=True):
            known = live.get(message_id)
            if known is not None and known.topic_id != new:
                changes[new].append(message_id)
        await self._repository.set_message_topics(changes)
        return sum(len(ids) for ids in changes.values())

    async def _keywords(
        self, stored: StoredEmbeddings, clustering: Clustering
    ) -> tuple[dict[int, list[str]], list[list[str]]]:
        """Each topic's central texts that a namer may see, and its keywords."""
        topics = len(clustering.centroids)
        chosen: list[tuple[int, int]] = []
        for topic in range(topics):
            central = closest_members(clustering, topic, KEYWORD_TEXTS_PER_TOPIC)
            chosen.extend((i, topic) for i in central)
        outside = np.flatnonzero(clustering.labels == OTHER)
        if len(outside) > KEYWORD_TEXTS_OTHER:
            # Evenly spaced in id order: deterministic, and spread over the community.
            outside = outside[np.linspace(0, len(outside) - 1, KEYWORD_TEXTS_OTHER).astype(np.intp)]
        chosen.extend((int(i), OTHER) for i in outside)
        ids = [stored.message_ids[i] for i, _ in chosen]
        texts = await self._repository.message_texts(ids)
        corpus = [texts[message_id].text if message_id in texts else "" for message_id in ids]
        keywords = await asyncio.to_thread(
            topic_keywords, corpus, [topic for _, topic in chosen], topics
        )
        # Keywords are counts over many messages; samples are whole texts, which a namer
        # may send to a remote model: never those of members who opted out of that.
        authors = {text.author_id for text in texts.values() if text.author_id is not None}
        opted_out = await self._repository.opted_out_authors(authors)
        samples: dict[int, list[str]] = defaultdict(list)
        for message_id, (_, topic), text in zip(ids, chosen, corpus, strict=True):
            stored_text = texts.get(message_id)
            if (
                topic != OTHER
                and text.strip()
                and len(samples[topic]) < SAMPLES
                and stored_text is not None
                and stored_text.author_id not in opted_out
            ):
                samples[topic].append(text)
        return samples, keywords

    def _topic_ids(
        self,
        community_id: str,
        stored: StoredEmbeddings,
        clustering: Clustering,
        known_topics: Sequence[Topic],
        known_centroids: np.ndarray,
    ) -> list[str]:
        """Known topics' ids for clusters that match them, derived ids for the others."""
        topic_ids: list[str | None] = [None] * len(clustering.centroids)
        for match in match_topics(
            clustering.centroids, known_centroids, self._settings.topic_match_similarity
        ):
            topic_ids[match.new] = known_topics[match.known].id
        taken = {topic_id for topic_id in topic_ids if topic_id}
        # A retired topic's id is not reused for another cluster in the same run.
        taken.update(topic.id for topic in known_topics)
        for index, topic_id in enumerate(topic_ids):
            if topic_id is not None:
                continue
            candidates = closest_members(clustering, index, SAMPLES)
            derived = [topic_id_for(community_id, stored.message_ids[i]) for i in candidates]
            fresh = next((c for c in derived if c not in taken), f"{derived[0]}-{index}")
            topic_ids[index] = fresh
            taken.add(fresh)
        return [topic_id for topic_id in topic_ids if topic_id is not None]

    async def _names(
        self,
        community_id: str,
        keywords: list[list[str]],
        samples: dict[int, list[str]],
        topic_ids: list[str],
        previous: dict[str, Topic],
    ) -> list[tuple[str, TopicNaming]]:
        """Each topic's name: kept if its keywords barely changed, else asked again."""
        names = [(keyword_name(words), TopicNaming.KEYWORDS) for words in keywords]
        to_name: list[int] = []
        for index, topic_id in enumerate(topic_ids):
            known = previous.get(topic_id)
            unchanged = known is not None and set(known.keywords[:NAME_KEYWORDS]) == set(
                keywords[index][:NAME_KEYWORDS]
            )
            if not unchanged:
                to_name.append(index)
            elif known is not None and known.named_by is TopicNaming.NAMER:
                names[index] = (known.name, TopicNaming.NAMER)
        if not to_name:
            return names
        try:
            answers = await self._namer.name_clusters(
                community_id, [(samples.get(i, []), keywords[i]) for i in to_name]
            )
        except Exception:
            # A namer is a nicety: keyword names are good enough to go on with.
            logger.warning("topic naming failed, keeping keyword names", exc_info=True)
            return names
        for index, answer in zip(to_name, answers, strict=False):
            # A namer may hand back the keyword name itself when it could not do better.
            if answer and answer.strip() and answer.strip() != names[index][0]:
                names[index] = (answer.strip(), TopicNaming.NAMER)
        return names

    async def _catch_up(
        self,
        community_id: str,
        started_at: datetime,
        clustering: Clustering,
        topic_ids: list[str],
    ) -> int:
        """Reassign messages embedded during the run against the new centroids.

        They were assigned against the old ones, some of which may just have been retired.
        """
        late = await self._repository.load_embeddings(community_id, since=started_at)
        if not len(late) or late.vectors.shape[1] != clustering.centroids.shape[1]:
            return 0
        labels = assign(late.vectors, clustering.centroids, self._settings.topic_similarity)
        topic_of = [None if label == OTHER else topic_ids[label] for label in labels]
        # These embeddings count as waiting until their own topic says otherwise.
        by_topic: dict[str | None, list[str]] = defaultdict(list)
        for message_id, topic_id in zip(late.message_ids, topic_of, strict=True):
            by_topic[topic_id].append(message_id)
        await self._repository.set_embedding_topics(by_topic)
        return await self._write_topics(
            late.message_ids, await self._repository.live_insights(late.message_ids), topic_of
        )


def _kinds(
    stored: StoredEmbeddings, live: dict[str, LiveMessage], members: npt.NDArray[np.bool_]
) -> dict[MessageKind, int]:
    counts = Counter(live[stored.message_ids[i]].kind for i in np.flatnonzero(members))
    return dict(counts.most_common())


def _silent(_: str) -> None:
    pass


class _Clock:
    """Seconds spent per step, for logs and the command's summary."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now

    def total(self) -> float:
        return time.perf_counter() - self._start
