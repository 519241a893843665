"""How an analysis answers each labeled evaluation task: the one place that maps kinds,
sentiment and moderation scores onto a task's labels.

=============== ==========================================================================
task            label read from the analysis
=============== ==========================================================================
intent          argmax of kind_scores over problem -> bug, feature_request -> feature,
                question -> question (ties in that order)
question        question when kind_scores[question] >= 0.5, else statement
feature_request feature when feature_request has the highest of all kind_scores (ties go
                to the primary kind's precedence, see ``local.rules``), else other
sentiment_en,   the analysis' sentiment
sentiment_fr
toxicity_en     argmax of hate = moderation.hate, offensive = moderation.toxicity -
                moderation.hate, neither = 1 - moderation.toxicity
toxicity_fr     toxic when moderation.toxicity >= 0.5, else normal
chat_thread     coarse map of the primary kind onto F2Chat's classes: problem, complaint ->
                programming_problem; question, answer -> programming_information;
                feature_request, satisfaction -> library_information; resource ->
                documentation_information; announcement -> task_progress; anything
                else -> technical_discussion. The analyzer has no notion of "library" vs
                "own code" vs "documentation" problems, so most of F2Chat's distinctions
                are out of its reach: this task is reported, not targeted.
=============== ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from pepite_classifier.analysis.local.rules import PRECEDENCE
from pepite_contracts import Analysis, MessageKind

K = MessageKind

#: Every task's labels, in report order.
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "intent": ("bug", "feature", "question"),
    "question": ("question", "statement"),
    "feature_request": ("feature", "other"),
    "sentiment_en": ("negative", "neutral", "positive"),
    "sentiment_fr": ("negative", "neutral", "positive"),
    "toxicity_en": ("hate", "offensive", "neither"),
    "toxicity_fr": ("toxic", "normal"),
    "chat_thread": (
        "documentation_information",
        "documentation_problem",
        "general_information",
        "library_information",
        "library_problem",
        "programming_information",
        "programming_problem",
        "task_progress",
        "technical_discussion",
    ),
}

_INTENT_KINDS: tuple[tuple[MessageKind, str], ...] = (
    (K.PROBLEM, "bug"),
    (K.FEATURE_REQUEST, "feature"),
    (K.QUESTION, "question"),
)
_CHAT_THREAD_CLASS: dict[MessageKind, str] = {
    K.PROBLEM: "programming_problem",
    K.COMPLAINT: "programming_problem",
    K.QUESTION: "programming_information",
    K.ANSWER: "programming_information",
    K.FEATURE_REQUEST: "library_information",
    K.SATISFACTION: "library_information",
    K.RESOURCE: "documentation_information",
    K.ANNOUNCEMENT: "task_progress",
}
_RANK = {kind: rank for rank, kind in enumerate(PRECEDENCE)}


def _intent(analysis: Analysis) -> str:
    scores = analysis.kind_scores
    best = max(_INTENT_KINDS, key=lambda pair: scores.get(pair[0], 0.0))
    return best[1]


def _question(analysis: Analysis) -> str:
    return "question" if analysis.kind_scores.get(K.QUESTION, 0.0) >= 0.5 else "statement"


def _feature_request(analysis: Analysis) -> str:
    scores = analysis.kind_scores
    if not scores:
        return "feature" if analysis.kind is K.FEATURE_REQUEST else "other"
    best = max(scores.items(), key=lambda item: (item[1], -_RANK.get(item[0], len(_RANK))))
    return "feature" if best[0] is K.FEATURE_REQUEST else "other"


def _sentiment(analysis: Analysis) -> str:
    return analysis.sentiment.value


def _toxicity_en(analysis: Analysis) -> str:
    moderation = analysis.moderation
    candidates = (
        ("hate", moderation.hate),
        ("offensive", moderation.toxicity - moderation.hate),
        ("neither", 1.0 - moderation.toxicity),
    )
    return max(candidates, key=lambda pair: pair[1])[0]


def _toxicity_fr(analysis: Analysis) -> str:
    return "toxic" if analysis.moderation.toxicity >= 0.5 else "normal"


def _chat_thread(analysis: Analysis) -> str:
    return _CHAT_THREAD_CLASS.get(analysis.kind, "technical_discussion")


MAPPINGS: dict[str, Callable[[Analysis], str]] = {
    "intent": _intent,
    "question": _question,
    "feature_request": _feature_request,
    "sentiment_en": _sentiment,
    "sentiment_fr": _sentiment,
    "toxicity_en": _toxicity_en,
    "toxicity_fr": _toxicity_fr,
    "chat_thread": _chat_thread,
}


def label_for(task: str, analysis: Analysis) -> str:
    """The task's label for an analysis.

    Raises:
        KeyError: the task is not one of ``TASK_LABELS``.
    """
    return MAPPINGS[task](analysis)
