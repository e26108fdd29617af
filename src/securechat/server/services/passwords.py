"""argon2id of the client's auth key, computed off the event loop with bounded concurrency."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class AuthKeyHasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # A login storm queues here instead of starving the event loop's thread pool.
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash = self._hasher.hash(b"\x00" * 32)

    async def hash(self, auth_key: bytes) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, auth_key)

    async def verify(self, stored_hash: str | None, auth_key: bytes) -> bool:
        """Constant work whether or not the user exists: a missing user checks a dummy hash."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        async with self._slots:
            ok = await asyncio.to_thread(self._verify, target, auth_key)
        return ok and stored_hash is not None

    def _verify(self, stored_hash: str, auth_key: bytes) -> bool:
        try:
            return self._hasher.verify(stored_hash, auth_key)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
