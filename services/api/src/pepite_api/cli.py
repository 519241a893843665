"""``pepite status``: what is stored for a community, as one JSON object."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pymongo.errors import PyMongoError

from pepite_api.repository import StatusRepository
from pepite_api.schemas import CommunityStatus
from pepite_api.settings import Settings
from pepite_kit.cli import fail, require_community_id
from pepite_kit.mongo import mongo_database


def status_command(
    community: Annotated[str, typer.Option("--community", "-c", help="Community id.")],
) -> None:
    """Print messages, members, channels and first/last message time of a community."""
    require_community_id(community)
    settings = Settings()
    try:
        status = asyncio.run(_status(settings, community))
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None
    typer.echo(status.model_dump_json())


async def _status(settings: Settings, community: str) -> CommunityStatus:
    async with mongo_database(settings, app_name="pepite-cli") as db:
        return await StatusRepository(db).community_status(community)
