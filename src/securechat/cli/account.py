"""Account commands: register, log in and out, sessions, the password, storage usage,
and rotating the identity key (``securechat account rotate-identity``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.table import Table

from ..client.core.v2.session_devices import session_device
from ..client.errors import ClientError
from ..client.messenger import Messenger
from ..client.passwords import PASSWORD_RULES
from ..client.v2.client import DeviceEntry
from ..client.v2.rotation import ED25519_SPKI_PREFIX
from ..protocol.keys import fingerprint
from .formatting import human_size, safe_line
from .main import PasswordStdin, app, console, messenger, read_password, run, show, signed_in, unlocked, when

# A device id as the signed list has it (PROTOCOL.md 15.3).
DEVICE_ID = re.compile(r"[0-9a-f]{32}")

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
        str | None,
        typer.Option(
            "--device",
            metavar="DEVICE_ID",
            help=(
                "With --revoke: also revoke the device this listing shows for that session (a new "
                "signed device list without it). Refused unless the server still names that device "
                "for the session, it is in your signed list, and it is not this home's device."
            ),
        ),
    ] = None,
    revoke_others: Annotated[
        bool, typer.Option("--revoke-others", help="Log out every other session.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """List your sessions (with the device that proved itself in each), or revoke them.

    The device column is the server's word: --device DEVICE_ID revokes only the device
    you read on that session's row, only if the server names that same one when asked
    again, only a device of your account's signed list, never this home's, and asks for
    your password to sign.
    """
    if device is not None and not revoke:
        raise typer.BadParameter("--device needs --revoke SESSION_ID", param_hint="--device")
    if device is not None and not DEVICE_ID.fullmatch(device):
        # Also catches a forgotten value, where the next option would be taken as one.
        raise typer.BadParameter(
            "a device id is 32 lowercase hex characters, as the listing's device column shows",
            param_hint="--device",
        )
    async with await (
        unlocked(password_stdin) if device is not None else signed_in(password_stdin)
    ) as client:
        await client.ensure_token()
        if revoke and device is not None:
            revoked = await revoke_session_device(client, revoke, device)
            show(
                f"revoked device {revoked.device_id} (created {when(revoked.created_at)}) "
                f"and ended session {revoke}"
            )
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


async def revoke_session_device(client: Messenger, session_id: str, device_id: str) -> DeviceEntry:
    """Revoke ``device_id``, which the user read on session ``session_id``'s row, then end
    the session; return the device's entry in the verified list.

    The server's word on a session's device is a hint (PROTOCOL.md 15.16), so the device is
    the user's, not the server's answer now: it is revoked only if the server still names
    that same device for the session (a server cannot swap it after the listing), it is not
    this home's own device (compared with this home's record, not the server's ``current``
    flag), and the account's signed list, as this client verifies it, has it. Nothing
    happens if any check fails."""
    own = client.v2.device()
    own_id = own.device_id if own is not None else None
    if own_id == device_id:
        raise ClientError(f"{device_id} is this home's own device: revoke it from another device")
    found: list[dict[str, Any]] = [s for s in await client.session.sessions() if s.get("id") == session_id]
    if not found:
        raise ClientError(f"no session {session_id}")
    session = found[0]
    if session.get("current"):
        raise ClientError("that is this session: end it with `securechat logout`")
    named = session.get("device_id")
    if named != device_id:
        now = f"names device {named}" if isinstance(named, str) else "names no device"
        raise ClientError(
            f"the server now {now} for session {session_id}, not {device_id}: nothing revoked "
            "(list the sessions again, and revoke the session alone if in doubt)"
        )
    entries = {entry.device_id: entry for entry in await client.v2.devices()}
    # The server's word, trusted as far as the verified list and this home's record go.
    decided = session_device(named, False, entries, own_id)
    if decided.kind == "none":
        raise ClientError(f"no device {device_id} in your device list: nothing revoked")
    if decided.kind == "this_device":
        raise ClientError(f"{device_id} is this home's own device: revoke it from another device")
    entry = entries[device_id]
    await client.v2.revoke(device_id)
    await client.session.revoke_session(session_id)
    return entry


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
