"""Topics: insight messages grouped per community into named categories with stable ids.

- :class:`TopicAssigner` gives each new insight message the known topic it is close to
  (or none yet) and stores its embedding;
- :class:`TopicClusterer` reclusters a whole community, keeping known topics' ids;
- :func:`recluster_when_needed` is the background job that reruns it when enough
  messages wait for a topic.
"""

from pepite_classifier.topics.assigner import TopicAssigner
from pepite_classifier.topics.jobs import needs_recluster, recluster_due, recluster_when_needed
from pepite_classifier.topics.model import EmbeddedInsight, Topic, TopicNaming, other_topic_id
from pepite_classifier.topics.naming import KeywordNamer, TopicNamer
from pepite_classifier.topics.recluster import ReclusterResult, TopicClusterer
from pepite_classifier.topics.repository import (
    TOPIC_INDEXES,
    ReclusterBusyError,
    TopicRepository,
)
from pepite_classifier.topics.settings import TopicSettings

__all__ = [
    "TOPIC_INDEXES",
    "EmbeddedInsight",
    "KeywordNamer",
    "ReclusterBusyError",
    "ReclusterResult",
    "Topic",
    "TopicAssigner",
    "TopicClusterer",
    "TopicNamer",
    "TopicNaming",
    "TopicRepository",
    "TopicSettings",
    "needs_recluster",
    "other_topic_id",
    "recluster_due",
    "recluster_when_needed",
]
