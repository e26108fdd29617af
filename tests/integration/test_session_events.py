"""Session events reach every instance at once, through the broker.

Ended sessions: a logout, a revocation, a password change elsewhere or a disabled account
closes that session's open sockets on every instance at once (close code 4401), not at the
next periodic check; a frame sent on such a socket afterwards is not carried out. The
periodic check is set to 300 s here, so only the event can close the sockets in time.

A new login: the account's other sessions get a ``session_started`` entry in their inbox
(live on their open sockets, on any instance, and on the next connection of a device that
was offline); the terminal client prints it as one line, with the client's description
made safe for the terminal.

Each test runs on one instance with SQLite, and on two instances with PostgreSQL and
Redis (a socket on the second, the action through the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin

from securechat.client.messenger import Messenger
from securechat.client.realtime import InboxSocket
from securechat.server.services.admin import make_admin
from securechat.server.settings import Settings
from securechat.server.storage.database import Database

from ..conftest import LiveServer, postgres_instances, start_server
from .conftest import PASSWORDS, next_item

NEW_PASSWORD = "a brand new passphrase 2026"
# A generous bound, not a measurement: without the event the socket stays open for the
# periodic check's 300 s.
CLOSE_WAIT_S = 20
# What a client can put in its User-Agent (latin-1 on the wire): C1 controls such as CSI
# (0x9b) and NEL (0x85), which some terminals act on.
HOSTILE_AGENT = "evil-client \x9b2J\x85-- connected"


@pytest.fixture(params=["sqlite", "postgres-redis"])
async def instances(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """(first, second): the same server twice on SQLite; two servers on one PostgreSQL
    database with Redis between them otherwise."""
    # No grace for a spent refresh token: presenting it again ends its session at once.
    env = {"SECURECHAT_WS_SESSION_CHECK_SECONDS": "300", "SECURECHAT_REFRESH_REUSE_GRACE_SECONDS": "0"}
    if request.param == "sqlite":
        server = start_server(tmp_path / "data", tmp_path / "server.log", extra_env=env)
        try:
            yield server, server
        finally:
            server.stop()
        return
    async with postgres_instances(tmp_path, "securechat_sessions", env) as instances:
        yield instances


async def grant_admin(server: LiveServer, username: str) -> None:
    """What the operator's `securechat admin create` does, on the server's database."""
    settings = Settings(data_dir=server.data_dir, database_url=server.env.get("SECURECHAT_DATABASE_URL"))
    database = Database(settings.sqlalchemy_url())
    try:
        await make_admin(database, username)
    finally:
        await database.dispose()


async def open_inbox(client: Messenger) -> ClientConnection:
    """A raw inbox socket for ``client``'s session, authenticated and ready."""
    await client.ensure_token()
    socket = await websockets.connect(client.api.websocket_url(), origin=Origin(client.api.origin()))
    since = client.state.last_seq()
    await socket.send(json.dumps({"type": "auth", "token": client.api.access_token, "since": since}))
    assert json.loads(await socket.recv())["type"] == "ready"
    return socket


