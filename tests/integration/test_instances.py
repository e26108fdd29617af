"""Two server processes on one PostgreSQL database with Redis between them: a message
sent through one instance reaches a socket open on the other at once, and typing
indicators cross too. Without the broker a socket would see the message only on its
next event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.client.messenger import Messenger
from securechat.client.realtime import InboxSocket
from securechat.protocol.identifiers import direct_conversation_id

from ..conftest import LiveServer, postgres_instances
from .conftest import PASSWORDS, next_item


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_instances") as instances:
        yield instances


async def test_live_delivery_and_typing_across_instances(two_instances, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    alice = Messenger(tmp_path / "alice", first.url)
    bob = Messenger(tmp_path / "bob", second.url)
    await alice.register("alice", PASSWORDS["alice"])
    await bob.register("bob", PASSWORDS["bob"])
    bob_socket = InboxSocket(bob)  # open on the second instance
    alice_socket = InboxSocket(alice)  # open on the first
    await bob_socket.connect()
    await alice_socket.connect()
    try:
        for i in range(3):
            await alice.send_text("bob", f"across instances {i}")  # stored by the first
            item = await next_item(bob_socket, "message")
            assert (item.text, item.verified) == (f"across instances {i}", True)
        # The receipt for bob's acknowledgement (second instance) reaches alice (first).
        receipt = await next_item(alice_socket, "receipt")
        assert receipt.recipient == "bob"
        await bob_socket.typing(direct_conversation_id(alice.username, bob.username))
        typing = await next_item(alice_socket, "typing")
        assert typing.sender == "bob"
        for server in (first, second):
            assert "Traceback" not in server.log()
    finally:
        await bob_socket.close()
        await alice_socket.close()
        await alice.close()
        await bob.close()
