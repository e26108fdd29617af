"""Every command's --help reads as a person expects: a flag shows no type placeholder
(Typer prints "<bool>" beside each one, as if it took a value), and the commands that
unlock keys all take --password-stdin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from securechat.cli.entry import app


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Typer vendors its own click, so a group is told by its ``commands``."""
    yield prefix
    if isinstance(getattr(group, "commands", None), dict):
        for name, command in group.commands.items():
            yield from command_paths(command, (*prefix, name))


ALL = list(command_paths(typer.main.get_command(app)))


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) or "securechat" for p in ALL])
def test_help_shows_no_raw_bool_placeholder(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def test_there_are_commands_to_check() -> None:
    assert len(ALL) > 30


# Run on the server with its data, or start it: no account, no password.
OPERATOR_COMMANDS = {("serve",), ("admin", "create"), ("admin", "backup"), ("admin", "restore")}
COMMANDS = [
    p for p in ALL if p and not (p[0] in ("admin", "backup", "devices", "group", "account") and len(p) == 1)
]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_account_command_takes_password_stdin(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
    assert ("--password-stdin" in result.output) == (path not in OPERATOR_COMMANDS), result.output
