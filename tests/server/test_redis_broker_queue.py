"""The Redis broker's publish queue (issue 13, item 4): ``publish`` never waits on Redis,
the queue stays bounded when Redis never answers (the oldest dropped and counted), and
the next publish that goes through tells every instance to resync from the database."""

from __future__ import annotations

import asyncio
import json

from securechat.server.realtime.broker import InboxEvent
from securechat.server.realtime.redis_broker import RedisBroker


class HungRedis:
    """A Redis that takes every command and never answers, until ``answer`` is set."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.published: list[str] = []

    async def publish(self, channel: str, payload: str) -> int:
        await self.answer.wait()
        self.published.append(payload)
        return 1

    async def aclose(self) -> None:
        pass


async def test_publish_never_waits_on_a_hung_redis_and_its_queue_stays_bounded() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:queue", queue_max=3)
    hung = HungRedis()
    broker._redis = hung  # type: ignore[assignment]
    publisher = asyncio.create_task(broker._publish_loop())
    try:
        async with broker.subscribe(7) as local:
            for seq in range(1, 11):
                # A hang detector, not a timing assertion: publish must return although
                # Redis answers nothing.
                await asyncio.wait_for(broker.publish([InboxEvent(7, seq, f"frame {seq}", f"m{seq}")]), 10)
            # The local subscriber had every event at once.
            assert [local.get_nowait().seq for _ in range(10)] == list(range(1, 11))  # type: ignore[union-attr]
            # One publish is in flight; of the nine queued after it, three are kept.
            assert len(broker._pending) == 3
            assert broker.dropped == 6
            hung.answer.set()
            async with asyncio.timeout(10):
                while broker._pending:
                    await asyncio.sleep(0.01)
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        await broker.close()
    sent = [json.loads(payload) for payload in hung.published]
    # The first (in flight before anything was dropped) carries no resync; the merged
    # rest does, so other instances re-read what they missed from the database.
    assert "resync" not in sent[0]
    assert sent[-1]["resync"] is True
    positions = [flat[1::2] for payload in sent for _, _, flat in payload["m"]]
    assert positions == [[1], [8], [9], [10]]
    # No envelope, no frame: references only.
    assert all("frame" not in payload for payload in hung.published)
