"""The reconnect delays of client/realtime.py (issue 13, item 6): at once after a good
connection, then full jitter over a window doubling from 0.25 s to a small cap; and a
server that accepts but never answers is given up on and tried again."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from websockets.asyncio.server import serve

from securechat.client import realtime
from securechat.client.realtime import RECONNECT_MAX_DELAY_S, Backoff


def test_the_first_attempt_goes_at_once_then_the_window_doubles_to_the_cap() -> None:
    backoff = Backoff(rng=lambda: 0.999999)  # the top of each window
    delays = [round(backoff.next_delay(), 3) for _ in range(8)]
    assert delays == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert max(delays) <= RECONNECT_MAX_DELAY_S <= 5.0


def test_full_jitter_spreads_each_delay_over_its_whole_window() -> None:
    backoff = Backoff(rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.0] * 5
    halves = Backoff(rng=lambda: 0.5)
    assert [halves.next_delay() for _ in range(4)] == [0.0, 0.125, 0.25, 0.5]


def test_a_reset_makes_the_next_attempt_immediate_again() -> None:
    backoff = Backoff(rng=lambda: 0.999999)
    for _ in range(20):
        backoff.next_delay()
    assert backoff.next_delay() <= RECONNECT_MAX_DELAY_S  # no overflow after many failures
    backoff.reset()
    assert backoff.next_delay() == 0.0
    assert 0 < backoff.next_delay() <= 0.25


class SilentThenReadyServer:
    """A WebSocket server that, like a frozen instance, accepts and never answers the auth
    frame for its first ``silent`` connections, then answers ``ready``."""

    def __init__(self, silent: int) -> None:
        self.silent = silent
        self.connections = 0

    async def handler(self, socket) -> None:  # type: ignore[no-untyped-def]
        self.connections += 1
        await socket.recv()  # the auth frame
        if self.connections <= self.silent:
            await socket.wait_closed()  # silent until the client gives up
            return
        await socket.send(json.dumps({"type": "ready"}))
        async for _ in socket:
            pass


class FakeApi:
    def __init__(self, port: int) -> None:
        self.port = port
        self.access_token = "token"

    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FakeMessenger:
    def __init__(self, port: int) -> None:
        self.api = FakeApi(port)
        self.state = SimpleNamespace(last_seq=lambda: 0)
        self.receipts = SimpleNamespace(take_delivered=lambda: [])

    async def ensure_token(self) -> None:
        pass

    async def sync_v2(self) -> list[object]:
        """A socket reads the v2 inbox when it connects: this messenger has no v2 device."""
        return []


async def test_a_server_that_never_answers_the_auth_frame_is_given_up_on_and_retried(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(realtime, "READY_TIMEOUT_S", 0.2)
    fake = SilentThenReadyServer(silent=2)
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        states: list[str] = []

        async def on_state(state: str) -> None:
            states.append(state)

        live = realtime.LiveInbox(FakeMessenger(port), on_state=on_state)  # type: ignore[arg-type]
        stop = asyncio.Event()
        runner = asyncio.create_task(live.run(stop))
        await asyncio.wait_for(live.wait_connected(), 10)
        stop.set()
        await asyncio.wait_for(runner, 10)
    assert fake.connections == 3
    assert states == ["reconnecting", "connected"]
