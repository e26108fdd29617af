"""`securechat chat USER` in a real pseudo-terminal: messages from the other side appear
while the prompt is open, and lines typed at the prompt are sent."""

from __future__ import annotations

import asyncio
import os
import sys

import pexpect

from securechat.client.realtime import InboxSocket

from .conftest import PASSWORDS, next_item


def spawn_chat(client, server_url: str, target: str) -> pexpect.spawn:
    """`securechat chat TARGET` as ``client``'s user, in a pseudo-terminal."""
    env = {**os.environ, "SECURECHAT_HOME": str(client.state.home), "SECURECHAT_SERVER": server_url}
    return pexpect.spawn(
        sys.executable,
        ["-m", "securechat", "chat", target],
        env=env,
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=30,
    )


async def expect(child: pexpect.spawn, pattern: str, timeout: float = 30) -> None:
    """pexpect blocks; run it off the event loop so the test's own client keeps working."""
    await asyncio.to_thread(child.expect, pattern, timeout=timeout)


async def test_chat_shows_incoming_messages_live_and_sends_typed_lines(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "before the chat opened")

    child = spawn_chat(bob, live_server.url, "alice")
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        # The chat fetches what arrived meanwhile first, then goes live.
        await expect(child, "alice: before the chat opened")
        await expect(child, "-- connected")

        # Live: alice sends while bob's prompt is waiting for input.
        await alice.send_text("bob", "are you there?")
        await expect(child, "alice: are you there\\?")

        # Bob types a reply at the prompt; alice receives it, verified.
        child.sendline("yes, typing live")
        received = []
        async with asyncio.timeout(30):
            while not received:
                received = [i for i in await alice.sync_inbox() if i.kind == "message" and i.sender == "bob"]
        assert received[0].text == "yes, typing live" and received[0].verified

        # Alice's acknowledgement comes back to bob as a delivery receipt.
        await expect(child, "delivered to alice")
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)


async def test_group_chat_with_typing_and_read_receipts(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    group_id = await alice.groups.create("Lounge", ["bob"])
    socket = InboxSocket(alice)
    await socket.connect()
    child = spawn_chat(bob, live_server.url, "#Lounge")
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "-- group Lounge")
        await expect(child, "-- connected")
        # Bob types (no Enter yet): alice's client hears that he is typing.
        child.send("on my")

        item = await next_item(socket, "typing")
        assert (item.sender, item.conversation_id) == ("bob", group_id)
        # Alice types: bob's chat shows it; alice sends: bob's chat shows it and, having
        # shown it, sends a read receipt.
        await socket.typing(group_id)
        await expect(child, "alice is typing")
        sent = await alice.send_text(group_id, "see you at noon")
        await expect(child, "alice: see you at noon")
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            await alice.sync_inbox()
            rows = [r for r in alice.stored_messages() if r["message_id"] == sent["message_id"]]
            if rows and rows[0]["status"] == "read":
                break
            await asyncio.sleep(0.2)
        assert rows[0]["status"] == "read"
        child.sendline(" way")
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
        await socket.close()


async def test_slash_commands_are_never_sent_as_messages(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "hello")
    child = spawn_chat(bob, live_server.url, "alice")
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "-- connected")
        child.sendline("/help")
        await expect(child, "/quit")
        child.sendline("/nonsense now")
        await expect(child, "unknown command /nonsense")
        # A doubled slash sends the line with one slash: the way to say "/shrug".
        child.sendline("//shrug")
        child.sendline("plain words")
        received = []
        async with asyncio.timeout(30):
            while len(received) < 2:
                received += [
                    i.text for i in await alice.sync_inbox() if i.kind == "message" and i.sender == "bob"
                ]
        assert received == ["/shrug", "plain words"]
        child.sendline("/quit")
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
