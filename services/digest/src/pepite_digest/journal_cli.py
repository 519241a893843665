"""``pepite journal``: a consenting member's Personal Logger entries over some days."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from enum import StrEnum
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_digest.journal_repository import JOURNAL_INDEXES
from pepite_digest.journal_service import JournalNotAllowedError, JournalService
from pepite_digest.settings import Settings
from pepite_kit.cli import fail, parse_day, require_community_id
from pepite_kit.mongo import mongo_database
from pepite_reports.journals import JournalEntry, to_markdown

#: A longer range is a mistake more often than a need: a year of days at most.
MAX_DAYS = 366


class JournalFormat(StrEnum):
    MARKDOWN = "markdown"
    JSON = "json"


def render(entries: list[JournalEntry], output: JournalFormat) -> str:
    if output is JournalFormat.MARKDOWN:
        return to_markdown(entries)
    return json.dumps([e.model_dump(mode="json") for e in entries], indent=2) + "\n"


def journal_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
    member: Annotated[
        str, typer.Option("--member", "-m", help="Member id (platform:community:native_id).")
    ],
    first: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (included).")],
    last: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (included).")],
    output: Annotated[
        JournalFormat, typer.Option("--format", "-f", help="markdown or json.")
    ] = JournalFormat.MARKDOWN,
) -> None:
    """A member's journal: mood, challenges, wins, actions, stats and titles, day by day.

    Only for a member who turned their journal on. Days are read in the community's
    time zone; the entries are stored too, so the API serves them afterwards.
    """
    require_community_id(community)
    parts = member.split(":", 2)
    if len(parts) != 3 or parts[1] != community:
        raise fail(f"--member: {member!r} is not a member id of community {community!r}")
    first_day, last_day = parse_day("--from", first), parse_day("--to", last)
    if last_day < first_day:
        raise fail(f"--to {last_day} is before --from {first_day}")
    if (last_day - first_day).days >= MAX_DAYS:
        raise fail(f"--from/--to: at most {MAX_DAYS} days at a time")
    settings = Settings()

    async def build() -> list[JournalEntry]:
        async with mongo_database(settings, app_name="pepite-cli", indexes=JOURNAL_INDEXES) as db:
            return await JournalService(db).member_journal(community, member, first_day, last_day)

    started = time.monotonic()
    try:
        entries = asyncio.run(build())
    except JournalNotAllowedError as exc:
        raise fail(str(exc)) from None
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    sys.stdout.write(render(entries, output))
    typer.echo(
        f"journal of {member}: {len(entries)} days with messages between {first_day} and "
        f"{last_day}, in {time.monotonic() - started:.1f}s",
        err=True,
    )
