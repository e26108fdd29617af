"""`securechat group ...`: groups whose membership is a signed chain every client checks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..client.core import invite_code
from ..client.errors import ApiError, ClientError, GroupUnverifiable, KeyChanged
from .formatting import safe_line
from .main import PasswordStdin, console, run, show, show_key_change, unlocked, when

group_app = typer.Typer(
    help="Groups: create, invite, join, members, add, remove, leave.", no_args_is_help=True
)
Group = Annotated[
    str, typer.Argument(help="The group's id, or its name on this device ('#' and the name works too).")
]


@group_app.command()
@run
async def create(
    name: str,
    members: Annotated[list[str], typer.Argument(help="Usernames to add at once.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a group with NAME (encrypted: only members see it) and add MEMBERS."""
    async with await unlocked(password_stdin) as client:
        try:
            group_id = await client.groups.create(name, members)
        except KeyChanged as exc:
            show_key_change(client, exc)
            raise typer.Exit(3) from None
        show(f"created group {name!r} with {', '.join(sorted(members))}: {group_id}")


@group_app.command("list")
@run
async def list_groups(password_stdin: PasswordStdin = False) -> None:
    """The groups on this device, after fetching news."""
    async with await unlocked(password_stdin) as client:
        await client.sync_inbox()
        table = Table("name", "id", "members", "status")
        for record in client.groups.all():
            try:
                state = await client.groups.local_state(record["group_id"])
                count = f"{len(state.members)} members" if state else "?"
            except GroupUnverifiable:
                count = "UNVERIFIABLE"
            # The name is an admin's text; a table cell is Rich markup.
            name = safe_line(record["name"], markup=True) if record.get("name") else "(no name yet)"
            table.add_row(
                name,
                safe_line(record["group_id"], markup=True),
                count,
                safe_line(record["status"], markup=True),
            )
        console.print(table, soft_wrap=True)


@group_app.command()
@run
async def members(group: Group, password_stdin: PasswordStdin = False) -> None:
    """The verified members and admins, and whether the server's list agrees."""
    async with await unlocked(password_stdin) as client:
        await client.sync_inbox()
        group_id = client.groups.resolve(group)
        state = await client.groups.refresh(group_id)
        for name in sorted(state.members):
            show(f"{name}{' (admin)' if name in state.admins else ''}")
        changes = state.seq + 1
        show(f"verified chain: {changes} change{'' if changes == 1 else 's'}, last at {when(state.at)}")
        server = await client.groups.server_members(group_id)
        extra, missing = server - state.members, set(state.members) - server
        if not extra and not missing:
            console.print("the server's list matches the signed membership")
        if extra:
            # The server's list: its names are the server's word.
            show(
                f"WARNING: the server lists members not in the signed membership: {', '.join(sorted(extra))}"
            )
        if missing:
            show(f"WARNING: the server leaves out members: {', '.join(sorted(missing))}")


def _change(action: str, help_text: str) -> None:
    @group_app.command(action, help=help_text)
    @run
    async def command(
        group: Group,
        users: Annotated[list[str], typer.Argument(help="Usernames.")],
        password_stdin: PasswordStdin = False,
    ) -> None:
        async with await unlocked(password_stdin) as client:
            group_id = client.groups.resolve(group)
            try:
                state = await client.groups.change(group_id, action, users)
            except KeyChanged as exc:
                show_key_change(client, exc)
                raise typer.Exit(3) from None
            show(f"{action}: done; members now {', '.join(sorted(state.members))}")


_change("add", "Add USERS to the group (admins only).")
_change("remove", "Remove USERS from the group (admins only).")
_change("promote", "Make members admins (admins only).")


@group_app.command()
@run
async def leave(group: Group, password_stdin: PasswordStdin = False) -> None:
    """Leave the group."""
    async with await unlocked(password_stdin) as client:
        group_id = client.groups.resolve(group)
        await client.groups.change(group_id, "leave")
        show(f"left {group_id}")


@group_app.command()
@run
async def invite(
    group: Group,
    hours: Annotated[float, typer.Option(help="How long the code works.")] = 24.0,
    uses: Annotated[int, typer.Option(help="How many people may join with it.")] = 1,
    password_stdin: PasswordStdin = False,
) -> None:
    """Make an invite code (admins only): whoever enters it joins, within its time and uses."""
    async with await unlocked(password_stdin) as client:
        group_id = client.groups.resolve(group)
        made = await client.groups.make_invite(group_id, hours=hours, uses=uses)
        show(f"valid until {when(made.expires_at)} for {made.max_uses} use(s); code: {invite_code(made)}")


@group_app.command()
@run
async def join(code: str, password_stdin: PasswordStdin = False) -> None:
    """Join a group with an invite code."""
    async with await unlocked(password_stdin) as client:
        try:
            group_id = await client.groups.join(code)
        except ApiError as exc:
            if exc.status == 404:
                raise ClientError("that invite code is unknown, expired or used up") from None
            raise
        show(f"joined group {group_id}; its name arrives from an admin")
