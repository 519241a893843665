"""Which curve gives a reply's confidence, and the stored curves per community."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pepite_kit import Database
from pepite_knowledge import (
    CALIBRATION,
    Calibration,
    CalibrationRepository,
    CommunityCalibration,
    EntryOrigin,
    KnowledgeEntry,
    Match,
    reply_from,
)

NOW = datetime(2024, 5, 6, 12, tzinfo=UTC)
NEVER = Calibration(slope=7.8, intercept=-7.5)


def match(origin: EntryOrigin, score: float) -> Match:
    entry = KnowledgeEntry(
        entry_id=f"{origin.value}:1",
        community_id="acme",
        origin=origin,
        question="How do I mount a share?",
        answer="Add it to /etc/fstab.",
        created_at=NOW,
        updated_at=NOW,
    )
    return Match(entry, score, score, 0.0)


def fitted(community_id: str, slope: float, at: datetime = NOW) -> CommunityCalibration:
    return CommunityCalibration(
        community_id=community_id,
        slope=slope,
        intercept=-7.5,
        fitted_at=at,
        questions=100,
        correct=10,
        hit_rate=0.1,
        target_precision=0.5,
        recommended_threshold=0.95,
    )


def test_the_community_curve_is_for_mined_entries_only() -> None:
    mined = reply_from([match(EntryOrigin.MINED, 0.6)], 0.5, CALIBRATION, NEVER)
    assert mined.calibration == "community"
    assert mined.confidence == round(NEVER.confidence(0.6), 4)
    assert mined.answered is False

    default = reply_from([match(EntryOrigin.MINED, 0.6)], 0.5, CALIBRATION, None)
    assert default.calibration == "default"
    assert default.confidence == round(CALIBRATION.confidence(0.6), 4)
    assert default.answered is True

    curated = reply_from([match(EntryOrigin.CURATED, 0.6)], 0.5, CALIBRATION, NEVER)
    assert curated.calibration == "default"
    assert curated.answered is True


def test_an_extreme_curve_gives_a_confidence_without_overflow() -> None:
    assert Calibration(slope=-5000.0, intercept=0.0).confidence(1.0) == 0.0
    assert Calibration(slope=5000.0, intercept=0.0).confidence(1.0) == 1.0


@pytest.mark.asyncio
async def test_curves_are_stored_per_community(mongo_db: Database) -> None:
    repository = CalibrationRepository(mongo_db)
    assert await repository.get("acme") is None
    await repository.store(fitted("acme", 7.8))
    await repository.store(fitted("other", 20.0))
    later = datetime(2024, 6, 1, tzinfo=UTC)
    await repository.store(fitted("acme", 9.0, later))

    acme = await repository.get("acme")
    assert acme is not None
    assert acme.curve == Calibration(9.0, -7.5)
    assert await repository.fitted_at("acme") == later
    other = await repository.get("other")
    assert other is not None
    assert other.slope == 20.0
    assert await repository.get("nobody") is None
    assert await repository.fitted_at("nobody") is None
