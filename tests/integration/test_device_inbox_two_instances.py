"""Device inboxes on two server instances sharing one PostgreSQL database (PROTOCOL.md
15.16): a device credential got through one instance's challenge is issued by the other
and good on both, its nonce once only; and sends racing list publications on the other
instance never store an envelope for a list that was already replaced, so the versions
the envelopes name never go down along a device's positions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..api.device_auth_support import DEVICE_TOKEN_HEADER, answer, challenge, sign
from ..api.test_device_inbox import World
from ..api.test_devices import device_list
from ..conftest import LiveServer, postgres_instances
from .test_prekeys_two_instances import V2_ENV, clients, registered

SENDERS = 12
VERSIONS = 8


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_device_inbox", V2_ENV) as instances:
        yield instances


async def make_world(one: httpx.AsyncClient, two: httpx.AsyncClient) -> World:
    world = World(one, await registered(one, "alice"), await registered(two, "bob"))
    await world.setup()
    await world.session_with(world.phone)
    await world.session_with(world.bob_phone)
    return world


async def test_a_challenge_from_one_instance_is_answered_on_the_other_once(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    async with clients(two_instances) as (one, two):
        world = await make_world(one, two)
        headers, phone = world.bob.headers, world.bob_phone
        nonce = (await challenge(one, headers, phone.device_id)).json()["nonce"]
        got = await answer(two, headers, phone.device_id, nonce, sign(phone, nonce))
        assert got.status_code == 200, got.text
        again = await answer(one, headers, phone.device_id, nonce, sign(phone, nonce))
        assert again.status_code == 401 and again.json()["error"]["reason"] == "challenge_invalid"
        credential = {**headers, DEVICE_TOKEN_HEADER: got.json()["device_token"]}
        for client in (one, two):
            page = await client.get(f"/api/v1/devices/{phone.device_id}/inbox", headers=credential)
            assert page.status_code == 200, page.text


async def test_sends_racing_list_publications_never_store_for_a_replaced_list(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_instances
    async with clients(two_instances) as (one, two):
        world = await make_world(one, two)
        known = {"bob": 1}
        stored: list[int] = []

        async def sender(number: int) -> None:
            client = (one, two)[number % 2]
            for _ in range(VERSIONS * 2):
                version = known["bob"]
                envelope = world.seal(
                    f"message {number}", [("alice", 1, [world.phone]), ("bob", version, [world.bob_phone])]
                )
                response = await client.post(
                    "/api/v1/v2/messages", headers=world.alice.headers, json={"envelope": envelope}
                )
                if response.status_code == 201:
                    stored.append(version)
                    return
                body: dict[str, Any] = response.json()["error"]
                assert (response.status_code, body["code"]) == (409, "device_list_stale"), body
                known["bob"] = max(known["bob"], body["versions"].get("bob", version))

        async def publisher() -> None:
            # The same device each time, a higher version: only the version tells them apart.
            for version in range(2, VERSIONS + 1):
                listed = device_list(world.bob.identity, [world.bob_phone], version)
                response = await two.put("/api/v1/devices", headers=world.bob.headers, json=listed)
                assert response.status_code == 200, response.text

        await asyncio.gather(publisher(), *(sender(number) for number in range(SENDERS)))
        world.http = two
        page = (
            await two.get(
                f"/api/v1/devices/{world.bob_phone.device_id}/inbox",
                params={"limit": 500},
                headers=await world.headers_of(world.bob_phone),
            )
        ).json()
        named = [
            next(t["device_list_version"] for t in e["envelope"]["targets"] if t["username"] == "bob")
            for e in page["entries"]
        ]
        assert sorted(named) == sorted(stored)
        # Stored in the order the lists were: never one for version v after one for v + 1.
        assert named == sorted(named), named
    for server in (first, second):
        assert "Traceback" not in server.log()
