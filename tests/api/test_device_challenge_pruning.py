"""Device challenges (PROTOCOL.md 15.16) do not pile up: the scheduled pruner removes
expired ones and those of sessions that have ended, whichever account they belong to,
and leaves the live challenges of live sessions answerable.

A request drops only its own account's expired challenges, so without the pruner the
rows of an account that stops asking (or of a revoked session) stayed forever."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from securechat.server.services import pruning
from securechat.server.storage.tables import device_challenges

from .device_auth_support import answer, challenge, sign
from .support import bearer
from .test_device_auth import Login, world_context
from .test_device_auth import settings as settings  # the v2 limits
from .test_device_auth import world as world  # the fixture
from .test_device_inbox import World


async def rows(made: World) -> int:
    async with world_context(made).database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(device_challenges))).scalar_one())


async def session_of(made: World, headers: dict[str, str]) -> str:
    sid: str = (await made.http.get("/api/v1/account", headers=headers)).json()["session_id"]
    return sid


async def ask(made: World, headers: dict[str, str], times: int) -> list[str]:
    nonces = []
    for _ in range(times):
        asked = await challenge(made.http, headers, made.phone.device_id)
        assert asked.status_code == 200, asked.text
        nonces.append(asked.json()["nonce"])
    return nonces


async def prune_at(made: World, monkeypatch: pytest.MonkeyPatch, at: int) -> dict[str, int]:
    monkeypatch.setattr(pruning, "now_ms", lambda: at)
    ctx = world_context(made)
    return await pruning.prune(ctx.database, ctx.settings)


async def test_expired_challenges_of_accounts_that_stopped_asking_are_pruned(
    world: World, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [bearer((await login("alice", world.alice.auth_key))["access_token"]) for _ in range(3)]
    for headers in sessions:
        await ask(world, headers, 8)
    assert await rows(world) == 24
    # A day later, nobody has asked again: the scheduled round removes them all.
    pruned = await prune_at(world, monkeypatch, int(time.time() * 1000) + 86_400_000)
    assert pruned["device_challenges"] == 24
    assert await rows(world) == 0


async def test_a_revoked_sessions_challenges_go_and_a_live_sessions_stay_answerable(
    world: World, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = bearer((await login("alice", world.alice.auth_key))["access_token"])
    live = bearer((await login("alice", world.alice.auth_key))["access_token"])
    await ask(world, ended, 5)
    [kept] = await ask(world, live, 1)
    gone = await session_of(world, ended)
    revoked = await world.http.delete(f"/api/v1/sessions/{gone}", headers=world.alice.headers)
    assert revoked.status_code == 204
    # Well within the challenges' minute: only the ended session's rows are dead.
    pruned = await prune_at(world, monkeypatch, int(time.time() * 1000))
    assert pruned["device_challenges"] == 5
    assert await rows(world) == 1
    got = await answer(world.http, live, world.phone.device_id, kept, sign(world.phone, kept))
    assert got.status_code == 200, got.text


async def test_pruning_with_nothing_dead_removes_nothing(
    world: World, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer((await login("alice", world.alice.auth_key))["access_token"])
    await ask(world, headers, 3)
    before = await rows(world)
    pruned = await prune_at(world, monkeypatch, int(time.time() * 1000))
    assert pruned["device_challenges"] == 0
    assert await rows(world) == before >= 3
