"""The ``securechat`` command: the server, and a terminal client over the client library."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..client.errors import ClientError, FileCorrupt, KeyChanged
from ..client.messenger import InboxItem, Messenger
from ..client.reason_texts import explain
from ..protocol.errors import ProtocolError
from ..protocol.keys import fingerprint
from . import help_format  # noqa: F401  (corrects Typer's help output on import)
from .config import ClientSettings
from .formatting import human_size, login_notice, message_rows, message_text, safe_line

app = typer.Typer(
    help="SecureChat: end-to-end encrypted messaging.", no_args_is_help=True, add_completion=False
)
# No emoji codes: a ':name:' in someone's text is printed as written, not as a picture.
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)

P = ParamSpec("P")
T = TypeVar("T")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def run(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Run an async command; print client errors plainly and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))  # type: ignore[arg-type]
        except (ClientError, ProtocolError) as exc:
            # The message may carry the server's words, or names from elsewhere.
            show(f"error: {exc}", to=errors, style="red")
            raise typer.Exit(1) from None

    return wrapper


def messenger() -> Messenger:
    settings = ClientSettings()
    return Messenger(
        settings.home,
        settings.server,
        read_receipts=settings.read_receipts,
        typing_indicators=settings.typing_indicators,
    )


def print_rows(rows: Iterable[str], *, to: Console = console, style: str | None = None) -> None:
    """Print rows made safe already (see ``message_rows``): never as markup, and never
    wrapped by Rich, which would start a row with whatever word is at the break."""
    for row in rows:
        to.print(row, style=style, markup=False, highlight=False, soft_wrap=True)


def terminal_width(output: Console) -> int | None:
    """The width to wrap rows at: the terminal's, or None when the output is not one."""
    return output.width if output.is_terminal else None


def show(line: str, text: str = "", *, to: Console = console, style: str | None = None) -> None:
    """Print ``line``, which holds text from elsewhere, escaped on one row (see
    ``safe_line``), then the lines of ``text`` behind a gutter; wrapped here at the
    terminal's width, so that nothing foreign can begin a row of its own."""
    print_rows(message_rows(line, text, width=terminal_width(to)), to=to, style=style)


def read_password(from_stdin: bool, prompt: str = "Password: ", confirm: bool = False) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\n").rstrip("\r")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat password: ") != password:
        errors.print("error: the passwords differ")
        raise typer.Exit(1)
    return password


def when(ms: object) -> str:
    """A time in milliseconds as local time; "-" for none, "?" for what is not a time
    (the server's data: a malicious server must not crash the command)."""
    if ms is None or ms == 0:
        return "-"
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "?"
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the SQLite database and secrets live.")] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://...")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain: serve HTTPS and WSS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for --tls-cert.")] = None,
) -> None:
    """Start the server (SQLite in the data dir unless --database-url is given)."""
    from .serve import run_server

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    run_server(
        host=host, port=port, data_dir=data_dir, database_url=database_url, tls_cert=tls_cert, tls_key=tls_key
    )


async def signed_in(password_stdin: bool) -> Messenger:
    """A client on this home's session; with ``--password-stdin`` also unlocked with the
    password read there, as every command accepts (the commands that need no keys do not
    ask for it otherwise)."""
    return await unlocked(True) if password_stdin else messenger()


async def unlocked(password_stdin: bool) -> Messenger:
    client = messenger()
    try:
        _ = client.username
        password = read_password(password_stdin)
        await client.unlock(password)
        revoked = await client.start_v2()
    except BaseException:
        await client.close()
        raise
    if revoked is not None:
        show(revoked, to=errors)
    client.v2_off = revoked
    return client


@app.command()
@run
async def send(user: str, text: str, password_stdin: PasswordStdin = False) -> None:
    """Send an encrypted message to USER, or to a group: its id, or '#' and its name.

    A username is always the user, even if a group here has that name. Quote a group's
    name in the shell, or '#' starts a comment: securechat send '#team' "hello"
    """
    async with await unlocked(password_stdin) as client:
        # Fetch news first: groups this device has not heard of yet, membership changes.
        await client.sync_inbox()
        try:
            result = await client.send_text(user, text)
        except KeyChanged as exc:
            show_key_change(client, exc)
            raise typer.Exit(3) from None
        note_group_of_that_name(client, user)
        for notice in result.get("notices", []):
            show(f"-- {notice['text']}")
        # A v2 message has no position in the account's inbox (it has one per device).
        position = f" (seq {result['seq']})" if "seq" in result else " (v2)"
        show(f"sent {result['message_id']}{position} at {when(result['server_ts'])}")


def note_group_of_that_name(client: Messenger, user: str) -> None:
    """Say so when what went to the user USER could have been meant for a group here."""
    if client.group_target(user) is None and client.groups.named(user):
        show(f"note: this went to the user {user}; the group named {user!r} is written '#{user}'", to=errors)


def show_key_change(client: Messenger, exc: KeyChanged) -> None:
    show(f"The keys of {exc.username} have changed.", to=errors, style="bold red")
    for kind in ("signing_key", "encryption_key"):
        errors.print(f"  {kind}: pinned {short_fp(exc.pinned[kind])} -> now {short_fp(exc.current[kind])}")
    show(f"Compare safety numbers, then run: securechat verify {exc.username} --accept-change", to=errors)


