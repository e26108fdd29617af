"""While Redis does not answer, the WebSocket caps fall back to each instance's own
count (issue 13, item 7): sockets are not refused because Redis is unwell, nor let
through past the per-instance cap."""

from __future__ import annotations

from securechat.server.realtime.shared_slots import SharedCounts
from securechat.server.realtime.slots import ConnectionSlots

from ..conftest import free_port


async def test_caps_fall_back_to_the_instance_count_while_redis_does_not_answer() -> None:
    nobody = SharedCounts(f"redis://127.0.0.1:{free_port()}/0", "securechat-test:nobody:")
    slots = ConnectionSlots(max_total=100, max_per_user=2, max_per_address=3, shared=nobody)
    try:
        assert await nobody.claim("user:1", 2) is None  # no Redis there
        assert [await slots.acquire_user(1) for _ in range(3)] == [True, True, False]
        assert [await slots.acquire_address("198.51.100.7") for _ in range(4)] == [True, True, True, False]
        await slots.free_user(1)
        await slots.free_address("198.51.100.7")
        assert await slots.acquire_user(1)
        assert await slots.acquire_address("198.51.100.7")
        assert slots.per_user[1] == 2
    finally:
        await nobody.close()
