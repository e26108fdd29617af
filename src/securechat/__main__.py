"""``python -m securechat``: the same as the ``securechat`` command."""

from securechat.cli.entry import app

app()
