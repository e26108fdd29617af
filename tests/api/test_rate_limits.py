"""Per-address limits on registration, pre-login and WebSocket connects: 429 with
Retry-After once the minute's budget is spent; other addresses are unaffected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from securechat.server.app import create_app
from securechat.server.settings import Settings

from .support import client_from, registration_body


@pytest.fixture
async def limited_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(data_dir=tmp_path / "server", register_per_minute=3, prelogin_per_minute=5)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_registration_is_limited_per_address(limited_app: FastAPI) -> None:
    async with (
        client_from(limited_app, "198.51.100.1") as spammer,
        client_from(limited_app, "203.0.113.1") as other,
    ):
        for n in range(3):
            response = await spammer.post("/api/v1/auth/register", json=registration_body(f"user{n}"))
            assert response.status_code == 201, response.text
        assert_rate_limited(await spammer.post("/api/v1/auth/register", json=registration_body("user3")))
        assert (await other.post("/api/v1/auth/register", json=registration_body("user4"))).status_code == 201
        # Nothing was stored for the refused attempt.
        assert (await other.post("/api/v1/auth/prelogin", json={"username": "user3"})).status_code == 200
        refused_then = await other.post("/api/v1/auth/register", json=registration_body("user3"))
        assert refused_then.status_code == 201


async def test_prelogin_is_limited_per_address(limited_app: FastAPI) -> None:
    async with (
        client_from(limited_app, "198.51.100.2") as scanner,
        client_from(limited_app, "203.0.113.2") as other,
    ):
        for n in range(5):
            assert (
                await scanner.post("/api/v1/auth/prelogin", json={"username": f"probe{n}"})
            ).status_code == 200
        assert_rate_limited(await scanner.post("/api/v1/auth/prelogin", json={"username": "probe5"}))
        assert (await other.post("/api/v1/auth/prelogin", json={"username": "probe5"})).status_code == 200


async def test_messages_over_http_are_limited_per_account(tmp_path: Path) -> None:
    from .conftest import registrar
    from .support import identity_for, seal

    settings = Settings(data_dir=tmp_path / "server", messages_per_minute=3)
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        client_from(application, "198.51.100.7") as http,
    ):
        register = registrar(http)
        alice, bob, carol = await register("alice"), await register("bob"), await register("carol")
        members = [identity_for("alice"), identity_for("bob")]
        for _ in range(3):
            response = await http.post(
                "/api/v1/messages", headers=alice.headers, json={"envelope": seal(members[0], members)}
            )
            assert response.status_code == 201, response.text
        response = await http.post(
            "/api/v1/messages", headers=alice.headers, json={"envelope": seal(members[0], members)}
        )
        assert_rate_limited(response)
        assert "account" in response.json()["error"]["message"]
        # Another account from the same address is not affected.
        other = [identity_for("carol"), identity_for("bob")]
        response = await http.post(
            "/api/v1/messages", headers=carol.headers, json={"envelope": seal(other[0], other)}
        )
        assert response.status_code == 201, response.text
        del bob
