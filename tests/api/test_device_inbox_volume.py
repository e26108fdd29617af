"""A device inbox with more waiting entries than PostgreSQL takes query parameters
(32,767): revoking the device and acknowledging everything must still work, or a flood
of messages to a lost device would stop its owner from revoking it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS, throwaway_postgres
from .test_device_inbox import World, stored_messages
from .test_devices import V2_LIMITS, device_list, make_device, publish

WAITING = 33_000


@pytest.fixture
async def settings(tmp_path: Any) -> AsyncIterator[Settings]:
    async with throwaway_postgres("securechat_inbox_volume") as (_, url):
        yield Settings(data_dir=tmp_path / "server", database_url=url, **GENEROUS_LIMITS, **V2_LIMITS)


@pytest.fixture
async def world(http: Any, register_user: Any) -> World:
    made = World(http, await register_user("alice"), await register_user("bob"))
    await made.setup()
    return made


async def flood(app: FastAPI, world: World, device_id: str) -> None:
    """WAITING entries for bob's device, as a flood of direct messages would leave them."""
    async with app.state.context.database.write() as conn:
        ids = {
            row.username: row.id
            for row in await conn.execute(
                text("SELECT id, username FROM users WHERE username IN ('alice', 'bob')")
            )
        }
        await conn.execute(
            text(
                "INSERT INTO v2_messages (message_id, conversation_id, sender_id, envelope_sha256, envelope, server_ts)"
                " SELECT 'flood-' || g, 'c', :alice, '\\x00'::bytea, '{}', 0 FROM generate_series(1, :n) g"
            ),
            {"alice": ids["alice"], "n": WAITING},
        )
        await conn.execute(
            text(
                "INSERT INTO device_inbox (user_id, device_id, seq, message_pk, slot, created_at)"
                " SELECT :bob, :device, m.id, m.id, '{}', 0 FROM v2_messages m"
            ),
            {"bob": ids["bob"], "device": device_id},
        )


async def test_a_flooded_device_can_still_be_revoked(world: World, app: FastAPI) -> None:
    await flood(app, world, world.bob_phone.device_id)
    tablet = make_device(world.bob.identity, "tablet")
    response = await publish(world.http, world.bob, device_list(world.bob.identity, [tablet], 2))
    assert response.status_code == 200, response.text
    assert await stored_messages(app) == 0


async def test_a_flooded_inbox_can_be_acknowledged_at_once(world: World, app: FastAPI) -> None:
    await flood(app, world, world.bob_phone.device_id)
    response = await world.ack(world.bob_phone, 2**62)
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] == WAITING
    assert await stored_messages(app) == 0
