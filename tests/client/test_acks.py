"""When the terminal client acknowledges inbox entries (PROTOCOL.md 9.2): message entries
only, one ack for the entries that arrive together, at once after 32."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from securechat.client import realtime
from securechat.client.messenger import InboxItem
from securechat.client.realtime import InboxSocket


class FakeSocket:
    """Frames in from a queue; frames out recorded."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    async def send(self, text: str) -> None:
        frame = json.loads(text)
        self.sent.append(frame)
        if frame.get("confirm"):
            await self.incoming.put(json.dumps({"type": "acked", "seq": frame["seq"]}))

    def __aiter__(self) -> AsyncIterator[str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str]:
        while (text := await self.incoming.get()) is not None:
            yield text

    async def close(self) -> None:
        self.closed = True

    def acks(self) -> list[int]:
        return [frame["seq"] for frame in self.sent if frame["type"] == "ack"]


class FakeReceipts:
    """No signed receipts waiting (tests/integration/test_receipts.py sends real ones)."""

    def take_delivered(self) -> list[dict[str, Any]]:
        return []


class FakeMessenger:
    receipts = FakeReceipts()

    async def process_frame(self, frame: dict[str, Any]) -> InboxItem:
        return InboxItem(kind=frame["type"], seq=frame["seq"])

    async def sync_v2(self) -> list[InboxItem]:
        """A socket reads the v2 inbox when it connects: this messenger has no v2 device."""
        return []


def entry(kind: str, seq: int) -> str:
    return json.dumps({"type": kind, "seq": seq})


async def consume(inbox: InboxSocket, count: int) -> list[InboxItem]:
    items: list[InboxItem] = []
    async for item in inbox.items():
        items.append(item)
        if len(items) == count:
            break
    return items


def make_socket() -> tuple[InboxSocket, FakeSocket]:
    inbox = InboxSocket(FakeMessenger())  # type: ignore[arg-type]
    fake = FakeSocket()
    inbox._socket = fake  # type: ignore[assignment]
    return inbox, fake


async def test_entries_arriving_together_get_one_ack_covering_all() -> None:
    inbox, fake = make_socket()
    for seq, kind in enumerate(["message", "message", "message", "receipt"], start=1):
        await fake.incoming.put(entry(kind, seq))
    assert [item.seq for item in await consume(inbox, 4)] == [1, 2, 3, 4]
    assert fake.acks() == []  # not yet: the ack waits for what arrives with it
    await asyncio.sleep(realtime.ACK_DELAY_SECONDS * 3)
    assert fake.acks() == [4]


async def test_receipts_and_group_entries_alone_are_not_acknowledged() -> None:
    inbox, fake = make_socket()
    await fake.incoming.put(entry("receipt", 1))
    await fake.incoming.put(entry("group", 2))
    await consume(inbox, 2)
    await asyncio.sleep(realtime.ACK_DELAY_SECONDS * 3)
    assert fake.acks() == []
    # The next message's ack covers them.
    await fake.incoming.put(entry("message", 3))
    await consume(inbox, 1)
    await asyncio.sleep(realtime.ACK_DELAY_SECONDS * 3)
    assert fake.acks() == [3]


async def test_a_full_batch_is_acknowledged_at_once() -> None:
    inbox, fake = make_socket()
    count = realtime.ACK_MAX_ENTRIES + 8
    for seq in range(1, count + 1):
        await fake.incoming.put(entry("message", seq))
    await consume(inbox, count)
    assert fake.acks() == [realtime.ACK_MAX_ENTRIES]
    await asyncio.sleep(realtime.ACK_DELAY_SECONDS * 3)
    assert fake.acks() == [realtime.ACK_MAX_ENTRIES, count]


async def test_closing_confirms_what_is_still_pending() -> None:
    inbox, fake = make_socket()
    await fake.incoming.put(entry("message", 1))
    await fake.incoming.put(entry("receipt", 2))
    await consume(inbox, 2)
    await inbox.close()
    assert fake.sent == [{"type": "ack", "seq": 2, "confirm": True, "signed_receipts": True}]
    assert fake.closed


async def test_signed_receipts_follow_the_ack_that_covers_them() -> None:
    """A client that signs its receipts (PROTOCOL.md 9.3) says so on every ack, so the
    server makes none of its own, and sends the queued "delivered" receipts after it."""
    inbox, fake = make_socket()
    queued = [{"v": 1, "status": "delivered", "message_ids": ["one"]}]

    class Queue:
        def take_delivered(self) -> list[dict[str, Any]]:
            taken, queued[:] = list(queued), []
            return taken

    inbox.messenger.receipts = Queue()  # type: ignore[assignment]
    for seq in range(1, realtime.ACK_MAX_ENTRIES + 1):
        await fake.incoming.put(entry("message", seq))
    await consume(inbox, realtime.ACK_MAX_ENTRIES)
    assert fake.sent[:2] == [
        {"type": "ack", "seq": realtime.ACK_MAX_ENTRIES, "signed_receipts": True},
        {"type": "receipt", "receipt": {"v": 1, "status": "delivered", "message_ids": ["one"]}},
    ]
    assert all(frame["type"] != "receipt" for frame in fake.sent[2:])
