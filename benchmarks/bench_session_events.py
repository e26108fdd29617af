"""Session events benchmark: how soon an ended session's socket closes, and how soon a
new login reaches the account's open sockets (issue 12, items 6 and 13).

Run from the repository root::

    python benchmarks/bench_session_events.py                      # SQLite, one instance
    python benchmarks/bench_session_events.py --postgres postgresql://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/0                            # two instances

Servers run as ``securechat serve`` processes with the periodic session check at 300 s,
so only the broker's events can act. Each round logs alice in on the second instance
(the "device"), waits for the ``session_started`` frame on a socket alice holds on the
first, opens the device's socket on the second, logs the device out through the first,
and waits for that socket to close. Reported, per round: from the login's answer to the
notice, and from the logout's answer (204) to the close. Negative or zero values mean the
event had arrived before the HTTP answer did. Before these events the close came at the
next periodic check (up to ``ws_session_check_seconds``, 30 s by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin

from securechat.client.messenger import Messenger

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def server(data_dir: Path, env: dict[str, str]) -> AsyncIterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "securechat", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


async def open_inbox(client: Messenger) -> ClientConnection:
    await client.ensure_token()
    inbox = await websockets.connect(client.api.websocket_url(), origin=Origin(client.api.origin()))
    await inbox.send(
        json.dumps({"type": "auth", "token": client.api.access_token, "since": client.state.last_seq()})
    )
    assert json.loads(await inbox.recv())["type"] == "ready"
    return inbox


async def rounds(first: str, second: str, home: Path, count: int) -> tuple[list[float], list[float]]:
    alice = Messenger(home / "alice", first)
    await alice.register("alice", PASSWORD)
    await alice.sync_inbox()
    listener = await open_inbox(alice)
    notices: list[float] = []
    closes: list[float] = []
    for number in range(count):
        device = Messenger(home / f"device-{number}", second)
        await device.login("alice", PASSWORD)
        answered = time.perf_counter()
        while json.loads(await listener.recv())["type"] != "session_started":
            pass
        notices.append(time.perf_counter() - answered)
        inbox = await open_inbox(device)
        async with httpx.AsyncClient(base_url=first) as http:
            logout = await http.post(
                "/api/v1/auth/logout", headers={"authorization": f"Bearer {device.api.access_token}"}
            )
        answered = time.perf_counter()
        assert logout.status_code == 204
        try:
            async for _frame in inbox:
                pass
        except websockets.ConnectionClosed:
            pass
        closes.append(time.perf_counter() - answered)
        assert inbox.close_code == 4401
        await device.close()
    await listener.close()
    await alice.close()
    return notices, closes


def report(name: str, values: list[float]) -> str:
    return f"{name}: median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--postgres", help="a PostgreSQL URL: run two instances on a throwaway database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    env = {"SECURECHAT_WS_SESSION_CHECK_SECONDS": "300", "SECURECHAT_WS_CONNECTS_PER_MINUTE": "100000"}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if not args.postgres:
            async with server(home / "data", env) as url:
                notices, closes = await rounds(url, url, home, args.rounds)
            where = "SQLite, one instance"
        else:
            import asyncpg

            name = f"bench_sessions_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            env |= {
                "SECURECHAT_DATABASE_URL": f"{args.postgres.rpartition('/')[0]}/{name}",
                "SECURECHAT_REDIS_URL": args.redis,
                "SECURECHAT_REDIS_CHANNEL": f"bench:{name}",
            }
            try:
                async with server(home / "data", env) as first, server(home / "data", env) as second:
                    notices, closes = await rounds(first, second, home, args.rounds)
            finally:
                admin = await asyncpg.connect(args.postgres)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
            where = "PostgreSQL + Redis, two instances (socket on the second, action through the first)"
    print(f"{where}, {args.rounds} rounds")
    print("  " + report("new login: its notice after the login's answer", notices))
    print("  " + report("logout: the socket's close after the 204", closes))


if __name__ == "__main__":
    asyncio.run(main())
