"""Availability under abuse, on a real server: a client flooding WebSocket frames is
throttled to its budget while another client's delivery latency stays within twice its
baseline; WebSocket connects per address are limited."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import websockets
from websockets.typing import Origin

from securechat.client.messenger import Messenger

from ..conftest import start_server
from .conftest import PASSWORDS

RATE = 100


async def open_socket(client: Messenger) -> websockets.ClientConnection:
    await client.ensure_token()
    socket = await websockets.connect(
        client.api.websocket_url(), origin=Origin(client.api.origin()), max_size=2**21
    )
    await socket.send(json.dumps({"type": "auth", "token": client.api.access_token, "since": 0}))
    ready = json.loads(await socket.recv())
    assert ready["type"] == "ready", ready
    return socket


async def delivery_latencies(alice: Messenger, alice_ws, bob_ws, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    latencies = []
    for n in range(count):
        envelope = await alice.seal_text("bob", f"probe {n}")
        started = time.perf_counter()
        await alice_ws.send(json.dumps({"type": "send", "ref": str(n), "envelope": envelope.to_wire()}))
        while True:
            frame = json.loads(await asyncio.wait_for(bob_ws.recv(), 10))
            if frame["type"] == "message" and frame["message_id"] == envelope.header.message_id:
                break
        latencies.append(time.perf_counter() - started)
    return latencies


async def test_a_frame_flood_is_throttled_and_others_keep_their_latency(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        extra_env={"SECURECHAT_WS_FRAMES_PER_SECOND": str(RATE), "SECURECHAT_WS_FRAME_BURST": str(RATE)},
    )
    clients = {name: Messenger(tmp_path / name, server.url) for name in ("alice", "bob", "mallory")}
    try:
        for name, client in clients.items():
            await client.register(name, PASSWORDS[name])
        alice_ws, bob_ws, mallory_ws = [await open_socket(c) for c in clients.values()]
        await delivery_latencies(clients["alice"], alice_ws, bob_ws, 5)  # warm-up
        baseline = statistics.median(await delivery_latencies(clients["alice"], alice_ws, bob_ws, 30))

        pongs = 0

        async def flood() -> None:
            ping = json.dumps({"type": "ping"})
            for _ in range(20_000):
                await mallory_ws.send(ping)

        async def count_pongs() -> None:
            nonlocal pongs
            async for text in mallory_ws:
                if json.loads(text)["type"] == "pong":
                    pongs += 1

        flooding = asyncio.create_task(flood())
        counting = asyncio.create_task(count_pongs())
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        during = statistics.median(await delivery_latencies(clients["alice"], alice_ws, bob_ws, 30))
        await asyncio.sleep(max(0.0, 2.0 - (time.perf_counter() - started)))
        elapsed = time.perf_counter() - started + 0.5
        answered = pongs
        flooding.cancel()
        counting.cancel()

        # The flooder got about its budget: the burst plus the rate, not 20,000 answers.
        assert answered <= RATE + RATE * elapsed * 1.3, (answered, elapsed)
        assert answered >= RATE * 0.5, answered  # throttled, not cut off
        # Everyone else is unaffected: within twice the baseline (with a 2 ms floor for timer noise).
        assert during <= 2 * max(baseline, 0.002), (baseline, during)
        for socket in (alice_ws, bob_ws, mallory_ws):
            await socket.close()
    finally:
        for client in clients.values():
            await client.close()
        server.stop()


async def test_websocket_connects_are_limited_per_address(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_WS_CONNECTS_PER_MINUTE": "5"}
    )
    client = Messenger(tmp_path / "alice", server.url)
    try:
        await client.register("alice", PASSWORDS["alice"])
        for _ in range(5):
            socket = await open_socket(client)
            await socket.close()
        async with websockets.connect(
            client.api.websocket_url(), origin=Origin(client.api.origin())
        ) as socket:
            frame = json.loads(await socket.recv())
            assert frame["type"] == "error" and frame["code"] == "rate_limited"
            await socket.wait_closed()
            assert socket.close_code == 4429
    finally:
        await client.close()
        server.stop()
