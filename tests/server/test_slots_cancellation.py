"""A WebSocket cancelled while its cap is asked of Redis (the client left, the server
stops) gives its count back: otherwise every such socket would hold one of the
address's or account's slots on this instance until it restarts, and enough of them
would refuse the address or account for good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from securechat.server.realtime.shared_slots import SharedCounts
from securechat.server.realtime.slots import ConnectionSlots


class HangingRedis:
    """A shared count whose claims wait until told (a slow or hung Redis)."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()
        self.released: list[str] = []

    async def claim(self, key: str, cap: int) -> bool | None:
        self.asked.set()
        await self.answer.wait()
        return True

    async def release(self, key: str) -> None:
        self.released.append(key)


def slots_with(shared: HangingRedis) -> ConnectionSlots:
    return ConnectionSlots(max_total=10, max_per_user=1, max_per_address=1, shared=cast(SharedCounts, shared))


@pytest.mark.parametrize(
    "acquire",
    [
        lambda slots: slots.acquire_address("198.51.100.7"),
        lambda slots: slots.acquire_user(7),
    ],
    ids=["address", "user"],
)
async def test_a_claim_cancelled_while_redis_is_asked_gives_the_local_count_back(
    acquire: Callable[[ConnectionSlots], Awaitable[bool]],
) -> None:
    redis = HangingRedis()
    slots = slots_with(redis)
    waiting = asyncio.ensure_future(acquire(slots))
    await redis.asked.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not slots.per_address and not slots.per_user
    # The slot (cap 1) is free for the next socket.
    redis.answer.set()
    assert await acquire(slots) is True


async def test_an_answered_claim_still_counts_once() -> None:
    redis = HangingRedis()
    redis.answer.set()
    slots = slots_with(redis)
    assert await slots.acquire_address("198.51.100.7") is True
    assert await slots.acquire_address("198.51.100.7") is False
    assert slots.per_address["198.51.100.7"] == 1
