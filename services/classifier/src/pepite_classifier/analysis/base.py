"""The interface every analyzer implements, and what it is given and gives back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pepite_contracts import Analysis, AnalyzerName
from pepite_embeddings import Embedding


@dataclass(frozen=True)
class AnalysisRequest:
    """One message to analyze, with what an analyzer may need around it."""

    message_id: str
    community_id: str
    text: str
    #: Texts this message replies to, nearest last (its parent, then the parent's parent...
    #: reversed), so an analyzer can tell an answer from a question.
    context: tuple[str, ...] = ()
    author_is_bot: bool = False
    attachment_count: int = 0
    #: The member opted out of AI processing: never send this text to a remote model.
    ai_opt_out: bool = False


@dataclass(frozen=True)
class AnalysisOutcome:
    """An analyzer's answer for one request."""

    analysis: Analysis
    #: The sentence embedding, when the analyzer computed one (topics reuse it).
    embedding: Embedding | None = field(default=None, compare=False)


class Analyzer(Protocol):
    """Analyzes batches of messages; answers in the order of the requests."""

    name: AnalyzerName

    async def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisOutcome]:
        """Analyze every request.

        Raises:
            AnalyzerUnavailableError: the analyzer cannot answer now; nothing was stored.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


class AnalyzerUnavailableError(RuntimeError):
    """The analyzer cannot answer at the moment (a remote model down, say)."""
