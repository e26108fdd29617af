"""Serve the browser client: ``/`` is the app's page, ``/static/`` its modules and CSS.

The files are the package's own (``securechat/web``); nothing is generated at request
time, so what a user runs is what the repository holds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(str(resources.files("securechat") / "web"))
COMMON_PASSWORDS = Path(str(resources.files("securechat") / "client" / "data" / "common-passwords.txt"))


def install_web_client(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"cache-control": "no-cache"})

    # The browser checks new passwords against the same list as the terminal client.
    @app.get("/static/common-passwords.txt", include_in_schema=False)
    async def common_passwords() -> PlainTextResponse:
        return PlainTextResponse(COMMON_PASSWORDS.read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
