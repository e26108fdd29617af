"""`securechat admin ...`: the operator's commands. `create` works on the database
directly (whoever runs it has the server's data); the rest use the admin's session on
this device, like the web console."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .formatting import human_size, safe_line
from .main import PasswordStdin, console, run, show, signed_in, when

admin_app = typer.Typer(
    help="Administration: roles, message and file logs, users, intrusion detection.", no_args_is_help=True
)

Sender = Annotated[str | None, typer.Option(help="Only messages from this user.")]
Recipient = Annotated[str | None, typer.Option(help="Only messages to this user.")]
ProtocolOption = Annotated[
    int,
    typer.Option("--protocol", min=1, max=2, help="Protocol 2 (per-device) messages, or 1 (the older ones)."),
]


def cell(value: object) -> str:
    """A table cell from the server's data: escaped, as a cell is Rich markup."""
    return safe_line(value, markup=True)


def cells(values: list[Any]) -> str:
    return ", ".join(cell(value) for value in values)


def size_cell(value: object) -> str:
    """A byte count from the server as people read it; anything else as an inert cell."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return human_size(value)
    return cell(value)


@admin_app.command()
def create(
    username: str,
    data_dir: Annotated[Path | None, typer.Option(help="The server's data dir (default ./data).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="The server's database URL, if not SQLite.")
    ] = None,
) -> None:
    """Make a registered user an administrator (run on the server, with its data)."""
    from .serve import GrantRefused, grant_admin

    try:
        grant_admin(username, data_dir=data_dir, database_url=database_url)
    except GrantRefused as exc:
        show(f"error: {exc}", style="red")
        raise typer.Exit(1) from None
    show(f"{username} is now an administrator")


DataDir = Annotated[Path | None, typer.Option(help="The server's data dir (default: as `serve` reads it).")]
DatabaseUrl = Annotated[str | None, typer.Option(help="The server's database URL, if not SQLite.")]


@admin_app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="A new (or empty) directory for the backup.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    print_only: Annotated[
        bool, typer.Option("--print-only", help="PostgreSQL: print the pg_dump command, do not run it.")
    ] = False,
) -> None:
    """Back up the server's data while it serves: a consistent copy of the database
    (SQLite's online backup; pg_dump for PostgreSQL) and the encrypted file chunks.
    Ciphertext and metadata only; the server secret is left out (README: Backup)."""
    from .serve import take_backup

    report = _operator_step(
        lambda: take_backup(path, data_dir=data_dir, database_url=database_url, run_pg_dump=not print_only)
    )
    if not report["performed"]:
        show("pg_dump is not available here (or --print-only): run, with the password in PGPASSWORD,")
        show("  " + " ".join(report["command"]))
        return
    counts = ", ".join(f"{v} {k}" for k, v in report["counts"].items())
    show(f"backup written to {path} in {report['seconds']} s" + (f": {counts}" if counts else ""))
    if report["chunks_missing"]:
        show(
            f"{len(report['chunks_missing'])} file chunk(s) were deleted while the backup ran", style="yellow"
        )


@admin_app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A directory `securechat admin backup` wrote.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    print_only: Annotated[
        bool, typer.Option("--print-only", help="PostgreSQL: print the pg_restore command, do not run it.")
    ] = False,
) -> None:
    """Restore a backup into a fresh data dir (SQLite) or an empty database (PostgreSQL),
    with the server stopped; it never overwrites existing data."""
    from .serve import restore_backup

    report = _operator_step(
        lambda: restore_backup(
            path, data_dir=data_dir, database_url=database_url, run_pg_restore=not print_only
        )
    )
    if not report["performed"]:
        show("pg_restore is not available here (or --print-only): run, with the password in PGPASSWORD,")
        show("  " + " ".join(report["command"]))
        return
    show(f"restored into {report['target']}; start the server on it")


def _operator_step(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from .serve import BackupFailed

    try:
        return step()
    except BackupFailed as exc:
        show(f"error: {exc}", style="red")
        raise typer.Exit(1) from None


async def _admin_request(method: str, path: str, password_stdin: bool, **kwargs: Any) -> Any:
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        return await client.api.request(method, f"/api/v1/admin{path}", **kwargs)


@admin_app.command()
@run
async def messages(
    sender: Sender = None,
    recipient: Recipient = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    protocol: ProtocolOption = 2,
    password_stdin: PasswordStdin = False,
) -> None:
    """The message log: metadata and a ciphertext preview (never plaintext)."""
    params = {
        k: v
        for k, v in {"sender": sender, "recipient": recipient, "limit": limit, "protocol": protocol}.items()
        if v is not None
    }
    page = await _admin_request("GET", "/messages", password_stdin, params=params)
    if as_json:
        for entry in page["messages"]:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    table = Table("server time", "sender", "recipients", "bytes", "ciphertext", "sender device")
    for entry in page["messages"]:
        device = entry.get("sender_device")
        table.add_row(
            when(entry["server_ts"]),
            cell(entry["sender"]),
            cells(entry["recipients"]),
            cell(entry["size"]),
            "(deleted once every device had it)"
            if entry.get("body_deleted_at")
            else cell(entry["ciphertext_preview"]),
            f"{cell(device)} to {cell(entry.get('devices'))} device(s)" if device else "-",
        )
    console.print(table)


@admin_app.command()
@run
async def files(
    sender: Annotated[str | None, typer.Option(help="Only files uploaded by this user.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Only files shared with this user.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Only files in this conversation.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """The file log: uploader, recipients, size and times (never names or contents)."""
    params = {
        k: v
        for k, v in {
            "sender": sender,
            "recipient": recipient,
            "conversation": conversation,
            "limit": limit,
        }.items()
        if v is not None
    }
    page = await _admin_request("GET", "/files", password_stdin, params=params)
    if as_json:
        for entry in page["files"]:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    table = Table("uploaded", "sender", "recipients", "size", "completed", "file id")
    for entry in page["files"]:
        table.add_row(
            when(entry["created_at"]),
            cell(entry["sender"]),
            cells(entry["recipients"]),
            f"{human_size(entry['size'])} ({cell(entry['size'])} B)",
            when(entry["completed_at"]) if entry["completed_at"] else "incomplete",
            cell(entry["file_id"]),
        )
    console.print(table)


@admin_app.command()
@run
async def export(
    sender: Sender = None,
    recipient: Recipient = None,
    protocol: ProtocolOption = 2,
    password_stdin: PasswordStdin = False,
) -> None:
    """Every stored envelope as JSON Lines on standard output (an encrypted log)."""
    params = {
        k: v
        for k, v in {"sender": sender, "recipient": recipient, "protocol": protocol}.items()
        if v is not None
    }
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        async with client.api.stream("GET", "/api/v1/admin/messages/export", params=params) as response:
            if response.is_error:
                await response.aread()
                # Typer prints this as plain text, not markup.
                raise typer.BadParameter(
                    f"the server refused: {response.status_code} {safe_line(response.text)}"
                )
            async for chunk in response.aiter_bytes():
                sys.stdout.buffer.write(chunk)


@admin_app.command()
@run
async def users(password_stdin: PasswordStdin = False) -> None:
    """Accounts with their status, open sessions and stored files."""
    page = await _admin_request("GET", "/users", password_stdin)
    table = Table(
        "user",
        "created",
        "sessions",
        f"stored (of {size_cell(page.get('quota_bytes'))})",
        "admin",
        "disabled",
    )
    for user in page["users"]:
        table.add_row(
            cell(user["username"]),
            when(user["created_at"]),
            str(user["sessions"]),
            size_cell(user.get("stored_bytes")),
            "yes" if user["is_admin"] else "",
            "DISABLED" if user["disabled"] else "",
        )
    console.print(table)


@admin_app.command()
@run
async def disable(username: str, password_stdin: PasswordStdin = False) -> None:
    """Disable an account and end its sessions."""
    answer = await _admin_request("POST", f"/users/{username}/disable", password_stdin)
    show(f"{answer['username']} disabled; {answer['revoked_sessions']} session(s) ended")


@admin_app.command()
@run
async def enable(username: str, password_stdin: PasswordStdin = False) -> None:
    """Enable a disabled account."""
    answer = await _admin_request("POST", f"/users/{username}/enable", password_stdin)
    show(f"{answer['username']} enabled")


@admin_app.command()
@run
async def blocks(password_stdin: PasswordStdin = False) -> None:
    """Addresses blocked by intrusion detection, recent failed logins, and sessions ended
    by refresh-token reuse."""
    view = await _admin_request("GET", "/intrusion", password_stdin)
    table = Table("address", "reason", "since", "until")
    for block in view["blocks"]:
        table.add_row(
            cell(block["address"]), cell(block["reason"]), when(block["since"]), when(block["until"])
        )
    console.print(table)
    console.print(f"{len(view['recent_attempts'])} failed or pending login(s) in the current window")
    reuses = view.get("token_reuse", [])
    if reuses:
        reuse_table = Table("time", "user", "session", "presented from")
        for reuse in reuses:
            reuse_table.add_row(
                when(reuse["at"]), cell(reuse["username"]), cell(reuse["session_id"]), cell(reuse["ip"])
            )
        console.print(reuse_table)
    console.print(f"{len(reuses)} session(s) ended by refresh-token reuse in the last day")


@admin_app.command()
@run
async def unblock(address: str, password_stdin: PasswordStdin = False) -> None:
    """Lift the block on an address."""
    answer = await _admin_request("POST", "/intrusion/unblock", password_stdin, json={"address": address})
    show(f"{answer['address']}: {answer['lifted']} block(s) lifted")


@admin_app.command()
@run
async def audit(password_stdin: PasswordStdin = False) -> None:
    """What administrators did, and what the server recorded itself (as "(server)":
    sessions ended by refresh-token reuse), newest first."""
    page = await _admin_request("GET", "/audit", password_stdin)
    table = Table("time", "admin", "action", "target")
    for entry in page["entries"]:
        table.add_row(when(entry["at"]), cell(entry["admin"]), cell(entry["action"]), cell(entry["target"]))
    console.print(table)
