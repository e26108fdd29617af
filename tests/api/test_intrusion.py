"""Intrusion detection on login: the fifth failure in the window blocks the address,
the block expires and grows for repeat offenders, survives a restart, is checked before
any password hashing, and fifty parallel attempts get at most five password checks; an
account under a distributed attack still lets its owner in."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from securechat.server.app import create_app
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .support import client_from, material, registration_body

WRONG_KEY = "A" * 43 + "="


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "server", ids_block_seconds=2, **GENEROUS_LIMITS)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def login(client: httpx.AsyncClient, name: str, key: str, **headers: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": name, "auth_key": key}, headers=headers)


def count_verifications(app: FastAPI) -> Callable[[], int]:
    """Wrap the password hasher so the test can count password checks."""
    hasher = app.state.context.hasher
    original = hasher.verify
    calls = 0

    async def counting(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        result: bool = await original(*args, **kwargs)
        return result

    hasher.verify = counting
    return lambda: calls


async def register(app: FastAPI, name: str) -> str:
    async with client_from(app, "192.0.2.250") as client:
        response = await client.post("/api/v1/auth/register", json=registration_body(name))
        assert response.status_code == 201, response.text
    return material(name).auth_key


def assert_blocked(response: httpx.Response) -> int:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "access_blocked"
    assert response.json()["error"]["message"] == "access blocked due to suspicious activity"
    return int(response.headers["retry-after"])


async def test_fifth_failure_blocks_the_address_until_it_expires(app: FastAPI) -> None:
    key = await register(app, "alice")
    checks = count_verifications(app)
    async with client_from(app, "198.51.100.7") as attacker, client_from(app, "203.0.113.9") as owner:
        for _ in range(5):
            assert (await login(attacker, "alice", WRONG_KEY)).status_code == 401
        assert checks() == 5
        # Blocked now, even with the right key, and before any password check.
        retry = assert_blocked(await login(attacker, "alice", key))
        assert 1 <= retry <= 2
        assert checks() == 5
        assert_blocked(await attacker.post("/api/v1/auth/prelogin", json={"username": "alice"}))
        # Another address is not affected.
        assert (await login(owner, "alice", key)).status_code == 200
        # The block expires.
        await asyncio.sleep(retry + 0.2)
        assert (await login(attacker, "alice", key)).status_code == 200


async def test_repeat_offenders_get_longer_blocks(app: FastAPI) -> None:
    await register(app, "alice")
    async with client_from(app, "198.51.100.8") as attacker:
        retries = []
        for _round in range(2):
            for _ in range(5):
                assert (await login(attacker, "alice", WRONG_KEY)).status_code == 401
            response = await login(attacker, "alice", WRONG_KEY)
            retries.append(assert_blocked(response))
            await asyncio.sleep(response.json()["error"]["retry_after_ms"] / 1000 + 0.2)
        assert retries[0] <= 2 < retries[1] <= 4


async def test_block_survives_a_restart(settings: Settings) -> None:
    async with running(settings) as app:
        await register(app, "alice")
        async with client_from(app, "198.51.100.9") as attacker:
            for _ in range(5):
                await login(attacker, "alice", WRONG_KEY)
    async with running(settings) as app, client_from(app, "198.51.100.9") as attacker:
        assert_blocked(await login(attacker, "alice", material("alice").auth_key))


async def test_fifty_parallel_bad_logins_get_at_most_five_password_checks(app: FastAPI) -> None:
    await register(app, "alice")
    checks = count_verifications(app)
    async with client_from(app, "198.51.100.10") as attacker:
        responses = await asyncio.gather(*(login(attacker, "alice", WRONG_KEY) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert checks() <= 5
    assert statuses.count(401) == checks()
    assert statuses.count(403) == 50 - checks()


async def test_spoofed_forwarded_for_neither_escapes_a_block_nor_blocks_someone_else(app: FastAPI) -> None:
    key = await register(app, "alice")
    async with client_from(app, "198.51.100.11") as attacker, client_from(app, "203.0.113.20") as victim:
        for _ in range(5):
            # Blaming the victim's address: the server has no trusted proxy, so the header is ignored.
            await login(attacker, "alice", WRONG_KEY, **{"X-Forwarded-For": "203.0.113.20"})
        assert_blocked(await login(attacker, "alice", key, **{"X-Forwarded-For": "192.0.2.1"}))
        assert (await login(victim, "alice", key)).status_code == 200


async def test_distributed_guessing_slows_the_account_but_its_owner_gets_in(app: FastAPI) -> None:
    key = await register(app, "alice")
    # Ten addresses, two wrong guesses each: no address reaches its own limit.
    addresses = [f"198.51.100.{100 + n}" for n in range(10)]
    for address in addresses[:5]:
        async with client_from(app, address) as attacker:
            for _ in range(2):
                assert (await login(attacker, "alice", WRONG_KEY)).status_code == 401
    # The account has had ten failures: addresses that already tried it are refused.
    async with client_from(app, addresses[0]) as attacker:
        response = await login(attacker, "alice", WRONG_KEY)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) > 0
    # The owner, from an address with no failures, logs in.
    async with client_from(app, "203.0.113.30") as owner:
        assert (await login(owner, "alice", key)).status_code == 200


async def test_postgres_counts_parallel_attempts_atomically(postgres_settings: Settings) -> None:
    async with running(postgres_settings) as app:
        await register(app, "alice")
        checks = count_verifications(app)
        async with client_from(app, "198.51.100.12") as attacker:
            responses = await asyncio.gather(*(login(attacker, "alice", WRONG_KEY) for _ in range(30)))
        assert checks() <= 5
        assert sorted(r.status_code for r in responses).count(403) == 30 - checks()


async def test_unknown_user_and_wrong_password_take_about_as_long(app: FastAPI) -> None:
    """Enumeration by timing: a missing user costs a dummy password check, so both
    failures do the same work. Medians of interleaved attempts from many addresses (so
    intrusion detection does not step in); the bound is loose, for a shared machine."""
    await register(app, "alice")
    known: list[float] = []
    unknown: list[float] = []
    for n in range(16):
        async with client_from(app, f"198.18.{n // 200}.{n % 200 + 1}") as client:
            for name, samples in (("alice", known), ("nobody-here", unknown)):
                started = time.perf_counter()
                response = await login(client, name, WRONG_KEY)
                samples.append(time.perf_counter() - started)
                assert response.status_code == 401
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (statistics.median(known), statistics.median(unknown))
