"""The connection guard without sockets: the registry and its caps, the refusal log, and
uvicorn's protocols with the guard, fed bytes on a fake transport with timers that fire
when the test advances its clock (tests/integration/test_slow_connections.py runs them
on a real server)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from securechat.server.connections import (
    ConnectionGuard,
    ConnectionRegistry,
    connection_cap,
    guarded_protocols,
    trusted_proxies,
)
from securechat.server.realtime.slots import ConnectionSlots, RefusalLog, address_key

MALLORY = "203.0.113.66"
ALICE = "198.51.100.7"


def test_address_keys() -> None:
    assert address_key("203.0.113.66") == "203.0.113.66"
    assert address_key("::ffff:203.0.113.66") == "203.0.113.66"
    # One /64 is one subscriber, however many addresses it uses.
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("unknown") == "unknown"


def test_the_registry_caps_each_address_and_the_total() -> None:
    registry = ConnectionRegistry(max_per_address=2, max_total=3)
    first, second, third, fourth = object(), object(), object(), object()
    assert registry.claim(first, MALLORY) is None
    assert registry.claim(second, MALLORY) is None
    assert registry.claim(third, MALLORY) == "address"
    # Claiming a connection again (a WebSocket upgrade) neither counts nor refuses it.
    assert registry.claim(first, MALLORY) is None
    assert registry.held(MALLORY) == 2
    assert registry.claim(third, ALICE) is None
    assert registry.claim(fourth, ALICE) == "total"
    registry.release(first)
    registry.release(first)  # twice: from both protocols of an upgraded connection
    assert registry.held(MALLORY) == 1
    assert registry.total == 2
    assert registry.claim(fourth, MALLORY) is None
    for connection in (second, third, fourth):
        registry.release(connection)
    assert registry.total == 0
    assert registry._per_address == {}


def test_trusted_proxies_are_not_capped_per_address() -> None:
    registry = ConnectionRegistry(
        max_per_address=1, max_total=10, exempt=trusted_proxies("10.0.0.0/8, 127.0.0.1")
    )
    assert [registry.claim(object(), "10.1.2.3") for _ in range(3)] == [None, None, None]
    assert [registry.claim(object(), MALLORY) for _ in range(2)] == [None, "address"]
    assert trusted_proxies(None)("127.0.0.1") is False
    assert trusted_proxies("*")(MALLORY) is True


def test_the_cap_in_all_keeps_descriptors_for_the_rest() -> None:
    assert connection_cap(1024) == 768
    assert connection_cap(256) == 192
    assert connection_cap(1 << 20) == (1 << 20) - 256


def test_websocket_slots_per_address() -> None:
    slots = ConnectionSlots(max_total=10, max_per_user=10, max_per_address=2)
    assert slots.claim_address(MALLORY) and slots.claim_address(MALLORY)
    assert not slots.claim_address(MALLORY)
    assert slots.claim_address("2001:db8::1") and slots.claim_address("2001:db8::2")
    assert not slots.claim_address("2001:db8::3")
    slots.release_address(MALLORY)
    assert slots.claim_address(MALLORY)


def test_refusals_are_logged_once_a_window(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RefusalLog(logging.getLogger("test.refusals"), 60.0, max_lines=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.refusals"):
        assert log.refused("a", "refused %s", "a")
        assert not any(log.refused("a", "refused %s", "a") for _ in range(99))
        assert log.refused("b", "refused %s", "b")
        now[0] = 61.0
        assert log.refused("a", "refused %s", "a")
        # Many addresses: a few lines a window in all, and a count of the rest.
        assert log.refused("c", "refused %s", "c")
        assert log.refused("d", "refused %s", "d")
        assert not any(log.refused(key, "refused %s", key) for key in "efgh")
        now[0] = 122.0
        assert log.refused("i", "refused %s", "i")
    assert [record.getMessage() for record in caplog.records] == [
        "refused a",
        "refused b",
        "refused a (99 more since the last such line)",
        "refused c",
        "refused d",
        "4 more refusals were not logged in the last 60 s (too many addresses)",
        "refused i",
    ]
    # Only the keys logged in the last two windows are remembered.
    assert set(log._logged) == {"a", "c", "d", "i"}
    now[0] = 250.0
    log.refused("j", "refused %s", "j")
    assert set(log._logged) == {"j"}


# ---------------------------------------------------------------------------
# The protocols, on a fake transport
# ---------------------------------------------------------------------------

HEAD_TIMEOUT = 15.0
BODY_TIMEOUT = 10.0


class ManualLoop:
    """The event loop as the protocols see it, except that timers fire only when the
    test advances the clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.now = 0.0
        self.timers: list[asyncio.TimerHandle] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(self.now + delay, callback, args, self._loop)
        self.timers.append(handle)
        return handle

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        return self._loop.create_task(coro, **kwargs)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while due := sorted(
            (t for t in self.timers if not t.cancelled() and t.when() <= self.now), key=lambda t: t.when()
        ):
            self.timers.remove(due[0])
            due[0]._run()


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closed = False
        self.reading = True
        self.protocol: asyncio.BaseProtocol | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": (self.peer, 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers an HTTP request with the size of its body; accepts a WebSocket and waits."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.dumps({"size": size}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Harness:
    def __init__(self, max_per_address: int = 100) -> None:
        self.guard = ConnectionGuard(
            ConnectionRegistry(max_per_address=max_per_address, max_total=1000),
            header_timeout=HEAD_TIMEOUT,
            body_progress_timeout=BODY_TIMEOUT,
        )
        self.http, ws = guarded_protocols(self.guard)
        self.config = Config(app=echo_app, ws=ws, lifespan="off", log_config=None)
        self.config.load()
        self.state = ServerState()
        self.loop = ManualLoop(asyncio.get_running_loop())

    def connect(self, peer: str = MALLORY) -> FakeTransport:
        protocol = self.http(self.config, self.state, {}, _loop=self.loop)  # type: ignore[arg-type]
        transport = FakeTransport(peer)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return transport

    async def settle(self) -> None:
        """Let the app's tasks and the transports' connection_lost calls run."""
        while self.state.tasks:
            await asyncio.gather(*self.state.tasks)
        await asyncio.sleep(0)


def send(transport: FakeTransport, data: bytes) -> None:
    protocol = transport.get_protocol()
    assert isinstance(protocol, asyncio.Protocol)
    protocol.data_received(data)


def status_of(written: bytes) -> int | None:
    return int(written.split(b" ", 2)[1]) if written else None


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer() -> None:
    harness = Harness()
    transport = harness.connect()
    harness.loop.advance(HEAD_TIMEOUT - 1)
    assert not transport.closed
    harness.loop.advance(1)
    assert transport.closed and transport.written == b""
    await harness.settle()
    assert harness.guard.registry.total == 0


async def test_a_head_must_arrive_in_time_however_it_trickles(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    transport = harness.connect()
    with caplog.at_level(logging.WARNING):
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":
            if transport.closed:
                break
            send(transport, bytes([byte]))
            harness.loop.advance(1)
    assert transport.closed
    assert status_of(transport.written) == 408
    assert json.loads(transport.written.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert f"closed a connection from {MALLORY}: its request head did not arrive" in caplog.text


async def test_after_an_answer_the_next_head_has_its_own_deadline() -> None:
    harness = Harness()
    transport = harness.connect()
    harness.loop.advance(HEAD_TIMEOUT - 1)
    send(transport, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await harness.settle()
    assert status_of(transport.written) == 200
    # The first deadline passes: the head arrived, so nothing happens.
    harness.loop.advance(2)
    assert not transport.closed
    # Blank lines start no request in llhttp, yet cancel uvicorn's keep-alive timeout.
    transport.written = b""
    send(transport, b"\r\n")
    harness.loop.advance(HEAD_TIMEOUT)
    assert transport.closed
    assert status_of(transport.written) == 408


async def test_a_body_must_keep_making_progress() -> None:
    harness = Harness()
    transport = harness.connect()
    send(transport, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
    # Progress within each period keeps it open, however long the whole body takes.
    for chunk in (b"4", b"5", b"6"):
        harness.loop.advance(BODY_TIMEOUT - 1)
        send(transport, chunk)
    harness.loop.advance(BODY_TIMEOUT - 1)
    assert not transport.closed
    harness.loop.advance(1)
    assert transport.closed
    assert status_of(transport.written) == 408
    await harness.settle()
    # The app, waiting for the rest of the body, heard the client was gone and wrote nothing.
    assert transport.written.count(b"HTTP/1.1") == 1


async def test_a_complete_body_is_answered_and_stops_the_clock() -> None:
    harness = Harness()
    transport = harness.connect()
    send(transport, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n12")
    send(transport, b"34")
    await harness.settle()
    assert json.loads(transport.written.partition(b"\r\n\r\n")[2]) == {"size": 4}
    harness.loop.advance(BODY_TIMEOUT * 3)
    # Closed by uvicorn's keep-alive timeout (5 s), without a 408.
    assert transport.closed
    assert b"408" not in transport.written


async def test_no_timeout_while_the_server_is_not_reading() -> None:
    harness = Harness()
    transport = harness.connect()
    protocol = transport.get_protocol()
    send(transport, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
    protocol.flow.pause_reading()  # type: ignore[attr-defined]
    harness.loop.advance(BODY_TIMEOUT * 5)
    assert not transport.closed
    protocol.flow.resume_reading()  # type: ignore[attr-defined]
    harness.loop.advance(BODY_TIMEOUT - 1)
    assert not transport.closed
    harness.loop.advance(BODY_TIMEOUT)
    assert transport.closed


async def test_over_the_cap_a_connection_is_refused_at_once(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(max_per_address=2)
    with caplog.at_level(logging.WARNING):
        held = [harness.connect() for _ in range(2)]
        refused = [harness.connect() for _ in range(50)]
    other = harness.connect(ALICE)
    assert not any(transport.closed for transport in [*held, other])
    assert all(transport.closed and status_of(transport.written) == 429 for transport in refused)
    body = json.loads(refused[0].written.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "too_many_connections"
    # One line for the fifty.
    assert caplog.text.count(f"refused a connection from {MALLORY}: it holds 2 connections") == 1
    held[0].close()
    await harness.settle()
    assert not harness.connect().closed


async def test_an_upgraded_connection_counts_until_the_websocket_closes() -> None:
    harness = Harness(max_per_address=1)
    transport = harness.connect()
    send(
        transport,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert b"101 Switching Protocols" in transport.written
    # No head timeout on the WebSocket: it is the app's and the heartbeat's business.
    harness.loop.advance(HEAD_TIMEOUT * 2)
    assert not transport.closed
    assert harness.guard.registry.held(MALLORY) == 1
    assert harness.connect().closed
    transport.close()
    await harness.settle()
    assert harness.guard.registry.total == 0
