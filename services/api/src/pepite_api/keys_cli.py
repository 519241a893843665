"""``pepite keys``: create, list and revoke API keys from the command line.

The first operator key can only be made here (the API needs a key to make keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter
from pymongo.errors import PyMongoError

from pepite_api.communities import CommunityRepository
from pepite_api.keys import KEY_INDEXES, ApiKeyInfo, KeyRepository, Scope
from pepite_api.settings import Settings
from pepite_kit import Database
from pepite_kit.cli import fail, require_community_id
from pepite_kit.mongo import mongo_database

app = typer.Typer(help="API keys: create (shown once), list, revoke.")
T = TypeVar("T")

CommunityOption = Annotated[
    str | None,
    typer.Option("--community", "-c", help="The key's community; leave out for operator keys."),
]


def _run(action: Callable[[Database], Awaitable[T]]) -> T:
    settings = Settings()

    async def run() -> T:
        async with mongo_database(settings, app_name="pepite-cli", indexes=KEY_INDEXES) as db:
            return await action(db)

    try:
        return asyncio.run(run())
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None


@app.command("create")
def create_command(
    community: CommunityOption = None,
    scope: Annotated[Scope, typer.Option(help="read, write or admin.")] = Scope.READ,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests per minute (default: the server's).", min=1)
    ] = None,
) -> None:
    """Create a key and print it as JSON; the key is shown only this once."""
    if community is not None:
        require_community_id(community)

    async def create(db: Database) -> str:
        if community is not None:
            await CommunityRepository(db).ensure(community)
        created = await KeyRepository(db).create(
            name=name, community_id=community, scopes=[scope], rate_limit_per_minute=rate_limit
        )
        return created.model_dump_json(indent=2)

    typer.echo(_run(create))


@app.command("list")
def list_command(community: CommunityOption = None) -> None:
    """List the keys of a community (or operator keys), never the keys themselves."""
    if community is not None:
        require_community_id(community)
    keys = _run(lambda db: KeyRepository(db).list(community, limit=10_000))
    typer.echo(TypeAdapter(list[ApiKeyInfo]).dump_json(keys, indent=2).decode())


@app.command("revoke")
def revoke_command(key_id: str, community: CommunityOption = None) -> None:
    """Revoke a key by its id."""
    revoked = _run(lambda db: KeyRepository(db).revoke(community, key_id))
    if revoked is None:
        raise fail(f"no key {key_id!r}" + (f" in community {community!r}" if community else ""))
    typer.echo(revoked.model_dump_json(indent=2))
