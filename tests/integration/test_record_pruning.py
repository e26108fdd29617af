"""Rate-limit events, login attempts and blocks are pruned on a schedule by every running
server, so the tables hold what the limits still read, not one row per address ever
seen. Thousands of expired records for as many addresses are written straight into the
database of real server processes (SQLite; PostgreSQL with two instances pruning at once),
beside live ones made through the API; the tables shrink to the live records alone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

from securechat.server.storage.database import Database
from securechat.server.storage.tables import auth_attempts, blocks, rate_events

from ..conftest import LiveServer, postgres_database, start_server

EXPIRED = 5_000
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Defaults for the windows (a minute for rate limits, five minutes for login failures, a
# day for repeat blocks); a short prune interval and small batches, so that several
# batches run.
PRUNING = {
    "SECURECHAT_PRUNE_INTERVAL_SECONDS": "0.2",
    "SECURECHAT_PRUNE_BATCH_ROWS": "700",
    "SECURECHAT_PRELOGIN_PER_MINUTE": "1000",
}


def now_ms() -> int:
    return int(time.time() * 1000)


async def fill(database: Database) -> None:
    """Expired records for EXPIRED addresses, and live ones the limits still read."""
    now = now_ms()
    addresses = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(EXPIRED)]
    async with database.write() as conn:
        await conn.execute(
            insert(rate_events),
            [
                {"action": "prelogin", "subject": ip, "at": now - 2 * MINUTE_MS - n}
                for n, ip in enumerate(addresses)
            ],
        )
        await conn.execute(
            insert(auth_attempts),
            [
                {"ip": ip, "username": "alice", "at": now - HOUR_MS - n, "outcome": "failed"}
                for n, ip in enumerate(addresses)
            ],
        )
        await conn.execute(
            insert(blocks),
            [
                {
                    "scope": "ip",
                    "subject": ip,
                    "reason": "failed_logins",
                    "created_at": now - 2 * DAY_MS - n,
                    "until": now - 2 * DAY_MS + 300_000,
                }
                for n, ip in enumerate(addresses[:1000])
            ],
        )
        # Live: an active block, and an expired one that still counts as a strike.
        await conn.execute(
            insert(blocks),
            [
                {
                    "scope": "ip",
                    "subject": "192.0.2.1",
                    "reason": "failed_logins",
                    "created_at": now,
                    "until": now + HOUR_MS,
                },
                {
                    "scope": "ip",
                    "subject": "192.0.2.2",
                    "reason": "failed_logins",
                    "created_at": now - HOUR_MS,
                    "until": now - HOUR_MS + 300_000,
                },
            ],
        )


async def counts(database: Database) -> dict[str, int]:
    async with database.read() as conn:
        return {
            table.name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for table in (rate_events, auth_attempts, blocks)
        }


def make_live_records(server: LiveServer) -> None:
    """Through the API: three pre-logins (rate events) and two failed logins (attempts)."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for _ in range(3):
            assert http.post("/api/v1/auth/prelogin", json={"username": "alice"}).status_code == 200
        for _ in range(2):
            response = http.post("/api/v1/auth/login", json={"username": "alice", "auth_key": "A" * 43 + "="})
            assert response.status_code == 401, response.text


LIVE = {"rate_events": 3, "auth_attempts": 2, "blocks": 2}


async def run(database: Database, servers: list[LiveServer]) -> None:
    await fill(database)
    make_live_records(servers[0])
    # Pruning runs in the background on its own schedule: poll the tables.
    found = await counts(database)
    deadline = time.monotonic() + 60
    while found != LIVE and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await counts(database)
    assert found == LIVE
    for server in servers:
        log = server.log()
        assert "Traceback" not in log, log[-3000:]
        assert " ERROR " not in log, log[-3000:]


async def test_sqlite_records_are_pruned(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "server.log", extra_env=PRUNING)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'securechat.db'}")
    try:
        await run(database, [server])
    finally:
        await database.dispose()
        server.stop()


def test_postgresql_records_are_pruned_by_two_instances_at_once(tmp_path: Path) -> None:
    with postgres_database("securechat_pruning") as url:
        env = {**PRUNING, "SECURECHAT_DATABASE_URL": url}
        servers = [
            start_server(tmp_path / "data", tmp_path / f"server{n}.log", extra_env=env) for n in range(2)
        ]
        database = Database("postgresql+asyncpg://" + url.removeprefix("postgresql://"))

        async def check() -> None:
            try:
                await run(database, servers)
            finally:
                await database.dispose()

        try:
            asyncio.run(check())
        finally:
            for server in servers:
                server.stop()