def short_fp(b64_spki: str) -> str:
    import base64

    return fingerprint(base64.b64decode(b64_spki))[:19]


def item_rows(item: InboxItem | dict[str, Any], *, width: int | None = None) -> list[str]:
    """A message as terminal rows: when and from whom, then its text (see ``message_rows``).

    The sender is escaped on the first row: for an unverifiable message it is only the
    server's word. The reason a message is unverifiable stays on that row too.
    """
    data = item.to_json() if isinstance(item, InboxItem) else item
    mark = "✓" if data.get("verified") else "⚠ UNVERIFIABLE"
    if data.get("status") in ("delivered", "read"):
        mark += f" ✓✓ {data['status']}"
    if data.get("verified"):
        text = message_text(data.get("text"), data.get("file"))
    else:
        text = f"({safe_line(explain(data.get('reason')))})"
    return message_rows(
        f"[{when(data.get('sent_at'))}] {data.get('sender')}: ", f"{text}  {mark}", width=width
    )


def transfer_progress(description: str) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )


@app.command("send-file")
@run
async def send_file(
    user: str,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, resolve_path=True)],
    caption: Annotated[str | None, typer.Option("--caption", "-m", help="Text sent with the file.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Encrypt a file on this device, upload it, and share it with USER or a group.

    A group is written as its id, or '#' and its name (quoted in the shell: '#team').
    """
    async with await unlocked(password_stdin) as client:
        await client.sync_inbox()
        with transfer_progress("upload") as bar:
            # A task's description is Rich markup.
            task = bar.add_task(
                f"encrypting and sending {safe_line(path.name, markup=True)}", total=path.stat().st_size
            )
            try:
                result = await client.send_file(
                    user,
                    path,
                    caption=caption,
                    progress=lambda done, _total: bar.update(task, completed=done),
                )
            except KeyChanged as exc:
                show_key_change(client, exc)
                raise typer.Exit(3) from None
        note_group_of_that_name(client, user)
        show(f"sent {path.name} ({human_size(result['size'])}) as file {result['file_id']}")


@app.command("get-file")
@run
async def get_file(
    file_id: str,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="A directory (default: here) or a new file's path.")
    ] = Path("."),
    password_stdin: PasswordStdin = False,
) -> None:
    """Download a file shared with you, decrypt it and check its SHA-256."""
    async with await unlocked(password_stdin) as client:
        await client.sync_inbox()
        with transfer_progress("download") as bar:
            task = bar.add_task("downloading and decrypting", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                saved = await client.get_file(file_id, output, progress=advance)
            except FileCorrupt as exc:
                # The message names the file: the sender's text.
                show(f"The file is corrupt or incomplete: {exc}", to=errors, style="bold red")
                errors.print("Nothing was saved.")
                raise typer.Exit(4) from None
        show(f"saved {saved} (SHA-256 checked)")


@app.command()
@run
async def inbox(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
    include_sent: Annotated[bool, typer.Option("--all", help="Include messages you sent.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Fetch new messages, then list the messages on this device."""
    async with await unlocked(password_stdin) as client:
        fresh = await client.sync_inbox()
        revoked_said = client.v2_off
        me = client.username
        for item in fresh:
            if item.kind == "session":
                # To stderr: stdout has the messages (and with --json, only them).
                show(login_notice(item.session_id, item.text, when(item.sent_at)), to=errors)
            elif item.kind == "notice" and item.text and item.text != revoked_said:
                show(item.text, to=errors)
        for row in client.stored_messages():
            if row["sender"] == me and row["verified"] and not include_sent:
                continue
            record = {
                "message_id": row["message_id"],
                "conversation_id": row["conversation_id"],
                "sender": row["sender"],
                "peer": row["peer"],
                "text": row["text"] if row["verified"] else None,
                "sent_at": row["sent_at"],
                "server_ts": row["server_ts"],
                "received_at": row["received_at"],
                "verified": bool(row["verified"]),
                "reason": row["reason"],
                "status": row["status"],
                "seq": row["seq"],
                "file": row.get("file"),
            }
            if json_output:
                # ASCII only: JSON escapes C0 controls, but not DEL, C1 controls (CSI is
                # one) or bidi overrides; and a lone surrogate could not even be written.
                sys.stdout.write(json.dumps(record) + "\n")
            else:
                print_rows(item_rows(record, width=terminal_width(console)))
        # What was shown for the first time is now read (unless read receipts are off).
        unread: dict[str, list[str]] = {}
        for item in fresh:
            if item.kind == "message" and item.verified and item.sender != me and item.message_id:
                unread.setdefault(str(item.conversation_id), []).append(item.message_id)
        for conversation_id, message_ids in unread.items():
            with contextlib.suppress(ClientError):
                await client.mark_read(conversation_id, message_ids)


@app.command()
@run
async def chat(user: str, password_stdin: PasswordStdin = False) -> None:
    """Interactive chat with USER or a group (its id, or '#' and its name, quoted in the
    shell: '#team'): messages appear while you type. Ctrl-D quits."""
    from .chat import run_chat

    async with await unlocked(password_stdin) as client:
        await run_chat(client, user, await client.sync_inbox())
