"""Topic settings, mixed into the classifier's one ``Settings`` class."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pepite_classifier.topics.clustering import ClusteringParams


class TopicSettings(BaseSettings):
    """How topics are found, assigned and kept up to date (``PEPITE_TOPIC_*``)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    topic_similarity: float = Field(
        default=0.40,
        gt=0.0,
        lt=1.0,
        description=(
            "Cosine similarity to a topic's centroid a message needs to belong to it, when"
            " clustering and when assigning new messages; below, it waits for the next run."
        ),
    )
    topic_match_similarity: float = Field(
        default=0.75,
        gt=0.0,
        lt=1.0,
        description="A new cluster this similar to a known topic keeps the topic's id and name.",
    )
    topic_max_topics: int = Field(default=50, ge=1, description="Topics per community, at most.")
    topic_min_size: int = Field(default=5, ge=2, description="Messages a topic needs, at least.")
    topic_min_share: float = Field(
        default=0.002, ge=0.0, lt=1.0, description="Share of insight messages a topic needs."
    )
    topic_sample_size: int = Field(
        default=4000, ge=100, description="Messages seen by the pairwise clustering step."
    )
    topic_first_run_messages: int = Field(
        default=50, ge=1, description="Insight messages a community needs before its first run."
    )
    topic_recluster_min_pending: int = Field(
        default=200, ge=1, description="Messages without a topic that call for a new run."
    )
    topic_recluster_pending_share: float = Field(
        default=0.05,
        ge=0.0,
        description="...or this share of the clustered messages, whichever is larger.",
    )
    topic_recluster_min_interval_s: float = Field(
        default=3600.0, ge=0.0, description="Seconds between two runs of one community."
    )
    topic_recluster_check_interval_s: float = Field(
        default=60.0, gt=0.0, description="Seconds between two looks for communities to rerun."
    )

    def clustering_params(self) -> ClusteringParams:
        return ClusteringParams(
            sample_size=self.topic_sample_size,
            member_similarity=self.topic_similarity,
            min_topic_size=self.topic_min_size,
            min_topic_share=self.topic_min_share,
            max_topics=self.topic_max_topics,
        )
