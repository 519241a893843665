"""Errors of the LLM path."""

from __future__ import annotations


class LlmConfigError(ValueError):
    """The OpenAI analyzer is selected but cannot work as configured; raised at start-up."""


class LlmUnavailableError(RuntimeError):
    """A call failed for good (retries spent, or an error retrying cannot fix)."""
