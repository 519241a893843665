"""The ``pepite`` command loads the one command it runs, and stays a group of commands."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from pepite_kit.cli import build_app


def command_names(app: typer.Typer) -> set[str]:
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return set(group.commands)


def test_one_command_is_loaded_alone_and_keeps_its_name() -> None:
    everything = command_names(build_app())
    assert {"import", "members", "topics"} <= everything

    app = build_app(only="import")
    assert command_names(app) == {"import"}
    # Still a group: `pepite import …` reads `import` as the command, not as a file.
    result = CliRunner().invoke(app, ["import", "--help"])
    assert result.exit_code == 0, result.output
    assert "--community" in result.output


def test_an_unknown_name_loads_every_command() -> None:
    assert command_names(build_app(only="nosuch")) == command_names(build_app())
