"""Typing indicators and read receipts between terminal clients and a real server, in a
direct chat and a group, and the opt-out that stops read receipts."""

from __future__ import annotations

import os
from pathlib import Path

from securechat.client.messenger import Messenger
from securechat.client.realtime import InboxSocket
from securechat.protocol.identifiers import direct_conversation_id

from .conftest import PASSWORDS, MakeClient, next_item
from .test_two_clients import run_cli


def status_of(client: Messenger, message_id: str) -> str:
    (row,) = [r for r in client.stored_messages() if r["message_id"] == message_id]
    return str(row["status"])


async def test_typing_reaches_the_other_members_live(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    group_id = await alice.groups.create("Typists", ["bob", "carol"])
    sockets = {
        name: InboxSocket(client) for name, client in (("alice", alice), ("bob", bob), ("carol", carol))
    }
    for socket in sockets.values():
        await socket.connect()
    try:
        await sockets["alice"].typing(group_id)
        for name in ("bob", "carol"):
            item = await next_item(sockets[name], "typing")
            assert (item.sender, item.conversation_id) == ("alice", group_id)
        await alice.send_text("bob", "direct")
        await next_item(sockets["bob"], "message")
        direct = direct_conversation_id(alice.username, bob.username)
        await sockets["bob"].typing(direct)
        item = await next_item(sockets["alice"], "typing")
        assert (item.sender, item.conversation_id) == ("bob", direct)
    finally:
        for socket in sockets.values():
            await socket.close()


async def test_read_receipts_and_their_opt_out(live_server, make_client: MakeClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    await make_client("bob")
    await make_client("carol")
    first = (await alice.send_text("bob", "please read"))["message_id"]
    second = (await alice.send_text("carol", "please read too"))["message_id"]

    # Bob lists his inbox: the message is shown, so alice learns he read it.
    shown = run_cli(tmp_path / "home-bob", live_server.url, "inbox", password=PASSWORDS["bob"])
    assert "please read" in shown.stdout
    # Carol has read receipts turned off: alice learns of delivery only.
    env = {**os.environ, "SECURECHAT_READ_RECEIPTS": "false"}
    import sys
    from subprocess import run as run_process

    quiet = run_process(
        [sys.executable, "-m", "securechat", "inbox", "--password-stdin"],
        input=PASSWORDS["carol"] + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "SECURECHAT_HOME": str(tmp_path / "home-carol"), "SECURECHAT_SERVER": live_server.url},
        check=False,
    )
    assert "please read too" in quiet.stdout, quiet.stderr
    items = await alice.sync_inbox()
    receipts = {(i.recipient, i.status) for i in items if i.kind == "receipt"}
    assert ("bob", "read") in receipts
    assert ("carol", "read") not in receipts
    assert status_of(alice, first) == "read"
    assert status_of(alice, second) == "delivered"
    listed = run_cli(tmp_path / "home-alice", live_server.url, "inbox", "--all", password=PASSWORDS["alice"])
    assert "please read  ✓ ✓✓ read" in listed.stdout
