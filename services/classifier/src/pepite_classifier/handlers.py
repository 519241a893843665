"""What the classifier does with each consumed topic."""

from __future__ import annotations

from collections.abc import Sequence

from pepite_classifier.repository import ClassifierRepository
from pepite_classifier.service import plan_writes
from pepite_contracts import Event


class RawMessageHandler:
    """Stores every ingested message and membership change (analysis comes later)."""

    def __init__(self, repository: ClassifierRepository) -> None:
        self._repository = repository

    async def __call__(self, events: Sequence[Event]) -> None:
        await self._repository.apply(plan_writes(events))
