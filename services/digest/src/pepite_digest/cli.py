"""``pepite digest``: the Lore Keeper's digest of any period."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_digest.personal_repository import PERSONAL_DIGEST_INDEXES
from pepite_digest.personal_service import NotConsentedError, PersonalDigestService
from pepite_digest.repository import DIGEST_INDEXES
from pepite_digest.service import DigestService, EmptyPeriodError
from pepite_digest.settings import Settings
from pepite_digest.writer import build_writer
from pepite_kit.cli import fail, parse_day, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_llm.errors import LlmConfigError
from pepite_reports.digests.models import Digest
from pepite_reports.digests.render import to_html, to_markdown


class DigestFormat(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"
    JSON = "json"


def render(digest: Digest, output: DigestFormat) -> str:
    if output is DigestFormat.MARKDOWN:
        return to_markdown(digest)
    if output is DigestFormat.HTML:
        return to_html(digest)
    return digest.model_dump_json(indent=2) + "\n"


def digest_command(  # noqa: PLR0917 - one parameter per command-line option
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
    first: Annotated[
        str, typer.Option("--from", help="First day of the period, YYYY-MM-DD (included).")
    ],
    last: Annotated[
        str, typer.Option("--to", help="Last day of the period, YYYY-MM-DD (included).")
    ],
    output: Annotated[
        DigestFormat, typer.Option("--format", "-f", help="markdown, html or json.")
    ] = DigestFormat.MARKDOWN,
    to_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    member: Annotated[
        str | None,
        typer.Option(
            "--member",
            "-m",
            help="A member id: their personalized digest instead (they must have turned "
            "personalization on).",
        ),
    ] = None,
) -> None:
    """What happened in a community over a period, every statement citing its messages.

    Days are read in the community's time zone (its settings; UTC by default). The
    digest is stored too, so the API serves it afterwards. With ``--member``, the
    member's own digest of the period: what concerns them first, then the community's
    items in the order of their interests.
    """
    require_community_id(community)
    first_day, last_day = parse_day("--from", first), parse_day("--to", last)
    if last_day < first_day:
        raise fail(f"--to {last_day} is before --from {first_day}")
    settings = Settings()

    async def build() -> Digest:
        indexes = [*DIGEST_INDEXES, *(PERSONAL_DIGEST_INDEXES if member else ())]
        async with mongo_database(settings, app_name="pepite-cli", indexes=indexes) as db:
            personal = PersonalDigestService(
                db, lookback=timedelta(days=settings.personal_lookback_days)
            )
            if member is not None:
                # Refused before anything is built: no consent, nothing computed.
                await personal.require_consent(community, member)
            writer = build_writer(settings, db)
            try:
                service = DigestService(db, writer=writer)
                digest = await service.community_digest(community, first_day, last_day)
            finally:
                if writer is not None:
                    await writer.aclose()
            if member is None:
                return digest
            return await personal.member_digest(digest, member)

    started = time.monotonic()
    try:
        digest = asyncio.run(build())
    except (EmptyPeriodError, NotConsentedError, LlmConfigError) as exc:
        raise fail(str(exc)) from None
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    text = render(digest, output)
    if to_file is None:
        sys.stdout.write(text)
    else:
        to_file.write_text(text, encoding="utf-8")
    typer.echo(
        f"digest {digest.digest_id}: {sum(len(s.statements) for s in digest.sections)} "
        f"statements citing {len(digest.sources)} messages, in {time.monotonic() - started:.1f}s",
        err=True,
    )
