"""Socket counts shared by every instance, in Redis: the per-account and per-address
WebSocket caps hold across a deployment, not per process (N instances would otherwise
let one account hold N x 20 sockets).

Each open socket holds a lease in a sorted set per key (``user:<id>``, ``address:<key>``):
the member names the instance and the socket, the score is when the lease runs out, by
Redis's own clock (instances' clocks may differ). An instance renews its leases every
third of the lease, so a crashed instance's sockets stop counting within a lease
(60 s). A claim is one script: drop run-out leases, count, add if under the cap.

If Redis fails or hangs, a claim answers None and the caller falls back to its own
per-instance count: sockets are not refused because Redis is unwell (the deployment is
then capped per instance, as before, until Redis answers again).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LEASE_MS = 60_000
COMMAND_TIMEOUT_SECONDS = 1.0
# After Redis failed, claims skip it this long: a hung Redis must not add its timeout to
# every connect.
BACKOFF_SECONDS = 5.0

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_CLAIM = (
    _NOW_MS
    + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    + "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end "
    + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3]) "
    + "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    + "return 1"
)
# Re-adds too: a Redis that restarted empty learns the open sockets again.
_RENEW = (
    _NOW_MS
    + "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end "
    + "redis.call('PEXPIRE', KEYS[1], ARGV[1]) "
    + "return 1"
)


class SharedCounts:
    def __init__(self, url: str, prefix: str, *, lease_ms: int = LEASE_MS) -> None:
        self._redis = Redis.from_url(
            url, socket_timeout=COMMAND_TIMEOUT_SECONDS, socket_connect_timeout=COMMAND_TIMEOUT_SECONDS
        )
        self._prefix = prefix
        self._lease_ms = lease_ms
        self._instance = uuid.uuid4().hex
        # The leases this instance holds, per key (any of a key's members may be
        # released for any of its sockets: they are interchangeable).
        self._held: dict[str, list[str]] = collections.defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        self._skip_until = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew_loop(), name="shared-slots-renew")

    async def claim(self, key: str, cap: int) -> bool | None:
        """One more socket under ``key`` if the deployment holds fewer than ``cap``:
        True, False (at the cap), or None if Redis did not answer."""
        if time.monotonic() < self._skip_until:
            return None
        member = f"{self._instance}:{uuid.uuid4().hex}"
        try:
            claimed = await self._redis.eval(_CLAIM, 1, self._prefix + key, cap, self._lease_ms, member)
        except (RedisError, OSError):
            self._unwell()
            return None
        self._warned = False
        if not claimed:
            return False
        self._held[key].append(member)
        return True

    async def release(self, key: str) -> None:
        members = self._held.get(key)
        if not members:
            return  # claimed while Redis was unwell: nothing held there
        member = members.pop()
        if not members:
            del self._held[key]
        # If Redis does not answer, the lease runs out by itself.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zrem(self._prefix + key, member)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, members in list(self._held.items()):
                        pipe.eval(_RENEW, 1, self._prefix + key, self._lease_ms, *members)
                    await pipe.execute()
            except (RedisError, OSError):
                self._unwell()

    def _unwell(self) -> None:
        self._skip_until = time.monotonic() + BACKOFF_SECONDS
        if not self._warned:
            logger.warning("Redis does not answer: WebSocket caps are counted per instance meanwhile")
            self._warned = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # This instance's sockets are closing with it: give their leases back at once.
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, members in self._held.items():
                    pipe.zrem(self._prefix + key, *members)
                await asyncio.wait_for(pipe.execute(), COMMAND_TIMEOUT_SECONDS)
        self._held.clear()
        await self._redis.aclose()
