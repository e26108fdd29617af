"""`securechat chat USER` in a real pseudo-terminal: messages from the other side appear
while the prompt is open, and lines typed at the prompt are sent."""

from __future__ import annotations

import asyncio
import os
import sys

import pexpect

from .conftest import PASSWORDS


async def expect(child: pexpect.spawn, pattern: str, timeout: float = 30) -> None:
    """pexpect blocks; run it off the event loop so the test's own client keeps working."""
    await asyncio.to_thread(child.expect, pattern, timeout=timeout)


async def test_chat_shows_incoming_messages_live_and_sends_typed_lines(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "before the chat opened")

    env = {**os.environ, "SECURECHAT_HOME": str(bob.state.home), "SECURECHAT_SERVER": live_server.url}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "securechat", "chat", "alice"],
        env=env,
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=30,
    )
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "-- connected")
        await expect(child, "alice: before the chat opened")

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
