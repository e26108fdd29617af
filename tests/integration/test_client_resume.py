"""Clients come back fast (issue 13, item 6): the server is killed with SIGKILL and started
again on the same data dir and port while clients are connected. Every message the
server acknowledged before or after arrives exactly once, the clients reconnect on their
own, a send made during the outage (or whose socket died under it) is delivered once
after the restart, and `securechat chat` keeps running through all of it.

Timing is printed, not asserted tightly: these machines are noisy. The bounds below are
loose enough that only a client that backs off for tens of seconds (as the old one did,
doubling to 30 s) or gives up fails them."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pexpect
import websockets
from websockets.typing import Origin

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.realtime import LiveInbox, run_inbox

from ..conftest import LiveServer, start_server
from .conftest import PASSWORDS
from .test_terminal_chat import expect, spawn_chat

# Loose: the new client resumes well within a second or two of the server answering; the
# bound only catches a client that is still asleep in a long backoff.
RESUME_BOUND_S = 10.0


def restart(server: LiveServer, tmp_path: Path, name: str) -> tuple[LiveServer, float]:
    """Start the server again on its data dir and port; (server, when it answered)."""
    port = int(server.url.rsplit(":", 1)[1])
    restarted = start_server(server.data_dir, tmp_path / f"{name}.log", port=port)
    return restarted, time.monotonic()


async def wait_for(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def messages_from(client: Messenger, sender: str) -> list[str]:
    return [i.text or "" for i in await client.sync_inbox() if i.kind == "message" and i.sender == sender]


async def test_the_server_deduplicates_a_send_repeated_over_the_socket(live_server, make_client):
    """What the retry relies on: the same envelope sent again (here over a second socket)
    gets the first answer back and is stored once."""
    alice = await make_client("alice")
    bob = await make_client("bob")
    envelope = (await alice.seal_text("bob", "sent twice")).to_wire()
    answers = []
    for _ in range(2):
        await alice.ensure_token()
        async with websockets.connect(alice.api.websocket_url(), origin=Origin(alice.api.origin())) as socket:
            await socket.send(json.dumps({"type": "auth", "token": alice.api.access_token, "since": 0}))
            assert json.loads(await socket.recv())["type"] == "ready"
            await socket.send(json.dumps({"type": "send", "ref": "r", "envelope": envelope}))
            while (frame := json.loads(await socket.recv()))["type"] != "sent":
                pass
            answers.append({k: v for k, v in frame.items() if k != "ref"})
    assert answers[0] == answers[1]
    assert await messages_from(bob, "alice") == ["sent twice"]


async def test_receivers_resume_by_sequence_after_sigkill_and_restart(live_server, make_client, tmp_path):
    alice = await make_client("alice")
    bob = await make_client("bob")
    received: list[InboxItem] = []
    connected: list[float] = []

    async def on_item(item: InboxItem) -> None:
        if item.kind == "message":
            received.append(item)

    async def on_state(state: str) -> None:
        if state == "connected":
            connected.append(time.monotonic())

    stop = asyncio.Event()
    receiver = asyncio.create_task(run_inbox(bob, on_item, on_state=on_state, stop=stop))
    server = live_server
    try:
        await wait_for(lambda: len(connected) == 1)
        expected: list[str] = []
        resumes: list[float] = []
        for round_ in range(3):
            for i in range(10):
                text = f"round {round_} message {i}"
                await alice.send_text("bob", text)  # acknowledged by the server
                expected.append(text)
            server.stop(kill=True)
            await asyncio.sleep(0.5)
            server, answering = await asyncio.to_thread(restart, server, tmp_path, f"restart-{round_}")
            await wait_for(lambda round_=round_: len(connected) == round_ + 2)
            resumes.append(connected[-1] - answering)
        for i in range(10):
            text = f"after the last restart {i}"
            await alice.send_text("bob", text)
            expected.append(text)
        await wait_for(lambda: len(received) == len(expected))
        await asyncio.sleep(0.3)  # room for a duplicate to show up, if there were one
        print(f"bob reconnected {[round(r, 3) for r in resumes]} s after the server answered")
        assert [item.text for item in received] == expected  # each once, in order
        assert all(item.verified for item in received)
        assert [item.seq for item in received] == sorted({item.seq for item in received})
        assert max(resumes) < RESUME_BOUND_S
        assert "Traceback" not in server.log()
    finally:
        stop.set()
        await asyncio.wait_for(receiver, 10)
        server.stop()


async def test_a_send_during_the_outage_is_delivered_once_after_the_restart(
    live_server, make_client, tmp_path
):
    alice = await make_client("alice")
    bob = await make_client("bob")
    live = LiveInbox(alice)
    stop = asyncio.Event()
    runner = asyncio.create_task(live.run(stop))
    server = live_server
    try:
        await asyncio.wait_for(live.wait_connected(), 20)
        first = await alice.seal_text("bob", "before the outage")
        await live.send_envelope(first.to_wire())

        # A send whose socket dies under it: the frame goes out, the server is killed
        # before (or just after) it answers. It is retried on the next socket.
        # Sealed beforehand: sealing checks the keys with the server.
        in_flight = await alice.seal_text("bob", "in flight when the server died")
        during = await alice.seal_text("bob", "sent while the server was down")
        in_flight_send = asyncio.create_task(live.send_envelope(in_flight.to_wire()))
        await asyncio.sleep(0)  # let the frame go out
        server.stop(kill=True)
        during_send = asyncio.create_task(live.send_envelope(during.to_wire()))
        await asyncio.sleep(1.0)
        assert not during_send.done()  # waiting for a socket, not failed
        started = time.monotonic()
        server, answering = await asyncio.to_thread(restart, server, tmp_path, "restarted")
        answers = await asyncio.wait_for(asyncio.gather(in_flight_send, during_send), 30)
        print(f"queued sends answered {time.monotonic() - answering:.3f} s after the server answered")
        assert [a["message_id"] for a in answers] == [in_flight.header.message_id, during.header.message_id]
        assert time.monotonic() - started < 30
        texts = await messages_from(bob, "alice")
        assert texts == [
            "before the outage",
            "in flight when the server died",
            "sent while the server was down",
        ]
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        server.stop()


async def test_the_terminal_chat_survives_a_server_restart(live_server, make_client, tmp_path):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "before the chat opened")
    child = spawn_chat(bob, live_server.url, "alice")
    screen = io.StringIO()
    child.logfile_read = screen
    server = live_server
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "-- connected")
        await alice.send_text("bob", "before the restart")
        await expect(child, "alice: before the restart")

        server.stop(kill=True)
        await expect(child, "-- reconnecting")
        child.sendline("typed while the server was down")
        await asyncio.sleep(1.0)
        assert child.isalive(), screen.getvalue()
        server, answering = await asyncio.to_thread(restart, server, tmp_path, "restarted")
        await expect(child, "-- connected")
        print(
            f"the chat reconnected {time.monotonic() - answering:.3f} s after the server answered (upper bound)"
        )

        await alice.send_text("bob", "after the restart")
        await expect(child, "alice: after the restart")
        received: list[str] = []
        async with asyncio.timeout(30):
            while not received:
                received = await messages_from(alice, "bob")
        await asyncio.sleep(0.5)
        received += await messages_from(alice, "bob")
        assert received == ["typed while the server was down"]  # exactly once

        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
        shown = screen.getvalue()
        for text in ("before the chat opened", "before the restart", "after the restart"):
            assert shown.count(f"alice: {text}") == 1, shown
        assert "Traceback" not in shown
    finally:
        child.close(force=True)
        server.stop()


async def test_a_v2_chat_line_typed_while_the_server_is_down_goes_once_after_the_restart(
    live_server, make_client, tmp_path
):
    """Both accounts are v2 devices (the default of `securechat chat`): the line typed
    during the outage waits (the device-list check and the POST are tried again, the same
    envelope each time) and arrives exactly once, in v2, once the server is back."""
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.enable_v2()
    child = spawn_chat(bob, live_server.url, "alice")
    screen = io.StringIO()
    child.logfile_read = screen
    server = live_server
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "-- connected")
        child.sendline("a v2 line before the restart")
        received: list[str] = []
        async with asyncio.timeout(30):
            while not received:
                received = [i.text or "" for i in await alice.sync_v2() if i.kind == "message"]
        assert received == ["a v2 line before the restart"]

        server.stop(kill=True)
        await expect(child, "-- reconnecting")
        child.sendline("a v2 line typed while the server was down")
        await asyncio.sleep(1.0)
        assert child.isalive(), screen.getvalue()
        server, _ = await asyncio.to_thread(restart, server, tmp_path, "restarted-v2")
        await expect(child, "-- connected")
        received = []
        async with asyncio.timeout(30):
            while not received:
                received = [i.text or "" for i in await alice.sync_v2() if i.kind == "message"]
        await asyncio.sleep(1.0)
        received += [i.text or "" for i in await alice.sync_v2() if i.kind == "message"]
        assert received == ["a v2 line typed while the server was down"]  # exactly once
        assert "error:" not in screen.getvalue() and "Traceback" not in screen.getvalue()
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
        server.stop()
