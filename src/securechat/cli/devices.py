"""Device commands (protocol v2, PROTOCOL.md 15.3): this account's devices, giving this
home a device of its own, and revoking one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..client.v2.client import now_ms
from ..client.v2.link import Linker, LinkFailed, own_link_code
from .formatting import safe_line
from .main import PasswordStdin, console, errors, run, show, unlocked, when

devices_app = typer.Typer(
    help="Your account's devices (protocol v2): list them, add this one, revoke one, link one to your history.",
    invoke_without_command=True,
)


@devices_app.callback()
@run
async def devices(ctx: typer.Context, password_stdin: PasswordStdin = False) -> None:
    """List this account's devices (ids and when they were made); this one is marked."""
    if ctx.invoked_subcommand is not None:
        return
    async with await unlocked(password_stdin) as client:
        entries = await client.v2.devices()
        if not entries:
            show("no devices yet: run `securechat devices add` to give this one a device")
            return
        table = Table("device", "created", "")
        for entry in entries:
            table.add_row(entry.device_id, when(entry.created_at), "this device" if entry.this_device else "")
        console.print(table)


@devices_app.command("add")
@run
async def add(password_stdin: PasswordStdin = False) -> None:
    """Give this home a device of its own and list it (protocol v2 with contacts who have one)."""
    async with await unlocked(password_stdin) as client:
        device_id = await client.enable_v2()
        show(f"this device: {device_id}")


@devices_app.command("revoke")
@run
async def revoke(
    device_id: Annotated[str, typer.Argument(help="The id shown by `securechat devices`.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Sign and publish a new device list without DEVICE_ID: it receives nothing more."""
    async with await unlocked(password_stdin) as client:
        await client.v2.revoke(device_id)
        show(f"revoked {safe_line(device_id)}")


@devices_app.command("link-code")
@run
async def link_code(password_stdin: PasswordStdin = False) -> None:
    """Show this device's link code, to type on an old device that hands over its history."""
    async with await unlocked(password_stdin) as client:
        await client.enable_v2()
        code = own_link_code(client.v2, now_ms())
    show(f"link code of this device: {code}")
    show("on a device that has your history: securechat devices link " + code)
    show("this device accepts a hand-over for the next hour")


@devices_app.command("link")
@run
async def link(
    code: Annotated[str, typer.Argument(help="The link code the new device shows (`devices link-code`).")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Hand this home's history, end-to-end encrypted, to the device showing CODE."""
    async with await unlocked(password_stdin) as client:
        try:
            linked = await Linker(client.v2).link(code)
        except LinkFailed as exc:
            errors.print(f"error: {exc}", style="red", markup=False, highlight=False)
            raise typer.Exit(1) from None
    show(
        f"history handed to device {linked.device_id}: {linked.messages} messages ({linked.size} bytes sealed)"
    )
