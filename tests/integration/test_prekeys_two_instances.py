"""v2 bundles on two server instances sharing one PostgreSQL database (PROTOCOL.md
15.16): concurrent claims split across both hand out every one-time prekey exactly
once and then bundles without one, and the count agrees on both; device lists
published at once on both end at the highest version, the others refused as stale; v2
messages stored by both at once take each device's inbox positions without gaps."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..api.conftest import RegisteredUser
from ..api.support import bearer, material, registration_body
from ..api.test_device_inbox import World
from ..api.test_devices import device_list, make_device
from ..conftest import LiveServer, postgres_instances

ONE_TIME_PREKEYS = 50
CLAIMS = 120
V2_ENV = {"SECURECHAT_BUNDLE_CLAIMS_PER_MINUTE": "100000", "SECURECHAT_DEVICE_UPDATES_PER_MINUTE": "100000"}


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_prekeys", V2_ENV) as instances:
        yield instances


@asynccontextmanager
async def clients(
    instances: tuple[LiveServer, LiveServer], **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """An HTTP client for each instance (60 s timeout, ``options`` for both)."""
    first, second = instances
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60, **options) as one,
        httpx.AsyncClient(base_url=second.url, timeout=60, **options) as two,
    ):
        yield one, two


async def register(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    return bearer(response.json()["access_token"])


async def registered(client: httpx.AsyncClient, name: str) -> RegisteredUser:
    response = await client.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    made = material(name)
    return RegisteredUser(response.json(), made.identity, made.auth_key, made.kdf)


async def test_each_one_time_prekey_is_claimed_once_across_instances(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_instances
    async with clients(two_instances, limits=httpx.Limits(max_connections=64)) as (one, two):
        alice, bob, carol = (
            await register(one, "alice"),
            await register(two, "bob"),
            await register(one, "carol"),
        )
        identity = material("alice").identity
        laptop, phone = make_device(identity, "laptop"), make_device(identity, "phone")
        assert (
            await one.put("/api/v1/devices", headers=alice, json=device_list(identity, [laptop, phone], 1))
        ).status_code == 200
        for device in (laptop, phone):
            put = await two.put(
                f"/api/v1/devices/{device.device_id}/signed-prekey",
                headers=alice,
                json=device.signed_prekey(1),
            )
            assert put.status_code == 200, put.text
        uploaded = laptop.one_time_prekeys(range(1, ONE_TIME_PREKEYS + 1))
        stored = await one.post(
            f"/api/v1/devices/{laptop.device_id}/one-time-prekeys", headers=alice, json={"prekeys": uploaded}
        )
        assert stored.json()["remaining"] == ONE_TIME_PREKEYS

        async def claim(number: int) -> dict[str, Any]:
            client = (one, two)[number % 2]
            claimer = (bob, carol)[(number // 2) % 2]
            response = await client.post(
                "/api/v1/users/alice/bundles", headers=claimer, json={"device_ids": [laptop.device_id]}
            )
            assert response.status_code == 200, response.text
            (bundle,) = response.json()["bundles"]
            return bundle  # type: ignore[no-any-return]

        started = time.perf_counter()
        bundles = await asyncio.gather(*(claim(number) for number in range(CLAIMS)))
        elapsed = time.perf_counter() - started
        print(f"{CLAIMS} bundle claims over two instances in {elapsed:.2f} s: {CLAIMS / elapsed:.0f}/s")

        handed = [bundle["one_time_prekey"] for bundle in bundles if bundle["one_time_prekey"] is not None]
        ids = Counter(prekey["prekey_id"] for prekey in handed)
        # Every uploaded one-time prekey exactly once, each as uploaded; the rest null.
        assert sorted(ids) == list(range(1, ONE_TIME_PREKEYS + 1))
        assert set(ids.values()) == {1}
        assert sorted(handed, key=lambda prekey: prekey["prekey_id"]) == uploaded
        assert len(bundles) - len(handed) == CLAIMS - ONE_TIME_PREKEYS
        assert all(bundle["signed_prekey"] == bundles[0]["signed_prekey"] for bundle in bundles)
        for client in (one, two):
            count = await client.get(
                f"/api/v1/devices/{laptop.device_id}/one-time-prekeys/count", headers=alice
            )
            assert count.json() == {"remaining": 0}
        # The phone named in no claim kept its signed prekey and was never touched.
        everyone = (await two.post("/api/v1/users/alice/bundles", headers=bob)).json()["bundles"]
        assert [bundle["device_id"] for bundle in everyone] == sorted([laptop.device_id, phone.device_id])
    for server in (first, second):
        assert "Traceback" not in server.log()


async def test_concurrent_lists_on_two_instances_end_at_the_highest_version(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_instances
    async with clients(two_instances) as (one, two):
        alice = await register(one, "alice")
        identity = material("alice").identity
        laptop = make_device(identity, "laptop")
        phones = [make_device(identity, f"phone-{version}") for version in range(1, 21)]

        async def publish(version: int) -> int:
            client = (one, two)[version % 2]
            document = device_list(identity, [laptop, phones[version - 1]], version)
            response = await client.put("/api/v1/devices", headers=alice, json=document)
            assert response.status_code in (200, 409), response.text
            if response.status_code == 409:
                assert response.json()["error"]["code"] == "device_list_stale"
            return response.status_code

        statuses = await asyncio.gather(*(publish(version) for version in range(1, 21)))
        assert 200 in statuses
        stored = (await two.get("/api/v1/users/alice/devices", headers=alice)).json()
        assert stored["version"] == 20
        # Exactly the devices of version 20 are listed: no phone of a losing list stayed.
        for device in [laptop, *phones]:
            count = await one.get(f"/api/v1/devices/{device.device_id}/one-time-prekeys/count", headers=alice)
            assert count.status_code == (200 if device in (laptop, phones[19]) else 404), device.name
    for server in (first, second):
        assert "Traceback" not in server.log()


async def test_concurrent_v2_messages_on_two_instances_take_distinct_positions(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    """Each target device's inbox positions stay 1, 2, 3, ... without gaps or repeats
    when messages to it are stored by both instances at once."""
    first, second = two_instances
    messages = 40
    async with clients(two_instances) as (one, two):
        world = World(one, await registered(one, "alice"), await registered(two, "bob"))
        await world.setup()
        await world.session_with(world.phone)
        await world.session_with(world.bob_phone)
        envelopes = [world.seal(f"message {number}") for number in range(messages)]

        async def send(number: int) -> None:
            client = (one, two)[number % 2]
            response = await client.post(
                "/api/v1/v2/messages", headers=world.alice.headers, json={"envelope": envelopes[number]}
            )
            assert response.status_code == 201, response.text

        await asyncio.gather(*(send(number) for number in range(messages)))
        for device in (world.bob_phone, world.phone):
            world.http = two  # the credential is got, and used, on the other instance
            inbox = (
                await two.get(
                    f"/api/v1/devices/{device.device_id}/inbox",
                    params={"limit": 100},
                    headers=await world.headers_of(device),
                )
            ).json()
            assert [entry["seq"] for entry in inbox["entries"]] == list(range(1, messages + 1))
            assert inbox["head"] == messages
            ids = sorted(entry["envelope"]["message_id"] for entry in inbox["entries"])
            assert ids == sorted(envelope["message_id"] for envelope in envelopes)
    for server in (first, second):
        assert "Traceback" not in server.log()
