"""Fixtures for the API tests: registered users on the in-process app, a count of
stored users, and a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI

from securechat.protocol.kdf import KdfParams
from securechat.protocol.keys import PrivateIdentity
from securechat.server.settings import Settings
from securechat.server.storage import accounts as account_store

from ..conftest import GENEROUS_LIMITS, throwaway_postgres
from .support import bearer, material, registration_body


class RegisteredUser(NamedTuple):
    tokens: dict[str, Any]
    identity: PrivateIdentity
    auth_key: str
    kdf: KdfParams

    @property
    def name(self) -> str:
        return str(self.identity.username)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens["access_token"])


RegisterUser = Callable[[str], Awaitable[RegisteredUser]]


def registrar(client: httpx.AsyncClient) -> RegisterUser:
    """Register ``name`` (with its session-wide keys) through ``client``; return its tokens."""

    async def register(name: str) -> RegisteredUser:
        response = await client.post("/api/v1/auth/register", json=registration_body(name))
        assert response.status_code == 201, response.text
        mat = material(name)
        return RegisteredUser(response.json(), mat.identity, mat.auth_key, mat.kdf)

    return register


@pytest.fixture
def register_user(http: httpx.AsyncClient) -> RegisterUser:
    """Factory: ``await register_user("alice")`` -> (tokens, identity, auth_key, kdf)."""
    return registrar(http)


@pytest.fixture
def login(http: httpx.AsyncClient) -> Callable[[str, str], Awaitable[dict[str, Any]]]:
    """Factory: log ``name`` in with a base64 auth key; a new session each call."""

    async def log_in(name: str, auth_key: str) -> dict[str, Any]:
        response = await http.post("/api/v1/auth/login", json={"username": name, "auth_key": auth_key})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return log_in


@pytest.fixture
def count_users(app: FastAPI) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        async with app.state.context.database.read() as conn:
            return await account_store.count_users(conn)

    return count


@pytest.fixture
async def postgres_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings on a new, empty PostgreSQL database, dropped afterwards."""
    async with throwaway_postgres("securechat_api") as (_, url):
        yield Settings(data_dir=tmp_path / "server", database_url=url, **GENEROUS_LIMITS)
