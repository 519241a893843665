"""Online assignment: each new insight message joins the known topic it is close to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pepite_classifier.topics.clustering import OTHER, assign, normalize
from pepite_classifier.topics.model import EmbeddedInsight
from pepite_classifier.topics.repository import CentroidSet, TopicRepository


class TopicAssigner:
    """Assigns insight messages to the current topics and stores their embeddings.

    Centroids are cached per community and reloaded when a clustering run publishes a
    new generation, which costs one small read per call.
    """

    def __init__(self, repository: TopicRepository, *, similarity: float) -> None:
        """
        Args:
            repository: Where embeddings and topics are stored.
            similarity: Cosine similarity to a centroid needed to join its topic
                (``TopicSettings.topic_similarity``).
        """
        self._repository = repository
        self._similarity = similarity
        self._cache: dict[str, CentroidSet] = {}

    async def assign(
        self, community_id: str, insights: Sequence[EmbeddedInsight]
    ) -> list[str | None]:
        """Give each insight message a topic and store its embedding.

        Idempotent: assigning the same messages again stores the same documents.

        Args:
            community_id: The community all ``insights`` belong to.
            insights: Messages of an insight kind with their embeddings.

        Returns:
            The topic id of each message, in order; ``None`` when no topic is close
            enough yet (the message waits for the next clustering run, which counts it).
        """
        if not insights:
            return []
        centroids = await self._centroids(community_id)
        topic_ids: list[str | None] = [None] * len(insights)
        if centroids.topic_ids:
            vectors = normalize(np.stack([insight.embedding for insight in insights]))
            if vectors.shape[1] == centroids.centroids.shape[1]:
                labels = assign(vectors, centroids.centroids, self._similarity)
                topic_ids = [
                    None if label == OTHER else centroids.topic_ids[label] for label in labels
                ]
        await self._repository.store_embeddings(community_id, insights, topic_ids)
        return topic_ids

    async def forget(self, message_ids: Sequence[str]) -> None:
        """Drop the embeddings of messages deleted, or re-analyzed as a non-insight kind."""
        await self._repository.delete_embeddings(message_ids)

    async def _centroids(self, community_id: str) -> CentroidSet:
        generation = (await self._repository.run(community_id)).generation
        cached = self._cache.get(community_id)
        if cached is None or cached.generation != generation:
            cached = await self._repository.centroid_set(community_id)
            self._cache[community_id] = cached
        return cached
