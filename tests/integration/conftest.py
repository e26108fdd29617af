"""Fixtures for tests against a real server process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.realtime import InboxSocket

PASSWORDS = {
    "alice": "correct horse battery staple",
    "bob": "tr0ub4dor&3-but-longer",
    "carol": "purple monkey dishwasher 9",
    "mallory": "knows-nothing-at-all-42",
}

MakeClient = Callable[[str], Awaitable[Messenger]]


@pytest.fixture
async def make_client(tmp_path: Path, live_server) -> AsyncIterator[MakeClient]:  # type: ignore[no-untyped-def]
    """Register a persona on the live server; each has its own SECURECHAT_HOME."""
    clients: list[Messenger] = []

    async def make(name: str) -> Messenger:
        client = Messenger(tmp_path / f"home-{name}", live_server.url)
        await client.register(name, PASSWORDS[name])
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def next_item(socket: InboxSocket, kind: str, timeout: float = 20) -> InboxItem:
    """The next item of ``kind`` a socket yields (others are passed over)."""

    async def find() -> InboxItem:
        async for item in socket.items():
            if item.kind == kind:
                return item
        raise AssertionError("the socket closed")

    return await asyncio.wait_for(find(), timeout)
