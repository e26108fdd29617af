"""The address intrusion detection counts is the socket's, unless a trusted proxy
(SECURECHAT_FORWARDED_ALLOW_IPS) forwards the client's: checked on a real uvicorn."""

from __future__ import annotations

from pathlib import Path

import httpx

from ..api.support import material, registration_body
from ..conftest import start_server

WRONG_KEY = "A" * 43 + "="


def attempt(url: str, key: str, forwarded_for: str) -> int:
    response = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"username": "alice", "auth_key": key},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    return response.status_code


def test_forwarded_for_is_ignored_without_a_trusted_proxy(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log")
    try:
        assert (
            httpx.post(f"{server.url}/api/v1/auth/register", json=registration_body("alice")).status_code
            == 201
        )
        for n in range(5):
            assert attempt(server.url, WRONG_KEY, f"203.0.113.{n}") == 401
        # Every attempt came from 127.0.0.1, whatever the header said: that address is blocked.
        assert attempt(server.url, material("alice").auth_key, "198.51.100.1") == 403
    finally:
        server.stop()


def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    )
    try:
        assert (
            httpx.post(f"{server.url}/api/v1/auth/register", json=registration_body("alice")).status_code
            == 201
        )
        for _ in range(5):
            assert attempt(server.url, WRONG_KEY, "203.0.113.50") == 401
        assert attempt(server.url, material("alice").auth_key, "203.0.113.50") == 403
        # Another client behind the same proxy is not blocked.
        assert attempt(server.url, material("alice").auth_key, "203.0.113.51") == 200
    finally:
        server.stop()
