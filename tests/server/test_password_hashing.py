"""The password hasher's bounds (services/passwords.py): logins keep their reserved slot
while other hashing is saturated, each kind's queue is bounded, and a wait for a slot is
bounded; a refusal is ServerBusy (503 server_busy with Retry-After)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from securechat.server.errors import ServerBusy
from securechat.server.services.passwords import LOGIN, OTHER, AuthKeyHasher

KEY = b"\x01" * 32


class Gate:
    """Stands in for argon2: every hash waits until the gate opens."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.running = 0

    def hash(self, secret: bytes) -> str:
        self.running += 1
        self.open.wait(timeout=30)
        return "$fake$"

    def verify(self, stored: str, secret: bytes) -> bool:
        self.running += 1
        self.open.wait(timeout=30)
        return True


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.open.set()


def gated(gate: Gate, **bounds: float) -> AuthKeyHasher:
    hasher = AuthKeyHasher(time_cost=1, memory_kib=8, parallelism=1, **bounds)  # type: ignore[arg-type]
    hasher._hasher = gate  # type: ignore[assignment]
    return hasher


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_logins_keep_their_share_while_other_hashing_is_saturated(gate: Gate) -> None:
    hasher = gated(gate, concurrency=2, login_reserve=1, queue=2, wait_seconds=30)
    others = [asyncio.create_task(hasher.hash(KEY, kind=OTHER)) for _ in range(3)]
    await settle()

    # One runs, two wait: the queue for other work is full, so the next is refused at once.
    with pytest.raises(ServerBusy) as refused:
        await hasher.hash(KEY, kind=OTHER)
    assert refused.value.status == 503 and refused.value.code == "server_busy"
    assert refused.value.headers is not None and int(refused.value.headers["Retry-After"]) >= 1
    # A login takes the reserved slot and runs now, beside the running password change.
    login = asyncio.create_task(hasher.verify("$stored$", KEY, kind=LOGIN))
    await settle()
    while gate.running < 2:
        await asyncio.sleep(0.01)
    assert not any(task.done() for task in others)

    gate.open.set()
    assert await login is True
    assert await asyncio.gather(*others) == ["$fake$"] * 3


async def test_a_wait_for_a_slot_is_bounded(gate: Gate) -> None:
    hasher = gated(gate, concurrency=1, login_reserve=0, queue=8, wait_seconds=0.05)
    running = asyncio.create_task(hasher.verify("$stored$", KEY))
    await settle()

    with pytest.raises(ServerBusy):
        await hasher.verify("$stored$", KEY)

    gate.open.set()
    assert await running is True


async def test_without_contention_nothing_is_refused(gate: Gate) -> None:
    gate.open.set()
    hasher = gated(gate, concurrency=2, login_reserve=1, queue=0, wait_seconds=1)
    # A queue of 0 refuses only work that would have to wait.
    assert await hasher.hash(KEY) == "$fake$"
    assert await hasher.verify("$stored$", KEY) is True
    assert await hasher.verify(None, KEY) is False
