"""From a retrieval score to a confidence: the default curve and each community's fitted one.

A retrieval score means different things in different communities (how often questions
repeat, how long answers are, how the team words things), so the curve that turns it
into the chance an entry answers is fitted on the community's own history by
``pepite knowledge calibrate`` and stored in ``knowledge_calibrations``, one document
per community. A community without one uses :data:`CALIBRATION`.

A reader keeps the curve in memory with the ``fitted_at`` it was stored with, and
reads only that field on each question to tell whether it must reload the curve (as
the index is reloaded when the knowledge version moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pepite_kit import Database

KNOWLEDGE_CALIBRATIONS = "knowledge_calibrations"


@dataclass(frozen=True)
class Calibration:
    """The logistic curve from a retrieval score to the chance the entry answers."""

    slope: float
    intercept: float

    def confidence(self, score: float) -> float:
        z = self.slope * score + self.intercept
        # exp overflows past ~709: the curve is flat there anyway.
        if z < -700:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))


#: Even odds at a score of 0.4, where a paraphrase of an entry's question lands (they
#: score 0.41-0.81; an unrelated question scores 0.05-0.25). It is a prior for
#: communities whose own curve was never fitted, and the curve of curated entries.
CALIBRATION = Calibration(slope=12.0, intercept=-4.8)


class CommunityCalibration(BaseModel):
    """A curve fitted on a community's history, and the evidence it rests on."""

    model_config = ConfigDict(frozen=True)

    community_id: str
    slope: float
    intercept: float
    fitted_at: datetime
    questions: int = Field(ge=0, description="Past questions asked to fit the curve.")
    correct: int = Field(ge=0, description="Of them, those whose best entry was right.")
    hit_rate: float = Field(ge=0, le=1, description="correct / questions.")
    target_precision: float = Field(gt=0, le=1)
    recommended_threshold: float = Field(
        ge=0,
        le=1,
        description="Lowest confidence whose answers were right target_precision of the time.",
    )

    @property
    def curve(self) -> Calibration:
        return Calibration(self.slope, self.intercept)


class CalibrationRepository:
    """Each community's fitted curve (no member data: nothing to erase)."""

    def __init__(self, db: Database) -> None:
        self._calibrations = db[KNOWLEDGE_CALIBRATIONS]

    async def fitted_at(self, community_id: str) -> datetime | None:
        """When the community's stored curve was fitted (it changes with the curve)."""
        doc = await self._calibrations.find_one({"_id": community_id}, {"fitted_at": 1})
        return doc["fitted_at"] if doc else None

    async def get(self, community_id: str) -> CommunityCalibration | None:
        doc = await self._calibrations.find_one({"_id": community_id})
        if doc is None:
            return None
        fields = {k: v for k, v in doc.items() if k != "_id"}
        return CommunityCalibration.model_validate({**fields, "community_id": community_id})

    async def store(self, calibration: CommunityCalibration) -> None:
        """Replace the community's curve; readers pick it up at their next question."""
        document = calibration.model_dump(mode="python", exclude={"community_id"})
        await self._calibrations.replace_one(
            {"_id": calibration.community_id}, document, upsert=True
        )
