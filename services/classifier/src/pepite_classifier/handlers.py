"""What the classifier does with each consumed topic."""

from __future__ import annotations

from collections.abc import Sequence

from pepite_classifier.service import plan_writes
from pepite_classifier.stage import AnalysisStage
from pepite_contracts import Event


class RawMessageHandler:
    """Stores every ingested message and membership change, then analyzes what changed."""

    def __init__(self, stage: AnalysisStage) -> None:
        self._stage = stage

    async def __call__(self, events: Sequence[Event]) -> None:
        await self._stage.run(plan_writes(events))
