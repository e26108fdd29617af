"""Live notice of new v2 device-inbox entries (PROTOCOL.md 15.16): when an envelope is
stored on one instance, sockets of every target account on the other instance get a
``device_inbox`` frame per new entry naming the device and its position, and never
any part of the envelope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Origin

from ..api.conftest import RegisteredUser
from ..api.support import material, registration_body
from ..api.test_device_inbox import World
from ..conftest import LiveServer, postgres_instances

V2_ENV = {"SECURECHAT_BUNDLE_CLAIMS_PER_MINUTE": "100000", "SECURECHAT_DEVICE_UPDATES_PER_MINUTE": "100000"}


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_v2_notice", V2_ENV) as instances:
        yield instances


async def registered(client: httpx.AsyncClient, name: str) -> RegisteredUser:
    response = await client.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    made = material(name)
    return RegisteredUser(response.json(), made.identity, made.auth_key, made.kdf)


async def socket_for(server: LiveServer, user: RegisteredUser) -> websockets.ClientConnection:
    url = "ws://" + server.url.removeprefix("http://") + "/api/v1/ws"
    socket = await websockets.connect(url, origin=Origin(server.url))
    await socket.send(json.dumps({"type": "auth", "token": user.tokens["access_token"], "since": 0}))
    assert json.loads(await socket.recv())["type"] == "ready"
    return socket


async def notices(socket: websockets.ClientConnection, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if frame["type"] == "device_inbox":
            found.append(frame)
    return found


async def test_stored_entries_are_announced_on_every_instance_without_the_envelope(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_instances
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        world = World(http, await registered(http, "alice"), await registered(http, "bob"))
        await world.setup()
        await world.session_with(world.phone)
        await world.session_with(world.bob_phone)
        bob_socket = await socket_for(second, world.bob)
        alice_socket = await socket_for(second, world.alice)
        try:
            for n in (1, 2):
                wire = world.seal(f"secret number {n}")
                assert (await world.send(wire)).status_code in (200, 201)
                (to_bob,) = await notices(bob_socket, 1)
                (to_alice,) = await notices(alice_socket, 1)
                assert to_bob == {"type": "device_inbox", "device_id": world.bob_phone.device_id, "seq": n}
                assert to_alice == {"type": "device_inbox", "device_id": world.phone.device_id, "seq": n}
            # A retry stores nothing new and announces nothing.
            assert (await world.send(wire)).status_code in (200, 201)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(notices(bob_socket, 1), 1.5)
            entry = (await world.inbox(world.bob_phone, 1))["entries"][0]
            assert entry["seq"] == 2
        finally:
            await bob_socket.close()
            await alice_socket.close()
