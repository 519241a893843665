"""Naming topics: keywords by default, any namer (an LLM, say) when one is plugged in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TopicNamer(Protocol):
    """Gives categories human names from what they contain."""

    async def name_clusters(
        self, community_id: str, clusters: Sequence[tuple[list[str], list[str]]]
    ) -> list[str | None]:
        """Name each cluster.

        Args:
            community_id: The community the clusters belong to.
            clusters: For each cluster, ``(samples, keywords)``: texts of its most
                central messages (most central first) and its keywords (best first).

        Returns:
            One name per cluster, in order; ``None`` keeps the keyword name.
        """
        ...


class KeywordNamer:
    """The default namer: keeps every keyword name."""

    async def name_clusters(
        self, community_id: str, clusters: Sequence[tuple[list[str], list[str]]]
    ) -> list[str | None]:
        return [None] * len(clusters)
