"""``securechat backup``: history backups under a recovery key (PROTOCOL.md 15.10.1)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..client.history_backup import HistoryBackups
from ..client.messenger import Messenger
from ..protocol.v2.backup import BackupRefused
from .main import PasswordStdin, console, errors, run, unlocked

backup_app = typer.Typer(
    help="Back up this home's message history under a recovery key.", no_args_is_help=True
)

REFUSALS = {
    "recovery_key_malformed": "that is not a recovery key: 64 characters, in 16 groups of 4",
    "recovery_key_checksum": "that recovery key has a typo (its checksum does not match); nothing was downloaded",
    "backup_failed": "the backup does not open with that recovery key",
    "backup_malformed": "the backup opened but is not this account's history; nothing was changed",
    "backup_rollback": "the server handed back an older backup than one this home has seen; refused",
    "backup_too_large": "the backup is too large",
}


def backups(client: Messenger) -> HistoryBackups:
    return HistoryBackups(client.state, client.api, client.session)


def refused(exc: BackupRefused) -> typer.Exit:
    errors.print(f"error: {REFUSALS.get(exc.reason, exc.reason)}", style="red", markup=False, highlight=False)
    return typer.Exit(1)


@backup_app.command()
@run
async def enable(password_stdin: PasswordStdin = False) -> None:
    """Turn backups on: make a recovery key, show it once, upload a first backup."""
    async with await unlocked(password_stdin) as client:
        await client.ensure_token()
        shown, uploaded = await backups(client).enable()
    console.print("Your recovery key (shown once; write it down and keep it away from this computer):")
    console.print(f"\n    {shown}\n", markup=False, highlight=False)
    console.print(
        "Without it no backup can be opened: not by you, not by the server, not with your password.",
        markup=False,
    )
    console.print(f"backup {uploaded.version} uploaded: {uploaded.messages} messages, {uploaded.size} bytes")


@backup_app.command()
@run
async def now(password_stdin: PasswordStdin = False) -> None:
    """Upload a backup of this home's history as it is now."""
    async with await unlocked(password_stdin) as client:
        await client.ensure_token()
        uploaded = await backups(client).upload()
    console.print(f"backup {uploaded.version} uploaded: {uploaded.messages} messages, {uploaded.size} bytes")


@backup_app.command()
@run
async def disable(password_stdin: PasswordStdin = False) -> None:
    """Turn backups off in this home: it forgets the recovery key. The backup on the server
    stays, and still opens with the key you wrote down."""
    async with await unlocked(password_stdin) as client:
        backups(client).disable()
    console.print("Backups are off in this home; the backup on the server is still there.", markup=False)


@backup_app.command()
@run
async def delete(password_stdin: PasswordStdin = False) -> None:
    """Delete the account's backup on the server and turn backups off in this home.

    Turning them on again (`securechat backup enable`) makes a new recovery key and starts
    again from version 1. Other homes that back up under the old key stop with a message."""
    async with await unlocked(password_stdin) as client:
        await client.ensure_token()
        deleted = await backups(client).delete()
    console.print(
        "The backup on the server was deleted" if deleted else "There was no backup on the server",
        markup=False,
    )
    console.print(
        "Backups are off in this home: `securechat backup enable` starts again with a new key.", markup=False
    )


@backup_app.command()
@run
async def restore(
    key_stdin: Annotated[
        bool, typer.Option("--key-stdin", help="Read the recovery key from standard input.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Download the latest backup, open it with the recovery key and add its messages here.

    The key is kept here, sealed, for later backups: unlocking needs the password (read
    first when both come from standard input)."""
    async with await unlocked(password_stdin) as client:
        typed = sys.stdin.readline().strip() if key_stdin else typer.prompt("Recovery key")
        await client.ensure_token()
        try:
            restored = await backups(client).restore(typed)
        except BackupRefused as exc:
            raise refused(exc) from None
    for line in restored.lines():
        console.print(line, markup=False, highlight=False)
