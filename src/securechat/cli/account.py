"""Account commands: register, log in and out, sessions, the password, storage usage,
and rotating the identity key (``securechat account rotate-identity``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ..client.errors import ClientError
from ..client.messenger import Messenger
from ..client.passwords import PASSWORD_RULES
from ..client.v2.rotation import ED25519_SPKI_PREFIX
from ..protocol.keys import fingerprint
from .formatting import human_size, safe_line
from .main import PasswordStdin, app, console, messenger, read_password, run, show, signed_in, unlocked, when

NEW_DEVICE_HISTORY = (
    "This home is a new device of your account: protocol v2 messages sent before now stay on your "
    "other devices. To bring them here, run `securechat devices link-code` here and type the code "
    "on one of them (`securechat devices link CODE`, or Devices in the browser)."
)

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
            await client.enable_v2()
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
            revoked = await client.start_v2()
        console.print(f"Logged in as [bold]{safe_line(client.username, markup=True)}[/bold]")
        if revoked is not None:
            show(str(revoked))
        elif await client.other_devices():
            # A new device opens v2 messages from now on only (PROTOCOL.md 15.10).
            show(NEW_DEVICE_HISTORY)


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
    device: Annotated[
        bool,
        typer.Option(
            "--device",
            help="With --revoke: also revoke that session's device (a new signed device list without it).",
        ),
    ] = False,
    revoke_others: Annotated[
        bool, typer.Option("--revoke-others", help="Log out every other session.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """List your sessions (with the device that proved itself in each), or revoke them.

    The device column is the server's word: --device revokes only a device of your
    account's signed list, never this session's, and asks for your password to sign.
    """
    if device and not revoke:
        raise typer.BadParameter("--device needs --revoke SESSION_ID", param_hint="--device")
    async with await (unlocked(password_stdin) if device else signed_in(password_stdin)) as client:
        await client.ensure_token()
        if revoke and device:
            revoked_device = await revoke_session_device(client, revoke)
            show(f"revoked device {revoked_device} and ended session {revoke}")
        elif revoke:
            await client.session.revoke_session(revoke)
            show(f"Revoked {revoke}")
        if revoke_others:
            show(f"Revoked {await client.session.revoke_other_sessions()} other session(s)")
        table = Table("id", "created", "last seen", "client", "device", "")
        for session in await client.session.sessions():
            # The server's data, and each client's own user agent: cells are markup.
            table.add_row(
                safe_line(session["id"], markup=True),
                when(session["created_at"]),
                when(session["last_seen_at"]),
                safe_line(session["user_agent"], markup=True),
                safe_line(session.get("device_id") or "-", markup=True),
                "this device" if session["current"] else "",
            )
        console.print(table)


async def revoke_session_device(client: Messenger, session_id: str) -> str:
    """Revoke the device the server names on another session (signing a new list without
    it, which refuses a device the signed list does not have), then end the session;
    return the device's id. Nothing happens if any check fails."""
    found: list[dict[str, Any]] = [s for s in await client.session.sessions() if s.get("id") == session_id]
    if not found:
        raise ClientError(f"no session {session_id}")
    session = found[0]
    if session.get("current"):
        raise ClientError("that is this session: end it with `securechat logout`")
    device_id = session.get("device_id")
    if not isinstance(device_id, str):
        raise ClientError(f"no device has proved itself in session {session_id}: revoke the session alone")
    own = client.v2.device()
    if own is not None and own.device_id == device_id:
        raise ClientError("that session names this device: revoke it from another device")
    await client.v2.revoke(device_id)
    await client.session.revoke_session(session_id)
    return device_id


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
