"""What the classifier says about a message: kind, sentiment, mood, language, moderation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from pepite_contracts.ids import CommunityId
from pepite_contracts.messages import (
    ChannelRef,
    ContractModel,
    Member,
    Platform,
    ThreadRef,
    UtcDatetime,
)


class MessageKind(StrEnum):
    """What a message does in the conversation; each message has one primary kind."""

    QUESTION = "question"
    PROBLEM = "problem"
    FEATURE_REQUEST = "feature_request"
    SATISFACTION = "satisfaction"
    COMPLAINT = "complaint"
    ANSWER = "answer"
    RESOURCE = "resource"
    ENCOURAGEMENT = "encouragement"
    GRATITUDE = "gratitude"
    ANNOUNCEMENT = "announcement"
    SOCIAL = "social"
    SPAM = "spam"
    SCAM = "scam"
    SELF_PROMOTION = "self_promotion"
    TOXIC = "toxic"


#: Kinds that carry an insight: they are grouped into topics and counted in reports.
INSIGHT_KINDS: frozenset[MessageKind] = frozenset(
    {
        MessageKind.QUESTION,
        MessageKind.PROBLEM,
        MessageKind.FEATURE_REQUEST,
        MessageKind.SATISFACTION,
        MessageKind.COMPLAINT,
    }
)

#: Kinds a moderator should look at; a human always decides.
MODERATION_KINDS: frozenset[MessageKind] = frozenset(
    {MessageKind.SPAM, MessageKind.SCAM, MessageKind.SELF_PROMOTION, MessageKind.TOXIC}
)


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Mood(StrEnum):
    """The author's apparent state of mind, coarser than emotions and safe to show."""

    JOYFUL = "joyful"
    GRATEFUL = "grateful"
    CONFIDENT = "confident"
    CURIOUS = "curious"
    NEUTRAL = "neutral"
    CONFUSED = "confused"
    FRUSTRATED = "frustrated"
    ANXIOUS = "anxious"
    SAD = "sad"
    ANGRY = "angry"


class AnalyzerName(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"


#: A probability; defaults to "not at all".
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ModerationScores(ContractModel):
    """Probabilities in [0, 1]; a moderator decides, these only rank the queue."""

    toxicity: Probability = 0.0
    hate: Probability = 0.0
    spam: Probability = 0.0
    scam: Probability = 0.0
    self_promotion: Probability = 0.0


class Analysis(ContractModel):
    """Everything an analyzer says about one message's text."""

    kind: MessageKind
    kind_scores: dict[MessageKind, float] = Field(
        default_factory=dict,
        description=(
            "Probability in [0, 1] of each kind considered, each on its own: a message can be"
            " both a question and a problem. The primary kind is chosen among them."
        ),
    )
    sentiment: Sentiment = Sentiment.NEUTRAL
    sentiment_score: float = Field(
        default=0.0, ge=-1.0, le=1.0, description="P(positive) - P(negative)."
    )
    mood: Mood = Mood.NEUTRAL
    language: str = Field(default="und", description="ISO 639-1 code, 'und' when unknown.")
    moderation: ModerationScores = Field(default_factory=ModerationScores)
    analyzer: AnalyzerName = AnalyzerName.LOCAL
    model: str = Field(default="", description="Version of the artifacts or name of the LLM.")


class AnalyzedMessage(ContractModel):
    """Payload of ``message.analyzed``: who said what kind of thing where and when.

    The text is not repeated: consumers that need it read the stored message, which a
    deletion or an erasure scrubs in one place.
    """

    message_id: str
    platform: Platform
    community_id: CommunityId
    channel: ChannelRef
    thread: ThreadRef | None = None
    reply_to_id: str | None = None
    author: Member
    created_at: UtcDatetime
    analysis: Analysis
    topic_id: str | None = Field(
        default=None, description="Insight category, once the message has been clustered."
    )
    analyzed_at: UtcDatetime
