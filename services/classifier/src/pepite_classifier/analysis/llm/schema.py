"""What the model must answer, as a JSON schema it is held to and pydantic models we check.

The answer is compact on purpose: one-letter keys, one-word labels, sentiment as a small
integer. Output tokens cost four times input tokens and set how long a call takes.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from pepite_contracts import (
    Analysis,
    AnalyzerName,
    MessageKind,
    ModerationScores,
    Mood,
    Sentiment,
)


class KindCode(StrEnum):
    """One-word label the model uses for a kind (plus ``hate``, a kind of toxic)."""

    QUESTION = "question"
    PROBLEM = "problem"
    FEATURE = "feature"
    PRAISE = "praise"
    COMPLAINT = "complaint"
    ANSWER = "answer"
    RESOURCE = "resource"
    CHEER = "cheer"
    THANKS = "thanks"
    NEWS = "news"
    SOCIAL = "social"
    SPAM = "spam"
    SCAM = "scam"
    PROMO = "promo"
    TOXIC = "toxic"
    HATE = "hate"


KIND_OF_CODE: dict[KindCode, MessageKind] = {
    KindCode.QUESTION: MessageKind.QUESTION,
    KindCode.PROBLEM: MessageKind.PROBLEM,
    KindCode.FEATURE: MessageKind.FEATURE_REQUEST,
    KindCode.PRAISE: MessageKind.SATISFACTION,
    KindCode.COMPLAINT: MessageKind.COMPLAINT,
    KindCode.ANSWER: MessageKind.ANSWER,
    KindCode.RESOURCE: MessageKind.RESOURCE,
    KindCode.CHEER: MessageKind.ENCOURAGEMENT,
    KindCode.THANKS: MessageKind.GRATITUDE,
    KindCode.NEWS: MessageKind.ANNOUNCEMENT,
    KindCode.SOCIAL: MessageKind.SOCIAL,
    KindCode.SPAM: MessageKind.SPAM,
    KindCode.SCAM: MessageKind.SCAM,
    KindCode.PROMO: MessageKind.SELF_PROMOTION,
    KindCode.TOXIC: MessageKind.TOXIC,
    KindCode.HATE: MessageKind.TOXIC,
}

#: The model ranks up to three kinds; it gives no probabilities, so rank stands in for one.
#: Not calibrated: good enough to order a moderation queue, not to threshold finely.
RANK_SCORES: tuple[float, ...] = (0.9, 0.7, 0.5)
MAX_KINDS = len(RANK_SCORES)
SENTIMENT_RANGE = 2

_LANGUAGE = re.compile(r"[a-z]{2}")
_FENCED = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)


class BatchItem(BaseModel):
    """One item of an answer, for the input item of the same short id."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: int = Field(alias="i")


ItemT = TypeVar("ItemT", bound=BatchItem)


class Label(BatchItem):
    """The model's answer for one message of a batch."""

    kinds: list[KindCode] = Field(alias="k", min_length=1, max_length=MAX_KINDS)
    sentiment: int = Field(alias="s", ge=-SENTIMENT_RANGE, le=SENTIMENT_RANGE)
    mood: Mood = Field(alias="m")
    language: str = Field(alias="l", max_length=16)


class TopicName(BatchItem):
    """The model's name for one cluster of messages."""

    name: str = Field(alias="n", min_length=1, max_length=80)


class Envelope(BaseModel):
    """The top level of every answer: a list of items, each checked on its own."""

    r: list[JsonValue]


def labels_response_format() -> ResponseFormatJSONSchema:
    """``response_format`` of a labeling call: strict structured output, no descriptions.

    The schema counts as prompt tokens on every call, so the prompt explains the labels
    once and the schema only pins them down.
    """
    item: dict[str, object] = {
        "type": "object",
        "properties": {
            "i": {"type": "integer"},
            "k": {
                "type": "array",
                "items": {"type": "string", "enum": [c.value for c in KindCode]},
            },
            "s": {"type": "integer", "enum": list(range(-SENTIMENT_RANGE, SENTIMENT_RANGE + 1))},
            "m": {"type": "string", "enum": [m.value for m in Mood]},
            "l": {"type": "string"},
        },
        "required": ["i", "k", "s", "m", "l"],
        "additionalProperties": False,
    }
    return _envelope_format("labels", item)


