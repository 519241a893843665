"""``pepite knowledge``: the FAQ knowledge base mined from a community's messages."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_digest.knowledge import BuildResult, KnowledgeBuilder
from pepite_digest.knowledge_calibration import (
    DEFAULT_TARGET_PRECISION,
    CalibrationFit,
    NotEnoughEvidenceError,
    fit_community,
)
from pepite_digest.repository import DigestRepository
from pepite_digest.settings import Settings
from pepite_embeddings import Embedder
from pepite_kit.cli import fail, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_knowledge import KNOWLEDGE_INDEXES, CalibrationRepository, CommunityCalibration

app = typer.Typer(help="FAQ knowledge base: questions and the answers the community accepted.")


def _until(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        day = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--until: {value!r} is not a date like 2024-05-06") from None
    return day.replace(tzinfo=day.tzinfo or UTC)


@app.command("build")
def build_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Mine messages before this date (YYYY-MM-DD, UTC); default: now."
        ),
    ] = None,
) -> None:
    """Mine every answered question of a community into its knowledge base.

    Entries are keyed by their question: running it again updates them, never
    duplicates them. The API's /ask reads them at once.
    """
    require_community_id(community)
    end = _until(until)
    settings = Settings()
    started = time.monotonic()

    def progress(reached: datetime, pairs: int) -> None:
        typer.echo(f"mined up to {reached:%Y-%m-%d}: {pairs} answered questions", err=True)

    async def build() -> BuildResult:
        async with mongo_database(settings, app_name="pepite-cli", indexes=KNOWLEDGE_INDEXES) as db:
            builder = KnowledgeBuilder(db, Embedder())
            return await builder.build(community, until=end, progress=progress)

    try:
        result = asyncio.run(build())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    typer.echo(
        f"knowledge of {community}: {result.pairs} question/answer pairs, "
        f"{result.written} entries written, in {time.monotonic() - started:.1f}s"
    )


@app.command("calibrate")
def calibrate_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
    target_precision: Annotated[
        float,
        typer.Option(
            "--target-precision",
            min=0.01,
            max=1.0,
            help="Share of answers that must be right above the recommended threshold.",
        ),
    ] = DEFAULT_TARGET_PRECISION,
) -> None:
    """Fit the community's FAQ confidence curve on its own history and store it.

    The first 75% of its days are mined into a knowledge base held in memory (the
    stored one is not touched), the answered questions of the rest are asked, and the
    curve from retrieval score to the chance of a right answer is fitted on them. /ask
    uses it for mined entries from its next question on. With too little evidence
    nothing is stored and the community keeps its current curve (the default one if
    never fitted).
    """
    require_community_id(community)
    settings = Settings()
    started = time.monotonic()

    def progress(text: str) -> None:
        typer.echo(text, err=True)

    async def calibrate() -> CalibrationFit:
        async with mongo_database(settings, app_name="pepite-cli") as db:
            progress(f"reading the messages of {community}")
            messages = await DigestRepository(db).messages(
                community,
                datetime(1970, 1, 1, tzinfo=UTC),
                datetime.now(UTC) + timedelta(days=1),
            )
            fit = await asyncio.to_thread(
                fit_community,
                community,
                messages,
                Embedder(),
                target_precision=target_precision,
                progress=progress,
            )
            await CalibrationRepository(db).store(
                CommunityCalibration(
                    community_id=community,
                    slope=fit.calibration.slope,
                    intercept=fit.calibration.intercept,
                    fitted_at=datetime.now(UTC),
                    questions=fit.questions,
                    correct=fit.correct,
                    hit_rate=fit.hit_rate,
                    target_precision=fit.target_precision,
                    recommended_threshold=fit.threshold,
                )
            )
            return fit

    try:
        fit = asyncio.run(calibrate())
    except NotEnoughEvidenceError as exc:
        raise fail(
            f"{community}: not enough evidence to fit a curve, nothing stored: {exc}"
        ) from None
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    curve = fit.calibration
    even_odds = -curve.intercept / curve.slope if curve.slope else float("nan")
    typer.echo(
        f"calibration of {community}: {fit.questions} questions after {fit.cut:%Y-%m-%d} "
        f"asked to {fit.knowledge_entries} entries, {fit.correct} right "
        f"(top-1 hit rate {fit.hit_rate:.3f})\n"
        f"  slope {curve.slope:.3f}, intercept {curve.intercept:.3f} "
        f"(even odds at score {even_odds:.3f})\n"
        f"  recommended threshold {fit.threshold:.2f} for precision {fit.target_precision:.2f}; "
        f"confidence at score 0.4: {curve.confidence(0.4):.3f}\n"
        f"stored in knowledge_calibrations in {time.monotonic() - started:.1f}s"
    )
