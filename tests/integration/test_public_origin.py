"""With a public origin configured (SECURECHAT_PUBLIC_ORIGIN), the inbox WebSocket's
Origin must be that origin (or one of SECURECHAT_ALLOWED_ORIGINS), whatever the Host
header says. Without it, a page on any site whose name resolves to the server (DNS
rebinding, or a proxy that passes Host through) could open sockets: its Origin matches
the Host its own requests carry."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import websockets
from websockets.typing import Origin

from ..conftest import LiveServer, start_server

PUBLIC = "https://chat.example.org"


async def handshake(server: LiveServer, *, origin: str, host: str) -> int:
    """Open the inbox socket with these Origin and Host headers, on the server's port:
    101 if it opened, else the HTTP status of the refusal."""
    port = urlsplit(server.url).port
    assert port is not None
    connection = socket.create_connection(("127.0.0.1", port))
    try:
        async with websockets.connect(f"ws://{host}/api/v1/ws", sock=connection, origin=Origin(origin)):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code
    finally:
        connection.close()


async def test_the_configured_public_origin_is_the_one_accepted(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data",
        tmp_path / "server.log",
        extra_env={
            # Written as an operator might: upper case, the default port, a slash.
            "SECURECHAT_PUBLIC_ORIGIN": "HTTPS://Chat.Example.org:443/",
            "SECURECHAT_ALLOWED_ORIGINS": "https://app.example.net",
        },
    )
    own = urlsplit(server.url).netloc
    try:
        # Origin and Host agree, but name another site: refused.
        assert await handshake(server, origin="http://evil.example", host="evil.example") == 403
        # The server's own address is not its public origin either.
        assert await handshake(server, origin=server.url, host=own) == 403
        # The public origin is accepted whatever Host says, and so is an allowed one.
        assert await handshake(server, origin=PUBLIC, host=own) == 101
        assert await handshake(server, origin=PUBLIC, host="evil.example") == 101
        assert await handshake(server, origin="https://app.example.net", host=own) == 101
    finally:
        server.stop()


async def test_without_a_public_origin_the_host_header_names_the_own_origin(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "server.log")
    own = urlsplit(server.url).netloc
    try:
        assert await handshake(server, origin=server.url, host=own) == 101
        assert await handshake(server, origin="http://evil.example", host=own) == 403
    finally:
        server.stop()


def test_a_public_origin_that_is_not_an_origin_stops_the_server_at_start(tmp_path: Path) -> None:
    try:
        server = start_server(
            tmp_path / "data",
            tmp_path / "server.log",
            extra_env={"SECURECHAT_PUBLIC_ORIGIN": "https://chat.example.org/app"},
        )
    except RuntimeError as exited:
        assert "public_origin" in str(exited)
    else:
        server.stop()
        pytest.fail("the server started with a public origin that has a path")
