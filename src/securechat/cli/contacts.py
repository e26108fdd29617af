"""Contact commands: pinned keys, fingerprints, safety numbers, key changes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..client.errors import ClientError, KeyChanged
from ..protocol.keys import fingerprint, format_safety_number, safety_number
from .formatting import safe_line
from .main import PasswordStdin, app, console, run, short_fp, show, show_key_change, signed_in


@app.command()
@run
async def contacts(password_stdin: PasswordStdin = False) -> None:
    """List contacts with their pinned key fingerprints and verification state."""
    async with await signed_in(password_stdin) as client:
        table = Table("contact", "signing key", "state")
        for contact in client.contacts.all():
            state = "verified" if contact.verified else "pinned (not verified)"
            if contact.pending_identity is not None:
                state = "KEYS CHANGED: not accepted"
            table.add_row(
                safe_line(contact.username, markup=True), short_fp(contact.identity["signing_key"]), state
            )
        console.print(table)


@app.command(name="fingerprint")
@run
async def fingerprint_command(user: str, password_stdin: PasswordStdin = False) -> None:
    """Show a user's key fingerprints as pinned here and as the server publishes them."""
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        current = await client.contacts.fetch_identity(user)
        pinned = client.pinned_identity(current.username)
        for kind in ("signing_key", "encryption_key"):
            now_fp = fingerprint(getattr(current, kind))
            console.print(f"{kind}: {now_fp}")
            if pinned is not None and getattr(pinned, kind) != getattr(current, kind):
                pinned_fp = fingerprint(getattr(pinned, kind))
                console.print(f"  [red]differs from the pinned key[/red] {pinned_fp}")
        if pinned is None:
            console.print("(not pinned yet: it will be pinned on first message)")


@app.command()
@run
async def verify(
    user: str,
    mark_verified: Annotated[
        bool, typer.Option("--mark-verified", help="Record that you compared the number.")
    ] = False,
    accept_change: Annotated[
        bool, typer.Option("--accept-change", help="Accept the contact's new keys.")
    ] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Show the safety number for you and USER; compare it with them in person."""
    async with await signed_in(password_stdin) as client:
        await client.ensure_token()
        if accept_change:
            if client.accept_key_change(user):
                show(f"Accepted the new keys of {user}. Verify the new safety number with them.")
            else:
                show(f"No pending key change for {user}.")
        else:
            try:
                await client.trusted_identity(user)
            except KeyChanged as exc:
                show_key_change(client, exc)
        # With the account key a followed rotation pinned (15.11), if it moved.
        mine = client.v2.directory.pins.safety_identity(client.username)
        theirs = client.v2.directory.pins.safety_identity(user)
        if mine is None or theirs is None:
            raise ClientError(f"no pinned keys for {user}")
        show(f"Safety number with {theirs.username}:")
        console.print(format_safety_number(safety_number(mine, theirs)))
        if mark_verified:
            client.contacts.mark_verified(theirs.username)
            show(f"{theirs.username} marked as verified.")
