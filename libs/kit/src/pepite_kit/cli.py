"""The ``pepite`` command. Each service contributes its subcommands.

Services declare them as entry points in the ``pepite.commands`` group, so the
command line is one tool while services stay independent of each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from importlib.metadata import entry_points
from typing import Any

import typer

from pepite_contracts import validate_community_id

ENTRY_POINT_GROUP = "pepite.commands"


class CommandError(Exception):
    """A failure to report on one line, without a traceback."""


def _group() -> None:
    """Run one of the commands below."""


def build_app(only: str | None = None) -> typer.Typer:
    """Assemble the ``pepite`` app from every installed service's commands.

    Args:
        only: when it names an installed command, load that command alone. Loading them
            all imports every service's libraries (scikit-learn, the OpenAI SDK, …), which
            costs seconds a run of one command never needs.
    """
    app = typer.Typer(
        name="pepite",
        help="Pépite: community insights from every message.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # A callback keeps the app a group when it holds one command, so `pepite import …`
    # still reads `import` as the command's name.
    app.callback()(_group)
    commands = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    if any(entry_point.name == only for entry_point in commands):
        commands = [entry_point for entry_point in commands if entry_point.name == only]
    for entry_point in commands:
        command: Callable[..., Any] | typer.Typer = entry_point.load()
        if isinstance(command, typer.Typer):
            # A group of subcommands, e.g. ``pepite members link``.
            app.add_typer(command, name=entry_point.name)
        else:
            app.command(name=entry_point.name)(command)
    return app


def fail(message: str, *, code: int = 1) -> typer.Exit:
    """Print ``pepite: message`` on stderr and return the exit to raise."""
    typer.echo(f"pepite: {message}", err=True)
    return typer.Exit(code)


def parse_day(option: str, value: str) -> date:
    """The day an option names (``YYYY-MM-DD``), or the command stops naming the option.

    Raises:
        typer.Exit: ``value`` is not such a day (the reason is printed).
    """
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date like 2024-05-06") from None


def require_community_id(community: str) -> None:
    """Stop the command with one line if ``community`` cannot be a community id.

    Raises:
        typer.Exit: the id is invalid (the reason is printed).
    """
    try:
        validate_community_id(community)
    except ValueError as exc:
        raise fail(str(exc)) from None


def main() -> None:
    """Console entry point."""
    arguments = sys.argv[1:]
    # The command is the first argument: `pepite` itself takes no option but --help.
    command = arguments[0] if arguments and not arguments[0].startswith("-") else None
    try:
        build_app(only=command)()
    except KeyboardInterrupt:
        typer.echo("pepite: interrupted", err=True)
        sys.exit(130)
