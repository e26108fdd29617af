"""The whole ``securechat`` command: the main commands, the account and contact commands,
and the ``admin`` and ``group`` groups, which import helpers from ``main`` (so they are
joined here, not there)."""

from __future__ import annotations

from . import account, contacts  # noqa: F401  (their commands join ``app`` on import)
from .admin import admin_app
from .backup import backup_app
from .devices import devices_app
from .group import group_app
from .main import app

app.add_typer(admin_app, name="admin")
app.add_typer(group_app, name="group")
app.add_typer(backup_app, name="backup")
app.add_typer(devices_app, name="devices")

__all__ = ["app"]
