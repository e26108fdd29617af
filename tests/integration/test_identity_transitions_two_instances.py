"""Identity-key rotation on two server instances sharing one PostgreSQL database
(PROTOCOL.md 15.11, 15.16): rotations from one key and device-list publications sent at
once to both instances store exactly one rotation per key, never answer 500, and after
every round the stored list verifies under the stored key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.protocol.encoding import b64decode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import check_device_list
from securechat.protocol.v2.primitives import ed25519_raw_public

from ..api.test_devices import account_seed, device_list, make_device
from ..api.test_identity_transitions import PATH, list_under, new_seed, transition
from ..conftest import LiveServer, postgres_instances
from .test_prekeys_two_instances import V2_ENV, clients, register, registered

ROUNDS = 4
RACERS = 4


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_rotation", V2_ENV) as instances:
        yield instances


async def test_concurrent_rotations_and_lists_across_instances(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    async with clients(two_instances) as (one, two):
        alice = await registered(one, "alice")
        bob = await register(two, "bob")
        laptop, phone = make_device(alice.identity, "laptop"), make_device(alice.identity, "phone")
        put = await one.put(
            "/api/v1/devices", headers=alice.headers, json=device_list(alice.identity, [laptop], 1)
        )
        assert put.status_code == 200, put.text
        current, version = account_seed(alice.identity), 1
        for round_ in range(ROUNDS):
            candidates = [new_seed("alice", round_ * 100 + n) for n in range(RACERS)]
            rotations = [
                (one if n % 2 else two).post(
                    PATH,
                    headers=alice.headers,
                    json={
                        "transition": transition(current, seed, alice, 1000 + round_),
                        "device_list": list_under(seed, alice, [laptop], version + 1),
                    },
                )
                for n, seed in enumerate(candidates)
            ]
            # Lists under the key that is current before the round, with higher versions.
            publications = [
                (two if n % 2 else one).put(
                    "/api/v1/devices",
                    headers=alice.headers,
                    json=list_under(current, alice, [laptop, phone], version + 2 + n),
                )
                for n in range(RACERS)
            ]
            answers = await asyncio.gather(*rotations, *publications)
            statuses = [answer.status_code for answer in answers]
            assert all(status in (200, 400, 409) for status in statuses), [a.text for a in answers]
            won = [n for n, answer in enumerate(answers[:RACERS]) if answer.status_code == 200]
            assert len(won) <= 1, statuses
            served = (await one.get("/api/v1/users/alice/devices", headers=bob)).json()
            since = ed25519_raw_public(account_seed(alice.identity))
            key_now = (
                await two.get(
                    "/api/v1/users/alice/identity-transitions", params={"since_key": since.hex()}, headers=bob
                )
            ).json()["current_key"]
            check_device_list(served, Username("alice"), b64decode(key_now), None)
            if won:
                current = candidates[won[0]]
                assert b64decode(key_now) == ed25519_raw_public(current)
            version = int(served["version"])
        chain = (
            await one.get(
                "/api/v1/users/alice/identity-transitions",
                params={"since_key": ed25519_raw_public(account_seed(alice.identity)).hex()},
                headers=bob,
            )
        ).json()["transitions"]
        assert [step["at"] for step in chain] == sorted(step["at"] for step in chain)
        assert len(chain) >= 1
