"""Shared socket counts in Redis (issue 13, item 7): a crashed instance's sockets stop
counting once their leases run out, and an instance that renews keeps its own. A real
Redis, a private key prefix and a short lease; waits are generous and assert nothing
about time."""

from __future__ import annotations

import asyncio
import uuid

from securechat.server.realtime.shared_slots import SharedCounts

from ..conftest import REDIS_URL


async def test_a_crashed_instances_leases_run_out_and_a_live_ones_are_renewed() -> None:
    prefix = f"securechat-test:leases-{uuid.uuid4().hex}:"
    crashed = SharedCounts(REDIS_URL, prefix, lease_ms=3000)  # never renews: as if killed
    live = SharedCounts(REDIS_URL, prefix, lease_ms=3000)
    other = SharedCounts(REDIS_URL, prefix, lease_ms=3000)
    live.start()  # these two renew every second
    other.start()
    try:
        assert await crashed.claim("user:1", 2) is True
        assert await live.claim("user:1", 2) is True
        assert await other.claim("user:1", 2) is False
        # The crashed instance's lease runs out; the live one's does not.
        async with asyncio.timeout(30):
            while not await other.claim("user:1", 2):
                await asyncio.sleep(0.1)
        for _ in range(8):  # longer than a lease: the live instances renewed throughout
            await asyncio.sleep(0.5)
            assert await other.claim("user:1", 2) is False
        # A socket closed gives its slot back at once.
        await live.release("user:1")
        assert await other.claim("user:1", 2) is True
    finally:
        for counts in (crashed, live, other):
            await counts.close()
