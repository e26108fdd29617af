"""Device commands (protocol v2, PROTOCOL.md 15.3): this account's devices, giving this
home a device of its own, and revoking one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .formatting import safe_line
from .main import PasswordStdin, console, run, show, unlocked, when

devices_app = typer.Typer(
    help="Your account's devices (protocol v2): list them, add this one, revoke one.",
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
