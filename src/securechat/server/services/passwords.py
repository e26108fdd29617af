"""argon2id of the client's auth key, computed off the event loop with bounded concurrency
and a bounded wait.

Hashing is the costliest thing a request can make this process do, and anyone can ask
for it (a login, a registration, a password change). Three bounds keep a storm from
becoming an outage:

- at most ``concurrency`` hashes run at once;
- ``login_reserve`` of those slots are for logins only: password changes and
  registrations together hold at most ``concurrency - login_reserve``, so a storm of
  them leaves logins a share that it cannot take;
- each kind (``LOGIN``, ``OTHER``) may have at most ``queue`` requests waiting, each for
  at most ``wait_seconds``; past either bound the request gets ``ServerBusy`` (503
  server_busy with Retry-After) at once, having done nothing.

The bounds are per process on purpose: they protect this process's CPU, which other
instances do not share.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import ServerBusy

HashKind = Literal["login", "other"]
LOGIN: HashKind = "login"
OTHER: HashKind = "other"

BUSY_MESSAGE = "the server is busy; try again in a moment"


class AuthKeyHasher:
    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        concurrency: int,
        login_reserve: int = 0,
        queue: int = 1_000_000,
        wait_seconds: float = 3600.0,
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._slots = asyncio.Semaphore(max(1, concurrency))
        # Work other than logins must hold one of these before a slot: with fewer of
        # them than slots, the difference is always left to logins.
        self._other_slots = asyncio.Semaphore(max(1, concurrency - login_reserve))
        self._queue = queue
        self._wait_seconds = wait_seconds
        self._waiting: dict[HashKind, int] = {LOGIN: 0, OTHER: 0}
        self._dummy_hash = self._hasher.hash(b"\x00" * 32)

    def check_capacity(self, kind: HashKind) -> None:
        """Raise ServerBusy now if a hash of ``kind`` would be refused now; reserve nothing.

        For callers with work to do before hashing (intrusion detection writes to the
        database): in a storm, most requests are then refused before that work.
        """
        if self._waiting[kind] >= self._queue and self._must_wait(kind):
            raise self._busy()

    async def hash(self, auth_key: bytes, *, kind: HashKind = OTHER) -> str:
        async with self._slot(kind):
            return await asyncio.to_thread(self._hasher.hash, auth_key)

    async def verify(self, stored_hash: str | None, auth_key: bytes, *, kind: HashKind = LOGIN) -> bool:
        """Constant work whether or not the user exists: a missing user checks a dummy hash."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        async with self._slot(kind):
            ok = await asyncio.to_thread(self._verify, target, auth_key)
        return ok and stored_hash is not None

    def _verify(self, stored_hash: str, auth_key: bytes) -> bool:
        try:
            return self._hasher.verify(stored_hash, auth_key)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    @asynccontextmanager
    async def _slot(self, kind: HashKind) -> AsyncIterator[None]:
        """A hashing slot, or ServerBusy if the queue for ``kind`` is full or the wait too long."""
        # Only requests that found no free slot are waiting: acquiring a free one does not
        # yield to the event loop, so a request that can run at once is never refused.
        self.check_capacity(kind)
        async with AsyncExitStack() as held:
            self._waiting[kind] += 1
            try:
                async with asyncio.timeout(self._wait_seconds):
                    if kind == OTHER:
                        await self._other_slots.acquire()
                        held.callback(self._other_slots.release)
                    await self._slots.acquire()
                    held.callback(self._slots.release)
            except TimeoutError:
                raise self._busy() from None
            finally:
                self._waiting[kind] -= 1
            yield

    def _must_wait(self, kind: HashKind) -> bool:
        return self._slots.locked() or (kind == OTHER and self._other_slots.locked())

    def _busy(self) -> ServerBusy:
        retry = str(max(1, math.ceil(min(self._wait_seconds, 30.0))))
        return ServerBusy(BUSY_MESSAGE, headers={"Retry-After": retry})
