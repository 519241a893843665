"""Grouping insight embeddings into topics, as pure functions on arrays.

The number of topics comes from the data: average-linkage clustering of a sample finds
the dense groups (messages that are, on average, about the same thing); their centroids,
together with the centroids of the topics already known, seed a trimmed spherical
k-means over every embedding. Messages too far from any centroid, and groups too small
to be worth a line in a report, go to "other". Everything is deterministic for a given
input order, so the same data always gives the same topics.

Cost is bounded whatever the community size: the pairwise step sees at most
``sample_size`` vectors (quadratic), the rest is a few ``(n, d) @ (d, k)`` products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering

Vectors = npt.NDArray[np.float32]
Labels = npt.NDArray[np.intp]

#: Label of messages that belong to no topic.
OTHER = -1


@dataclass(frozen=True)
class ClusteringParams:
    """How coarse topics are and how much work finding them may take."""

    #: Vectors seen by the pairwise (quadratic) step.
    sample_size: int = 4000
    #: Cosine distance at which average linkage stops merging sample groups: 0.7 means
    #: members of a group are, on average, at least 0.3 similar.
    linkage_distance: float = 0.7
    #: A sample group seeds a topic if it holds this share of the sample (and 3 vectors).
    seed_min_share: float = 0.002
    #: Cosine similarity to its topic's centroid a message needs to belong to it.
    member_similarity: float = 0.40
    #: Topics whose centroids are this similar are one topic.
    merge_similarity: float = 0.85
    #: A topic needs this many messages, and this share of all, or it goes to "other".
    min_topic_size: int = 5
    min_topic_share: float = 0.002
    max_topics: int = 60
    iterations: int = 6
    seed: int = 0


@dataclass(frozen=True)
class Clustering:
    """Topics found among ``n`` vectors, largest first."""

    #: Topic index of each vector, or :data:`OTHER`.
    labels: Labels
    #: Unit-length centroid of each topic, shape ``(k, d)``.
    centroids: Vectors
    #: Index of the vector closest to each topic's centroid.
    medoids: npt.NDArray[np.intp]
    #: Similarity of each vector to its topic's centroid (to its nearest one for "other").
    similarities: npt.NDArray[np.float32]

    @property
    def sizes(self) -> npt.NDArray[np.intp]:
        return np.bincount(self.labels[self.labels != OTHER], minlength=len(self.centroids))


def normalize(vectors: npt.ArrayLike) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    unit = np.zeros_like(array)
    np.divide(array, norms, out=unit, where=norms > 0)
    return unit


def nearest(vectors: Vectors, centroids: Vectors) -> tuple[Labels, npt.NDArray[np.float32]]:
    """Index of and similarity to the most similar centroid of each vector."""
    if len(centroids) == 0 or len(vectors) == 0:
        return np.full(len(vectors), OTHER, dtype=np.intp), np.zeros(len(vectors), np.float32)
    similarities = vectors @ centroids.T
    best = similarities.argmax(axis=1)
    return best.astype(np.intp), similarities[np.arange(len(vectors)), best]


def assign(vectors: Vectors, centroids: Vectors, threshold: float) -> Labels:
    """Nearest centroid of each vector, or :data:`OTHER` below ``threshold``."""
    best, similarity = nearest(vectors, centroids)
    return np.where(similarity >= threshold, best, OTHER).astype(np.intp)


def _seed_centroids(vectors: Vectors, params: ClusteringParams) -> Vectors:
    """Centroids of the dense groups of a sample, largest group first."""
    n = len(vectors)
    if n < 3:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    rng = np.random.default_rng(params.seed)
    sample = (
        np.sort(rng.choice(n, params.sample_size, replace=False))
        if n > params.sample_size
        else np.arange(n)
    )
    points = vectors[sample]
    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=params.linkage_distance,
    ).fit_predict(points)
    sizes = np.bincount(labels)
    min_size = max(3, int(np.ceil(params.seed_min_share * len(sample))))
    # Stable sort: equal sizes keep label order, which the input order fixes.
    groups = [g for g in np.argsort(-sizes, kind="stable") if sizes[g] >= min_size]
    groups = groups[: params.max_topics * 2]
    if not groups:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    return normalize(np.stack([points[labels == g].mean(axis=0) for g in groups]))


def _centroids_of(vectors: Vectors, labels: Labels, k: int) -> tuple[Vectors, Labels]:
    """Mean direction of each label's members; labels left empty are dropped."""
    members = np.flatnonzero(labels != OTHER)
    # A sparse one-hot product sums members per label far faster than np.add.at.
    one_hot = sparse.csr_matrix(
        (np.ones(len(members), dtype=np.float32), (labels[members], members)),
        shape=(k, len(vectors)),
    )
    sums = np.asarray(one_hot @ vectors)
    counts = np.bincount(labels[members], minlength=k)
    kept = np.flatnonzero(counts > 0)
    return normalize(sums[kept]), counts[kept]


def _merge_close(centroids: Vectors, sizes: Labels, threshold: float) -> Labels:
    """For each centroid, the index of the centroid it merges into (itself if none)."""
    target = np.arange(len(centroids))
    similarities = centroids @ centroids.T
    np.fill_diagonal(similarities, -1.0)
    # Largest first, so small topics fold into the big one they duplicate.
    for i in np.argsort(-sizes, kind="stable"):
        if target[i] != i:
            continue
        for j in np.flatnonzero(similarities[i] >= threshold):
            if target[j] == j and sizes[j] <= sizes[i] and j != i:
                target[j] = i
    return target


