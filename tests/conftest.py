"""Shared fixtures: settings on a temporary data dir, the app in process, and a real
server process on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from securechat.server.app import create_app
from securechat.server.settings import Settings

POSTGRES_URL = os.environ.get("SECURECHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def throwaway_postgres(prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A new, empty PostgreSQL database for one test, dropped afterwards: (name, URL).

    A database of its own (made through the test server's ``test`` database) rather
    than a wiped ``public`` schema, so that other suites using the same server at the
    same time neither break this run nor are broken by it.
    """
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield name, f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """``throwaway_postgres`` for synchronous (e.g. module-scoped) fixtures: its URL."""
    runner = asyncio.Runner()
    database = throwaway_postgres(prefix)
    try:
        _, url = runner.run(database.__aenter__())
        try:
            yield url
        finally:
            runner.run(database.__aexit__(None, None, None))
    finally:
        runner.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Per-address rate limits would count every test client as one address (127.0.0.1);
# tests of the limits themselves set them back (tests/api/test_rate_limits.py).
GENEROUS_LIMITS = {
    "register_per_minute": 100_000,
    "prelogin_per_minute": 100_000,
    "ws_connects_per_minute": 100_000,
    "messages_per_minute": 100_000,
    "receipts_per_minute": 100_000,
    "lookups_per_minute": 100_000,
    "max_connections_per_address": 100_000,
    "ws_max_per_address": 100_000,
    "upload_mib_per_minute": 100_000,
    "group_changes_per_minute": 100_000,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "server", **GENEROUS_LIMITS)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process (no sockets)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_database(server: LiveServer) -> sqlite3.Connection:
    """The live server's SQLite database, opened as a malicious operator would."""
    connection = sqlite3.connect(server.data_dir / "securechat.db", timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def reinsert_inbox_entry(server: LiveServer, username: str, seq: int) -> None:
    """What a server can do: deliver one of a user's old inbox entries again, at a new position."""
    connection = server_database(server)
    try:
        (user_id, head) = connection.execute(
            "SELECT u.id, (SELECT max(seq) FROM inbox_entries WHERE user_id = u.id) FROM users u WHERE username = ?",
            (username,),
        ).fetchone()
        connection.execute(
            "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, data, created_at)"
            " SELECT user_id, ?, kind, message_pk, data, created_at FROM inbox_entries WHERE user_id = ? AND seq = ?",
            (head + 1, user_id, seq),
        )
    finally:
        connection.close()


def start_server(
    data_dir: Path,
    log_path: Path,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    open_files: tuple[int, int] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> LiveServer:
    """A server process on a free loopback port; ``open_files`` is its (soft, hard)
    open-file limit, ``tls`` its (certificate, key) for HTTPS."""
    port = port or free_port()
    limits = {f"SECURECHAT_{name.upper()}": str(value) for name, value in GENEROUS_LIMITS.items()}
    env = {**os.environ, "SECURECHAT_DATA_DIR": str(data_dir), **limits, **(extra_env or {})}
    set_limit = None
    if open_files is not None:
        import functools
        import resource

        set_limit = functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE, open_files)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "securechat", "serve", "--port", str(port), "--data-dir", str(data_dir)]
            + (["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=set_limit,
        )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                return LiveServer(url, data_dir, log_path, process, env)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "server-data", tmp_path / "server.log")
    yield server
    server.stop()


REDIS_URL = "redis://127.0.0.1:6379/0"


@asynccontextmanager
async def postgres_instances(
    tmp_path: Path, prefix: str, extra_env: dict[str, str] | None = None, *, redis: bool = True
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one throwaway PostgreSQL database, with Redis between
    them on a channel of their own (other runs on the same Redis must not cross in).
    They share a data dir, and so one server secret, as a deployment's instances do."""
    async with throwaway_postgres(prefix) as (name, url):
        env = {"SECURECHAT_DATABASE_URL": url}
        if redis:
            env |= {"SECURECHAT_REDIS_URL": REDIS_URL, "SECURECHAT_REDIS_CHANNEL": f"securechat-test:{name}"}
        env |= extra_env or {}
        data_dir = tmp_path / "shared-data"
        first = start_server(data_dir, tmp_path / "first.log", extra_env=env)
        try:
            second = start_server(data_dir, tmp_path / "second.log", extra_env=env)
        except BaseException:
            first.stop()
            raise
        try:
            yield first, second
        finally:
            first.stop()
            second.stop()
