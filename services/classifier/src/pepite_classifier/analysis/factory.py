"""Choose the analyzer the settings ask for."""

from __future__ import annotations

from pepite_classifier.analysis.base import Analyzer
from pepite_classifier.analysis.llm_repository import LLM_INDEXES, LlmRepository
from pepite_classifier.analysis.openai_analyzer import OpenAIAnalyzer
from pepite_classifier.settings import Settings
from pepite_contracts import AnalyzerName
from pepite_kit import Database
from pepite_llm.errors import LlmConfigError

__all__ = ["LLM_INDEXES", "LlmConfigError", "build_analyzer"]


def build_analyzer(settings: Settings, db: Database, local: Analyzer) -> Analyzer:
    """The analyzer named by ``PEPITE_ANALYZER``.

    ``local`` is always needed: with ``openai`` it analyzes what is not sent (opted-out
    members, a community over budget, a batch the model could not label). The caller
    owns it and closes it after the returned analyzer. With ``openai``, the service must
    also create :data:`LLM_INDEXES` at start-up.

    Raises:
        LlmConfigError: ``openai`` is chosen without ``OPENAI_BASE_URL`` or
            ``OPENAI_API_KEY``, or for a model missing from ``PEPITE_LLM_PRICES``.
    """
    if settings.analyzer is AnalyzerName.LOCAL:
        return local
    return OpenAIAnalyzer(settings, LlmRepository(db), fallback=local)
