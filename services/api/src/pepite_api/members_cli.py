"""``pepite members``: link the platform identities of one person, and look them up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, TypeAdapter
from pymongo.errors import PyMongoError

from pepite_api.identities import INDEXES, IdentityRepository, UnknownMembersError
from pepite_api.schemas import MemberProfile
from pepite_api.settings import Settings
from pepite_kit.cli import fail, require_community_id
from pepite_kit.mongo import mongo_database

app = typer.Typer(help="Members across platforms: link identities of one person.")

CommunityOption = Annotated[str, typer.Option("--community", "-c", help="Community id.")]
T = TypeVar("T")


def _run(community: str, action: Callable[[IdentityRepository], Awaitable[T]]) -> T:
    require_community_id(community)
    settings = Settings()

    async def run() -> T:
        async with mongo_database(settings, app_name="pepite-cli", indexes=INDEXES) as db:
            return await action(IdentityRepository(db))

    try:
        return asyncio.run(run())
    except UnknownMembersError as exc:
        raise fail(str(exc)) from None
    except PyMongoError as exc:
        raise fail(f"MongoDB at {settings.mongodb_uri}: {exc}") from None


def _echo(value: BaseModel | Sequence[BaseModel] | None) -> None:
    typer.echo(TypeAdapter(Any).dump_json(value, indent=2).decode())


@app.command("link")
def link_command(
    member_ids: Annotated[list[str], typer.Argument(help="Member ids, e.g. slack:acme:U123.")],
    community: CommunityOption,
    name: Annotated[str | None, typer.Option(help="The person's display name.")] = None,
) -> None:
    """Link two or more identities as one person (merging people they belong to)."""
    if len(set(member_ids)) < 2:
        raise fail("give at least two different member ids to link")
    _echo(_run(community, lambda repo: repo.link(community, member_ids, name)))


@app.command("unlink")
def unlink_command(
    member_id: Annotated[str, typer.Argument(help="The identity to take out of its person.")],
    community: CommunityOption,
) -> None:
    """Take an identity out of the person it is linked to."""
    _echo(_run(community, lambda repo: repo.unlink(community, member_id)))


@app.command("show")
def show_command(
    member_id: Annotated[str, typer.Argument(help="A member id.")], community: CommunityOption
) -> None:
    """Show an identity and every identity linked to it."""

    async def show(repo: IdentityRepository) -> MemberProfile | None:
        found = await repo.identity(community, member_id)
        if found is None:
            return None
        identity, person_id = found
        person = await repo.person(community, person_id) if person_id else None
        return MemberProfile(identity=identity, person=person)

    profile = _run(community, show)
    if profile is None:
        raise fail(f"no member {member_id!r} in community {community!r}")
    _echo(profile)


@app.command("suggest")
def suggest_command(community: CommunityOption) -> None:
    """List identities on different platforms that share a name: candidates to link."""
    _echo(_run(community, lambda repo: repo.suggestions(community)))
