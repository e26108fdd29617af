"""``python -m securechat``: the same as the ``securechat`` command."""

from securechat.cli.main import app

app()
