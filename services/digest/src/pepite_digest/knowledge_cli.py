"""``pepite knowledge``: the FAQ knowledge base mined from a community's messages."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_digest.knowledge import BuildResult, KnowledgeBuilder
from pepite_digest.settings import Settings
from pepite_embeddings import Embedder
from pepite_kit.cli import fail, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_knowledge import KNOWLEDGE_INDEXES

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