async def frames_until_closed(socket: ClientConnection, action: str, late_frame: str) -> list[dict[str, Any]]:
    """Every frame until the server closes the socket. Right after the ``session_revoked``
    error (sent before the close), ``late_frame`` goes out, as a client that ignores the
    error would send it."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(CLOSE_WAIT_S):
            with contextlib.suppress(websockets.ConnectionClosed):
                async for text in socket:
                    frame = json.loads(text)
                    frames.append(frame)
                    if frame.get("code") == "session_revoked":
                        await socket.send(late_frame)
    except TimeoutError:
        pytest.fail(f"{action}: the socket was still open {CLOSE_WAIT_S} s later")
    return frames


def send_as(client: Messenger, user_agent: str) -> None:
    """Make ``client`` present ``user_agent``, byte for byte (latin-1, as HTTP carries it)."""
    headers = client.api._http.headers
    headers.encoding = "latin-1"
    headers["user-agent"] = user_agent


async def second_login(server: LiveServer, home: Path, password: str) -> Messenger:
    client = Messenger(home, server.url)
    await client.login("alice", password)
    return client


async def test_ended_sessions_close_their_sockets_on_every_instance(instances, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = instances
    alice = Messenger(tmp_path / "alice", first.url)  # alice's own session, on the first
    bob = Messenger(tmp_path / "bob", second.url)
    carol = Messenger(tmp_path / "carol", first.url)
    await alice.register("alice", PASSWORDS["alice"])
    await bob.register("bob", PASSWORDS["bob"])
    await carol.register("carol", PASSWORDS["carol"])
    await grant_admin(first, "carol")
    clients = [alice, bob, carol]
    password = PASSWORDS["alice"]

    async def end_session(action: str, device: Messenger) -> None:
        """Do ``action`` through the first instance; ``device`` is the session on the second."""
        if action == "logout":
            # The device's own logout, sent to the first instance.
            async with httpx.AsyncClient(base_url=first.url) as http:
                answer = await http.post(
                    "/api/v1/auth/logout", headers={"authorization": f"Bearer {device.api.access_token}"}
                )
            assert answer.status_code == 204
        elif action == "revoke":
            await alice.session.revoke_session(device.state.get("session_id") or "")
        elif action == "revoke-others":
            assert await alice.session.revoke_other_sessions() == 1
        elif action == "token-reuse":
            # The device's refresh token, rotated once and then presented again (as a
            # thief's copy would be), through the first instance.
            spent = {"refresh_token": device.state.get("refresh_token")}
            async with httpx.AsyncClient(base_url=first.url) as http:
                assert (await http.post("/api/v1/auth/refresh", json=spent)).status_code == 200
                reused = await http.post("/api/v1/auth/refresh", json=spent)
            assert reused.json()["error"]["reason"] == "token_reuse", reused.text
        elif action == "password-change":
            assert await alice.change_password(password, NEW_PASSWORD) == 1
        elif action == "admin-disable":
            await carol.ensure_token()
            await carol.api.request("POST", "/api/v1/admin/users/alice/disable")
        else:
            raise AssertionError(action)

    try:
        for number, action in enumerate(
            ["logout", "revoke", "revoke-others", "token-reuse", "password-change", "admin-disable"]
        ):
            device = await second_login(second, tmp_path / f"device-{number}", password)
            clients.append(device)
            socket = await open_inbox(device)  # open on the second instance
            late_text = f"sent after the {action}"
            late = (await device.seal_text("bob", late_text)).to_wire()
            own_socket = await open_inbox(alice) if action == "admin-disable" else None
            try:
                await end_session(action, device)
                frames = await frames_until_closed(
                    socket, action, json.dumps({"type": "send", "ref": "late", "envelope": late})
                )
                assert {
                    "type": "error",
                    "code": "session_revoked",
                    "message": "the session has ended",
                } in frames, (
                    action,
                    frames,
                )
                assert socket.close_code == 4401, (action, socket.close_code)
                assert not [f for f in frames if f.get("ref") == "late"], (action, frames)
                if own_socket is not None:
                    # A disabled account: every session's sockets close, on the first too.
                    await frames_until_closed(own_socket, action, json.dumps({"type": "ping"}))
                    assert own_socket.close_code == 4401
            finally:
                await socket.close()
                if own_socket is not None:
                    await own_socket.close()
            if action == "password-change":
                password = NEW_PASSWORD
            # The frame sent after the end was not carried out. Had it been, the second
            # instance's writer (one queue, in order) would have stored it before bob's
            # message below, and bob's inbox would hold it.
            await bob.send_text("carol", f"after the {action}")
            texts = [item.text for item in await bob.sync_inbox() if item.kind == "message"]
            assert late_text not in texts, (action, texts)
        for server in {first.url: first, second.url: second}.values():
            assert "Traceback" not in server.log()
    finally:
        for client in clients:
            await client.close()


async def test_a_new_login_is_announced_to_the_other_sessions(instances, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = instances
    alice = Messenger(tmp_path / "alice", second.url)  # listening on the second
    await alice.register("alice", PASSWORDS["alice"])
    offline = Messenger(tmp_path / "alice-offline", first.url)  # a device that is not connected
    await offline.login("alice", PASSWORDS["alice"])
    await offline.sync_inbox()
    await alice.sync_inbox()
    raw = await open_inbox(alice)
    socket = InboxSocket(alice)
    await socket.connect()
    newcomer = Messenger(tmp_path / "alice-new", first.url)
    send_as(newcomer, HOSTILE_AGENT)
    try:
        await newcomer.login("alice", PASSWORDS["alice"])  # through the first instance
        session_id = newcomer.state.get("session_id")

        # The raw frame: who, when, and the client's description; nothing secret.
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                frame = json.loads(await raw.recv())
        except TimeoutError:
            pytest.fail(f"the open socket got no frame within {CLOSE_WAIT_S} s of the new login")
        assert frame["type"] == "session_started", frame
        assert set(frame) == {"type", "seq", "session_id", "at", "user_agent"}, frame
        assert frame["session_id"] == session_id
        assert frame["user_agent"] == HOSTILE_AGENT

        # The client library yields it as an item.
        item = await next_item(socket, "session")
        assert (item.session_id, item.text) == (session_id, HOSTILE_AGENT)

        # A device that was offline learns it on its next connection.
        items = [item for item in await offline.sync_inbox() if item.kind == "session"]
        assert [item.session_id for item in items] == [session_id]

        # The new session is not told about itself (nor about logins before it).
        assert [item for item in await newcomer.sync_inbox() if item.kind == "session"] == []
    finally:
        await raw.close()
        await socket.close()
        for client in (alice, offline, newcomer):
            await client.close()


async def test_the_terminal_chat_prints_a_new_login_as_one_safe_line(
    live_server, make_client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    await make_client("bob")
    env = {**os.environ, "SECURECHAT_HOME": str(alice.state.home), "SECURECHAT_SERVER": live_server.url}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "securechat", "chat", "bob"],
        env=env,
        encoding="utf-8",
        dimensions=(40, 160),
        timeout=30,
    )
    newcomer = Messenger(tmp_path / "alice-new", live_server.url)
    send_as(newcomer, HOSTILE_AGENT)
    try:
        await asyncio.to_thread(child.expect, "Password:")
        child.sendline(PASSWORDS["alice"])
        await asyncio.to_thread(child.expect, "-- connected")
        await newcomer.login("alice", PASSWORDS["alice"])
        session_id = newcomer.state.get("session_id") or ""
        await asyncio.to_thread(
            child.expect, r"-- new login to your account at [^\r\n]*Run securechat passwd\."
        )
        line = child.after
        # The client's description is shown with its controls escaped, on the one line.
        assert "evil-client \\x9b2J\\x85-- connected" in line, repr(line)
        assert "\x9b" not in line and "\x85" not in line, repr(line)
        assert session_id[:8] in line, repr(line)
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
        await newcomer.close()
