"""Fan-out across server instances through Redis pub/sub.

Every instance delivers its own events to its own sockets at once (as the in-process
broker does) and publishes them on one Redis channel; each instance listens to that
channel and hands events from *other* instances to its local subscribers. The database
stays the source of truth: an event lost in Redis shows up as a gap in sequence numbers
at the next event, and the connection reads the missing entries from the database. Ended
sessions travel the same way (a lost one waits for the connections' periodic check).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .broker import EventQueue, InboxEvent, InProcessBroker, SessionsEnded

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "securechat:inbox-events"
RECONNECT_SECONDS = 1.0


class RedisBroker:
    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL) -> None:
        self._redis = Redis.from_url(url)
        # One channel per deployment: two deployments sharing a Redis must not share it.
        self._channel = channel
        self._local = InProcessBroker()
        self._instance = uuid.uuid4().hex
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="redis-broker")

    async def publish(self, events: list[InboxEvent]) -> None:
        await self._local.publish(events)
        if not events:
            return
        payload = json.dumps(
            {
                "from": self._instance,
                "events": [
                    [
                        e.user_id,
                        e.seq,
                        e.frame,
                        e.message_id,
                        e.committed_at,
                        e.ephemeral,
                        *_ended_wire(e.ended),
                    ]
                    for e in events
                ],
            }
        )
        try:
            await self._redis.publish(self._channel, payload)
        except RedisError:
            # Other instances catch up from the database at their sockets' next event.
            logger.warning("could not publish %d inbox event(s) to Redis", len(events))

    def subscribe(self, user_id: int) -> contextlib.AbstractAsyncContextManager[EventQueue]:
        return self._local.subscribe(user_id)

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                logger.warning("Redis subscription lost; retrying")
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _deliver(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
            if payload.get("from") == self._instance:
                return
            # Six fields, or seven when sessions ended (see _ended_wire).
            events = [
                InboxEvent(
                    int(uid), int(seq), str(frame), message_id, float(at), bool(ephemeral), _ended(rest)
                )
                for uid, seq, frame, message_id, at, ephemeral, *rest in payload["events"]
            ]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed event on the Redis channel")
            return
        await self._local.publish(events)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._local.close()
        await self._redis.aclose()


def _ended_wire(ended: SessionsEnded | None) -> list[list[str | None]]:
    """A seventh field for ended sessions only: other events keep the six fields that
    instances of earlier versions read (during a rolling upgrade)."""
    return [] if ended is None else [[ended.reason, ended.only, ended.keep]]


def _ended(rest: list[Any]) -> SessionsEnded | None:
    """The seventh field: None, or [reason, only, keep] (ValueError or TypeError if malformed)."""
    value = rest[0] if rest else None
    if value is None:
        return None
    reason, only, keep = value
    if not isinstance(reason, str) or not isinstance(only, str | None) or not isinstance(keep, str | None):
        raise ValueError("malformed ended sessions")
    return SessionsEnded(reason, only, keep)
