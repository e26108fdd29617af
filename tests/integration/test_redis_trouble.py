"""Redis trouble does not stop acknowledgements or delivery (issue 13, item 4).

Two server processes on one PostgreSQL database, with a Redis server of the test's own
between them, which the test freezes (SIGSTOP) and kills. A hung Redis once held up
every acknowledgement (the writer waited on ``publish``), and a message committed during
an outage, with nothing sent after it, was never delivered live. Counts only: every wait
below is generous and fails only if the thing never happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from securechat.client.messenger import Messenger
from securechat.client.realtime import InboxSocket

from ..conftest import LiveServer, free_port, postgres_instances
from .conftest import PASSWORDS, next_item

GENEROUS = 60.0


class PrivateRedis:
    """A redis-server on a loopback port of its own, which this test may stop and kill."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=self.port, socket_timeout=1)
        for _ in range(200):
            with contextlib.suppress(Exception):
                if client.ping():
                    client.close()
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.thaw()
        self.process.kill()
        self.process.wait(timeout=20)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture
async def two_instances(
    tmp_path: Path, redis_server: PrivateRedis
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    env = {"SECURECHAT_REDIS_URL": redis_server.url}
    async with postgres_instances(tmp_path, "securechat_redis_trouble", env) as instances:
        yield instances


async def _broker_state(server: LiveServer) -> tuple[str, str]:
    """What /readyz says of the broker, and the broker-health line of /metrics."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        ready = (await http.get("/readyz")).json()["broker"]
        metrics = (await http.get("/metrics")).text
    healthy = next(line for line in metrics.splitlines() if line.startswith("securechat_broker_healthy "))
    return str(ready), healthy


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = GENEROUS) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def _people(
    first: LiveServer, second: LiveServer, tmp_path: Path
) -> tuple[Messenger, Messenger, InboxSocket]:
    alice = Messenger(tmp_path / "alice", first.url)
    bob = Messenger(tmp_path / "bob", second.url)
    await alice.register("alice", PASSWORDS["alice"])
    await bob.register("bob", PASSWORDS["bob"])
    bob_socket = InboxSocket(bob)  # live on the second instance
    await bob_socket.connect()
    # Warm: one message crosses while Redis is well.
    await alice.send_text("bob", "before")
    assert (await next_item(bob_socket, "message")).text == "before"
    return alice, bob, bob_socket


async def test_a_hung_redis_delays_no_acknowledgement_and_loses_no_live_delivery(
    two_instances, redis_server: PrivateRedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    alice, bob, bob_socket = await _people(first, second, tmp_path)
    try:
        for server in (first, second):
            await _until(lambda server=server: _is(server, "ok"))
        redis_server.freeze()
        try:
            # Every send is acknowledged (stored and answered) while Redis hangs; before,
            # the second one waited on the first one's publish for as long as Redis hung.
            answers = await asyncio.wait_for(
                asyncio.gather(*(alice.send_text("bob", f"during {i}") for i in range(5))), GENEROUS
            )
            assert len(answers) == 5
            # Both instances notice, and say so.
            for server in (first, second):
                await _until(lambda server=server: _is(server, "degraded"))
        finally:
            redis_server.thaw()
        # Nothing more is sent: the five arrive live on bob's open socket anyway.
        texts = {(await next_item(bob_socket, "message", timeout=GENEROUS)).text for _ in range(5)}
        assert texts == {f"during {i}" for i in range(5)}
        for server in (first, second):
            await _until(lambda server=server: _is(server, "ok"))
    finally:
        await bob_socket.close()
        await alice.close()
        await bob.close()


async def test_a_message_sent_while_redis_is_down_is_delivered_live_when_it_returns(
    two_instances, redis_server: PrivateRedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    alice, bob, bob_socket = await _people(first, second, tmp_path)
    try:
        redis_server.kill()
        await alice.send_text("bob", "while Redis is down")
        for server in (first, second):
            await _until(lambda server=server: _is(server, "degraded"))
        # An outage of some seconds, longer than a Redis client's own retries of a command
        # (which is what once let a short outage go unnoticed): not a timing assertion.
        await asyncio.sleep(5)
        redis_server.start()  # the same port
        # No later traffic: the one message still arrives on the open socket.
        item = await next_item(bob_socket, "message", timeout=GENEROUS)
        assert item.text == "while Redis is down"
        for server in (first, second):
            await _until(lambda server=server: _is(server, "ok"))
    finally:
        await bob_socket.close()
        await alice.close()
        await bob.close()


async def _is(server: LiveServer, state: str) -> bool:
    ready, healthy = await _broker_state(server)
    return ready == state and healthy == f"securechat_broker_healthy {1.0 if state == 'ok' else 0.0}"
