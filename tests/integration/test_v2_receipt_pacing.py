"""v2 receipts spend the reader's send budget (PROTOCOL.md 15.17, "Making receipts"):
one refused with 429 keeps its ids and goes later, after the server's wait, and the
user's own message is not made to wait behind it."""

from __future__ import annotations

from typing import Any

import pytest

from securechat.client.errors import ApiError
from securechat.client.messenger import Messenger

from .conftest import MakeClient
from .test_v2_receipts import send, status, v2_pair


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refuse_receipts(monkeypatch: pytest.MonkeyPatch, client: Messenger) -> list[dict[str, Any]]:
    """The server answers 429 to the client's receipts (its budget is spent)."""
    real = client.v2.send
    refused: list[dict[str, Any]] = []

    async def send_v2(peer: str, payload: dict[str, Any], *, keep: bool = True) -> Any:
        if not keep:
            refused.append(payload)
            raise ApiError(429, "rate_limited", "slow down", {"retry_after_ms": 30_000})
        return await real(peer, payload, keep=keep)

    monkeypatch.setattr(client.v2, "send", send_v2)
    return refused


async def test_a_receipt_refused_with_429_goes_after_the_wait_and_the_users_message_goes_now(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await v2_pair(make_client)
    clock = Clock()
    bob.v2.receipts.clock = clock
    first = await send(alice, "one")
    refused = refuse_receipts(monkeypatch, bob)
    assert [i.text for i in await bob.sync_inbox() if i.kind == "message"] == ["one"]
    assert [p["message_ids"] for p in refused] == [[first]]
    # bob's own message is not a receipt: it goes.
    await bob.send_text("alice", "hi back")
    monkeypatch.undo()
    second = await send(alice, "two")
    # Within the server's wait nothing is tried again, not even the new message's receipt.
    await bob.sync_inbox()
    assert [i.kind for i in await alice.sync_inbox()] == ["message"]
    assert status(alice, "bob", first) == "sent"
    clock.now += 30.0
    await bob.sync_inbox()
    receipts = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(r.verified, r.status, sorted(r.message_ids)) for r in receipts] == [
        (True, "delivered", sorted([first, second]))
    ]
    assert status(alice, "bob", first) == status(alice, "bob", second) == "delivered"