def cluster(
    vectors: Vectors,
    params: ClusteringParams | None = None,
    *,
    known_centroids: Vectors | None = None,
) -> Clustering:
    """Find topics among unit ``vectors``.

    Args:
        vectors: Unit-length embeddings, shape ``(n, d)``, in a stable order (e.g. by
            message id): the result depends on it only through the sampling.
        params: Tuning; the defaults suit sentence embeddings of chat messages.
        known_centroids: Centroids of the topics found last time; they seed the search
            so topics stay the same from one run to the next when the data allows.
    """
    params = params or ClusteringParams()
    n, dim = vectors.shape
    empty = Clustering(
        labels=np.full(n, OTHER, dtype=np.intp),
        centroids=np.zeros((0, dim), dtype=np.float32),
        medoids=np.zeros(0, dtype=np.intp),
        similarities=np.zeros(n, dtype=np.float32),
    )
    min_size = max(params.min_topic_size, int(np.ceil(params.min_topic_share * n)))
    if n < min_size:
        return empty
    seeds = _seed_centroids(vectors, params)
    if known_centroids is not None and len(known_centroids):
        known = normalize(known_centroids)
        # A new group already covered by a known topic would only split it.
        if len(seeds):
            covered = (seeds @ known.T).max(axis=1) >= params.merge_similarity
            seeds = seeds[~covered]
        seeds = np.concatenate([known, seeds])
    centroids = seeds
    labels = assign(vectors, centroids, params.member_similarity)
    for _ in range(params.iterations + 2):
        centroids = _refined(vectors, labels, len(centroids), min_size, params)
        new_labels = assign(vectors, centroids, params.member_similarity)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    if not len(centroids):
        return empty
    # Largest first, each topic's medoid its most central member.
    sizes = np.bincount(labels[labels != OTHER], minlength=len(centroids))
    order = np.argsort(-sizes, kind="stable")
    centroids = centroids[order[sizes[order] > 0]]
    best, similarity = nearest(vectors, centroids)
    labels = np.where(similarity >= params.member_similarity, best, OTHER).astype(np.intp)
    medoids = np.array(
        [_medoid(labels, similarity, topic) for topic in range(len(centroids))], dtype=np.intp
    )
    return Clustering(labels=labels, centroids=centroids, medoids=medoids, similarities=similarity)


def _refined(
    vectors: Vectors, labels: Labels, k: int, min_size: int, params: ClusteringParams
) -> Vectors:
    """One k-means step: members' mean directions, near-duplicates merged, small dropped.

    Small topics are noise in a report: dropped, their messages join a bigger topic if
    close enough at the next assignment, else "other".
    """
    centroids, sizes = _centroids_of(vectors, labels, k)
    if not len(centroids):
        return centroids
    target = _merge_close(centroids, sizes, params.merge_similarity)
    roots = np.flatnonzero(target == np.arange(len(centroids)))
    if len(roots) < len(centroids):
        remap = np.full(len(centroids), OTHER, dtype=np.intp)
        remap[roots] = np.arange(len(roots))
        members = labels != OTHER
        merged = np.full_like(labels, OTHER)
        # labels index the pre-drop centroids; map through the kept (non-empty) ones.
        position = np.full(k, OTHER, dtype=np.intp)
        position[_non_empty(labels, k)] = np.arange(len(centroids))
        merged[members] = remap[target[position[labels[members]]]]
        centroids, sizes = _centroids_of(vectors, merged, len(roots))
    order = np.argsort(-sizes, kind="stable")
    keep = order[sizes[order] >= min_size][: params.max_topics]
    return centroids[keep]


def _non_empty(labels: Labels, k: int) -> npt.NDArray[np.intp]:
    counts = np.bincount(labels[labels != OTHER], minlength=k)
    return np.flatnonzero(counts > 0)


def _medoid(labels: Labels, similarity: npt.NDArray[np.float32], topic: int) -> int:
    members = np.flatnonzero(labels == topic)
    # argmax returns the first of equal values: the earliest in input order.
    return int(members[np.argmax(similarity[members])])


def closest_members(clustering: Clustering, topic: int, count: int) -> list[int]:
    """Indexes of up to ``count`` members of ``topic``, closest to its centroid first."""
    members = np.flatnonzero(clustering.labels == topic)
    order = np.argsort(-clustering.similarities[members], kind="stable")
    return [int(i) for i in members[order[:count]]]


@dataclass(frozen=True)
class Match:
    """A new topic found to be a known one."""

    new: int
    known: int
    similarity: float


def match_topics(new_centroids: Vectors, known_centroids: Vectors, threshold: float) -> list[Match]:
    """Pair new topics with known ones, most similar pairs first, each at most once."""
    if not len(new_centroids) or not len(known_centroids):
        return []
    similarities = new_centroids @ normalize(known_centroids).T
    pairs = np.argwhere(similarities >= threshold)
    ranked = sorted(
        ((float(similarities[i, j]), int(i), int(j)) for i, j in pairs),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    matches: list[Match] = []
    used_new: set[int] = set()
    used_known: set[int] = set()
    for similarity, i, j in ranked:
        if i not in used_new and j not in used_known:
            matches.append(Match(i, j, similarity))
            used_new.add(i)
            used_known.add(j)
    return matches


def vectors_from_bytes(blobs: Sequence[bytes], dim: int) -> Vectors:
    """Stack stored float32 vectors; the caller has checked each is ``dim`` long."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim).copy()
