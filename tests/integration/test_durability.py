"""What the server acknowledged is stored: a SIGKILL right after the acknowledgement
loses nothing, a retried message id never duplicates, and two server processes on one
SQLite database never see "database is locked"."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from securechat.client.messenger import Messenger

from ..conftest import start_server
from .conftest import PASSWORDS


async def test_kill_after_ack_loses_nothing_and_retries_do_not_duplicate(live_server, make_client, tmp_path):
    alice = await make_client("alice")
    bob = await make_client("bob")
    envelopes = [await alice.seal_text("bob", f"durable {i}") for i in range(20)]
    answers = [await alice.api.send(envelope.to_wire()) for envelope in envelopes]
    live_server.stop(kill=True)  # SIGKILL, straight after the last acknowledgement

    port = int(live_server.url.rsplit(":", 1)[1])
    restarted = start_server(live_server.data_dir, tmp_path / "server-restarted.log", port=port)
    try:
        # The client retries everything (it cannot know what landed): same answers.
        retried = [await alice.api.send(envelope.to_wire()) for envelope in envelopes]
        assert retried == answers
        items = [item for item in await bob.sync_inbox() if item.kind == "message"]
        assert [item.text for item in items] == [f"durable {i}" for i in range(20)]
        assert all(item.verified for item in items)
        assert [item.seq for item in items] == list(range(items[0].seq, items[0].seq + 20))
    finally:
        restarted.stop()


async def test_two_server_processes_share_one_sqlite_database(live_server, tmp_path: Path):
    second = start_server(live_server.data_dir, tmp_path / "second.log")
    clients: list[Messenger] = []
    try:

        async def client(name: str, url: str) -> Messenger:
            messenger = Messenger(tmp_path / f"home-{name}", url)
            clients.append(messenger)
            await messenger.register(name, PASSWORDS[name])
            return messenger

        alice = await client("alice", live_server.url)
        carol = await client("carol", second.url)
        bob = await client("bob", second.url)

        async def burst(sender: Messenger, count: int) -> None:
            for i in range(count):
                await sender.send_text("bob", f"{sender.username} {i}")

        await asyncio.gather(burst(alice, 25), burst(carol, 25))
        items = [item for item in await bob.sync_inbox() if item.kind == "message"]
        assert len(items) == 50 and all(item.verified for item in items)
        assert [item.seq for item in items] == list(range(1, 51))
        for name in ("alice", "carol"):
            assert [item.text for item in items if item.sender == name] == [f"{name} {i}" for i in range(25)]
        for log in (live_server.log(), second.log()):
            assert "database is locked" not in log
            assert "Traceback" not in log
    finally:
        for messenger in clients:
            await messenger.close()
        second.stop()


async def test_a_send_queued_just_before_the_socket_closes_is_still_stored(live_server, make_client):
    import json

    import websockets
    from websockets.typing import Origin

    alice = await make_client("alice")
    bob = await make_client("bob")
    envelope = await alice.seal_text("bob", "said just before hanging up")
    await alice.ensure_token()
    async with websockets.connect(alice.api.websocket_url(), origin=Origin(alice.api.origin())) as socket:
        await socket.send(json.dumps({"type": "auth", "token": alice.api.access_token, "since": 0}))
        assert json.loads(await socket.recv())["type"] == "ready"
        await socket.send(json.dumps({"type": "send", "ref": 1, "envelope": envelope.to_wire()}))
    # Closed without waiting for "sent": the queued write must still commit.
    items: list = []
    async with asyncio.timeout(20):
        while not items:
            items = [item for item in await bob.sync_inbox() if item.kind == "message"]
    assert [item.text for item in items] == ["said just before hanging up"]


async def test_an_open_socket_closes_when_its_session_is_revoked(tmp_path):
    import json

    import websockets
    from websockets.typing import Origin

    server = start_server(
        tmp_path / "data", tmp_path / "revoke.log", extra_env={"SECURECHAT_WS_SESSION_CHECK_SECONDS": "0.2"}
    )
    bob = Messenger(tmp_path / "home-bob", server.url)
    try:
        await bob.register("bob", PASSWORDS["bob"])
        await bob.ensure_token()
        async with websockets.connect(bob.api.websocket_url(), origin=Origin(bob.api.origin())) as socket:
            await socket.send(json.dumps({"type": "auth", "token": bob.api.access_token, "since": 0}))
            assert json.loads(await socket.recv())["type"] == "ready"
            await bob.api.logout()
            frames = []
            async with asyncio.timeout(10):
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for text in socket:
                        frames.append(json.loads(text))
            assert {"type": "error", "code": "session_revoked", "message": "the session has ended"} in frames
            assert socket.close_code == 4401
    finally:
        await bob.close()
        server.stop()
