"""What topics are made of: insight embeddings in, named categories out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from pepite_contracts import MessageKind

#: A unit-length float32 sentence embedding.
Vector = npt.NDArray[np.float32]

#: Suffix of the id of a community's "other" topic, for insights in no category.
OTHER_SUFFIX = "other"


def topic_id_for(community_id: str, message_id: str) -> str:
    """The id of a new topic, derived from its most central message.

    Deterministic, so clustering the same messages twice from scratch gives the same ids.
    """
    digest = hashlib.blake2b(message_id.encode(), digest_size=6).hexdigest()
    return f"{community_id}:{digest}"


def other_topic_id(community_id: str) -> str:
    """The id of the community's "other" topic."""
    return f"{community_id}:{OTHER_SUFFIX}"


@dataclass(frozen=True)
class EmbeddedInsight:
    """An insight-bearing message and its embedding, as the classifier hands it over."""

    message_id: str
    channel_id: str
    kind: MessageKind
    created_at: datetime
    #: Unit-length float32 vector (e.g. ``AnalysisOutcome.embedding``).
    embedding: Vector


class TopicNaming(StrEnum):
    """Where a topic's name comes from."""

    KEYWORDS = "keywords"
    NAMER = "namer"


class Topic(BaseModel):
    """A named category of insight messages in one community."""

    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    name: str
    keywords: list[str] = Field(default_factory=list, description="Best first.")
    named_by: TopicNaming = TopicNaming.KEYWORDS
    size: int = Field(default=0, description="Messages in the topic at the last clustering.")
    kinds: dict[MessageKind, int] = Field(
        default_factory=dict, description="Messages per kind at the last clustering."
    )
    medoid_id: str | None = Field(default=None, description="The most central message.")
    sample_ids: list[str] = Field(
        default_factory=list, description="Messages closest to the centre, closest first."
    )
    is_other: bool = Field(default=False, description="Insights that fit no category.")
    active: bool = Field(default=True, description="False once a clustering dropped it.")
    created_at: datetime
    updated_at: datetime
