"""Connection caps hold across instances (issue 13, item 7).

With the caps counted per process, N instances let one account hold N x 20 sockets and
one address N x 128. With Redis configured they are counted there, across the
deployment: two instances on one database and Redis, an account capped at 3 and an
address at 5, and the sockets are spread over both. Counts only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from websockets.typing import Origin

from securechat.client.messenger import Messenger

from ..conftest import LiveServer, postgres_instances
from .conftest import PASSWORDS

PER_USER = 3
PER_ADDRESS = 5


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    env = {"SECURECHAT_WS_MAX_PER_USER": str(PER_USER), "SECURECHAT_WS_MAX_PER_ADDRESS": str(PER_ADDRESS)}
    async with postgres_instances(tmp_path, "securechat_shared_caps", env) as instances:
        yield instances


async def _open(
    client: Messenger, *, auth: bool = True
) -> tuple[websockets.ClientConnection, dict[str, object]]:
    """A socket to the client's instance; with ``auth``, its first answer."""
    socket = await websockets.connect(client.api.websocket_url(), origin=Origin(client.api.origin()))
    if not auth:
        return socket, {}
    await socket.send(json.dumps({"type": "auth", "token": client.api.access_token, "since": 0}))
    frame: dict[str, object] = json.loads(await asyncio.wait_for(socket.recv(), 20))
    return socket, frame


async def _refused(socket: websockets.ClientConnection, frame: dict[str, object]) -> bool:
    if frame.get("code") != "too_many_connections":
        return False
    await socket.wait_closed()
    return socket.close_code == 4429


async def test_an_account_holds_its_socket_cap_across_instances_not_per_instance(
    two_instances, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    on_first = Messenger(tmp_path / "alice-1", first.url)
    on_second = Messenger(tmp_path / "alice-2", second.url)
    sockets: list[websockets.ClientConnection] = []
    try:
        await on_first.register("alice", PASSWORDS["alice"])
        await on_second.login("alice", PASSWORDS["alice"])
        await on_first.ensure_token()
        await on_second.ensure_token()
        for client in (on_first, on_first, on_second):
            socket, frame = await _open(client)
            sockets.append(socket)
            assert frame["type"] == "ready", frame
        # The account holds 3 in all: a fourth is refused on either instance.
        for client in (on_second, on_first):
            socket, frame = await _open(client)
            assert await _refused(socket, frame), frame
        # One closed on the first instance frees a slot for the second.
        await sockets.pop(0).close()

        async def accepted_on_second() -> bool:
            socket, frame = await _open(on_second)
            if frame["type"] == "ready":
                sockets.append(socket)
                return True
            await socket.close()
            return False

        async with asyncio.timeout(30):
            while not await accepted_on_second():
                await asyncio.sleep(0.2)
        socket, frame = await _open(on_first)
        assert await _refused(socket, frame), frame
    finally:
        for socket in sockets:
            await socket.close()
        await on_first.close()
        await on_second.close()


async def test_an_address_holds_its_socket_cap_across_instances(two_instances, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    clients = [Messenger(tmp_path / "bob-1", first.url), Messenger(tmp_path / "bob-2", second.url)]
    sockets: list[websockets.ClientConnection] = []
    try:
        await clients[0].register("bob", PASSWORDS["bob"])
        await clients[1].login("bob", PASSWORDS["bob"])
        await clients[1].ensure_token()
        # Sockets that never authenticate count too: 3 on the first, 2 on the second.
        for client in [clients[0]] * 3 + [clients[1]] * 2:
            socket, _ = await _open(client, auth=False)
            sockets.append(socket)
        # The address (127.0.0.1) holds 5 in all: the sixth is refused, before any auth.
        socket = await websockets.connect(
            clients[1].api.websocket_url(), origin=Origin(clients[1].api.origin())
        )
        frame = json.loads(await asyncio.wait_for(socket.recv(), 20))
        assert await _refused(socket, frame), frame
    finally:
        for socket in sockets:
            await socket.close()
        for client in clients:
            await client.close()
