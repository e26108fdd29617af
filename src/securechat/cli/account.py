"""Account commands: register, log in and out, sessions, the password, storage usage,
and rotating the identity key (``securechat account rotate-identity``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..client.passwords import PASSWORD_RULES
from ..client.v2.rotation import ED25519_SPKI_PREFIX
from ..protocol.keys import fingerprint
from .formatting import human_size, safe_line
from .main import PasswordStdin, app, console, messenger, read_password, run, show, signed_in, unlocked, when

account_app = typer.Typer(help="Your account's identity key (protocol v2).", no_args_is_help=True)
app.add_typer(account_app, name="account")


@app.command()
@run
async def register(username: str, password_stdin: PasswordStdin = False) -> None:
    """Create an account; keys are made here and sealed with your password."""
    if not password_stdin:
        console.print(f"Password rules: {PASSWORD_RULES}", markup=False)
    password = read_password(password_stdin, confirm=True)
    async with messenger() as client:
        with console.status("Deriving keys and generating key pairs..."):
            await client.register(username, password)
        name, server = safe_line(client.username, markup=True), safe_line(client.server_url, markup=True)
        console.print(f"Registered [bold]{name}[/bold] on {server}")


@app.command()
@run
async def login(username: str, password_stdin: PasswordStdin = False) -> None:
    """Log in on this device."""
    password = read_password(password_stdin)
    async with messenger() as client:
        with console.status("Deriving keys..."):
            await client.login(username, password)
        console.print(f"Logged in as [bold]{safe_line(client.username, markup=True)}[/bold]")


@app.command()
@run
async def logout(password_stdin: PasswordStdin = False) -> None:
    """End this device's session."""
    async with await signed_in(password_stdin) as client:
        await client.logout()
        console.print("Logged out")


@app.command()
@run
async def sessions(
    revoke: Annotated[str | None, typer.Option(help="Revoke the session with this id.")] = None,
    revoke_others: Annotated[
        bool, typer.Option("--revoke-others", help="Log out every other session.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """List your sessions, or revoke them."""
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        if revoke:
            await client.session.revoke_session(revoke)
            show(f"Revoked {revoke}")
        if revoke_others:
            show(f"Revoked {await client.session.revoke_other_sessions()} other session(s)")
        table = Table("id", "created", "last seen", "client", "")
        for session in await client.session.sessions():
            # The server's data, and each client's own user agent: cells are markup.
            table.add_row(
                safe_line(session["id"], markup=True),
                when(session["created_at"]),
                when(session["last_seen_at"]),
                safe_line(session["user_agent"], markup=True),
                "this device" if session["current"] else "",
            )
        console.print(table)


@app.command()
@run
async def usage(password_stdin: PasswordStdin = False) -> None:
    """Your files' storage on the server, against your quota."""
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        answer = await client.api.usage()
    stored, quota = answer["stored_bytes"], answer["quota_bytes"]
    files, pending = answer["files"], answer["pending_uploads"]
    share = f" ({100 * stored // quota}%)" if quota > 0 else ""
    show(f"Files stored: {human_size(stored)} of {human_size(quota)}{share}")
    show(
        f"{files} file{'' if files == 1 else 's'}, "
        f"{pending} upload{'' if pending == 1 else 's'} in progress "
        "(an upload counts in full from its start)"
    )


@app.command()
@run
async def passwd(password_stdin: PasswordStdin = False) -> None:
    """Change your password (re-seals your keys here; other sessions are logged out).

    With --password-stdin, the first line is the current password, the second the new one.
    """
    async with messenger() as client:
        current = read_password(password_stdin, "Current password: ")
        new = read_password(password_stdin, "New password: ", confirm=not password_stdin)
        revoked = await client.change_password(current, new)
        show(f"Password changed; {revoked} other session(s) logged out")


@account_app.command("rotate-identity")
@run
async def rotate_identity(password_stdin: PasswordStdin = False) -> None:
    """Replace your account's identity key (protocol v2, PROTOCOL.md 15.11).

    The old key signs the hand-over to a new one; every device of your list is certified
    again under it. Contacts follow the signed change (their verified mark for you is
    cleared); your other devices load the new key at their next unlock or login.
    """
    async with await unlocked(password_stdin) as client:
        with console.status("Rotating the identity key..."):
            done = await client.v2.rotate_identity()
        old, new = (fingerprint(ED25519_SPKI_PREFIX + key) for key in (done.old_key, done.new_key))
        show(f"Identity key rotated: {old} -> {new}")
        show(
            f"{done.devices} device(s) certified again under the new key (device list version {done.version}). "
            "Contacts see a notice and must compare the safety number with you again."
        )