def topic_names_response_format() -> ResponseFormatJSONSchema:
    """``response_format`` of a topic-naming call."""
    item: dict[str, object] = {
        "type": "object",
        "properties": {"i": {"type": "integer"}, "n": {"type": "string"}},
        "required": ["i", "n"],
        "additionalProperties": False,
    }
    return _envelope_format("topic_names", item)


def _envelope_format(name: str, item: dict[str, object]) -> ResponseFormatJSONSchema:
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"r": {"type": "array", "items": item}},
        "required": ["r"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


@dataclass(frozen=True)
class Parsed(Generic[ItemT]):
    """The valid items of an answer, by id; what was wrong with the rest."""

    items: dict[int, ItemT]
    #: Why the answer, or some of its items, could not be used; None when all is well.
    problem: str | None = None


def parse_items(
    content: str | None, item_type: type[ItemT], expected_ids: Collection[int]
) -> Parsed[ItemT]:
    """Check an answer item by item, keeping every valid item for an expected id.

    One malformed item should not cost the whole batch another call: only the ids
    without a valid item are asked again.
    """
    if not content:
        return Parsed({}, "empty answer")
    try:
        envelope = Envelope.model_validate_json(_unfenced(content))
    except ValidationError as exc:
        return Parsed({}, f"not the expected JSON: {_first_error(exc)}")
    items: dict[int, ItemT] = {}
    invalid = 0
    for raw in envelope.r:
        try:
            item = item_type.model_validate(raw)
        except ValidationError:
            invalid += 1
            continue
        if item.id in expected_ids and item.id not in items:
            items[item.id] = item
    missing = len(expected_ids) - len(items)
    problem = None
    if missing:
        problem = f"{missing} of {len(expected_ids)} ids without a valid item ({invalid} invalid)"
    return Parsed(items, problem)


def _unfenced(content: str) -> str:
    """The JSON inside a Markdown code fence, which servers without structured outputs add."""
    match = _FENCED.fullmatch(content.strip())
    return match[1] if match else content


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    return errors[0]["msg"] if errors else str(exc)


def to_analysis(label: Label, model: str) -> Analysis:
    """Turn the model's compact label into the shared :class:`Analysis`."""
    scores: dict[MessageKind, float] = {}
    hate = 0.0
    for rank, code in enumerate(dict.fromkeys(label.kinds)):
        score = RANK_SCORES[rank]
        kind = KIND_OF_CODE[code]
        scores[kind] = max(scores.get(kind, 0.0), score)
        if code is KindCode.HATE:
            hate = score
    if label.sentiment > 0:
        sentiment = Sentiment.POSITIVE
    elif label.sentiment < 0:
        sentiment = Sentiment.NEGATIVE
    else:
        sentiment = Sentiment.NEUTRAL
    language = label.language.strip().lower()
    return Analysis(
        kind=KIND_OF_CODE[label.kinds[0]],
        kind_scores=scores,
        sentiment=sentiment,
        sentiment_score=label.sentiment / SENTIMENT_RANGE,
        mood=label.mood,
        language=language if _LANGUAGE.fullmatch(language) else "und",
        moderation=ModerationScores(
            toxicity=scores.get(MessageKind.TOXIC, 0.0),
            hate=hate,
            spam=scores.get(MessageKind.SPAM, 0.0),
            scam=scores.get(MessageKind.SCAM, 0.0),
            self_promotion=scores.get(MessageKind.SELF_PROMOTION, 0.0),
        ),
        analyzer=AnalyzerName.OPENAI,
        model=model,
    )
