"""Fan-out across server instances through Redis pub/sub.

Every instance delivers its own events to its own sockets at once (as the in-process
broker does) and publishes them on one Redis channel; each instance listens to that
channel and hands events from *other* instances to its local subscribers.

What crosses Redis is small (PROTOCOL.md 9.2): for a message, its id and each
recipient's (user id, inbox position), never the envelope. An instance with local
subscribers among the recipients reads the message once from the database and renders
every local recipient's frame from that one read, so a 256-member group message costs a
few KB of broker traffic, not 256 copies of the envelope.

Redis is never on the commit path: ``publish`` queues and returns, and one task per
instance publishes from a bounded queue (the oldest dropped, counted, when it is full).
The database stays the source of truth, so anything lost on the way costs latency,
never a message: an instance that drops events tells the others to resync, an instance
that notices Redis coming back (or re-subscribes) makes its sockets re-read their
inboxes, and while Redis is unhealthy its sockets re-read them periodically.

Redis is trusted as the database is: whoever can publish on the channel can pair a
message entry of one user with another user's position. During a rolling upgrade, this
version still reads the earlier format; an earlier instance ignores this one's events, and
its sockets see what this one stored at their next event or reconnect.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .broker import EventQueue, InboxEvent, InProcessBroker, SessionsEnded

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "securechat:inbox-events"
RECONNECT_SECONDS = 1.0
# A Redis command that takes longer than this counts as failed (a hung Redis).
COMMAND_TIMEOUT_SECONDS = 1.0
HEALTH_CHECK_SECONDS = 1.0
# While Redis is unhealthy, local sockets re-read their inboxes this often.
DEGRADED_RESYNC_SECONDS = 2.0
# Data entries (receipts, group changes, notices) with a frame up to this size travel
# inline; larger ones go as a reference that the recipient's socket reads itself.
INLINE_FRAME_MAX = 1024
# The start of a data entry's frame (services/writer.py, data_frame): kind, then seq.
_DATA_FRAME = re.compile(r'\{"type":"([a-z_]{1,40})","seq":([0-9]{1,19}),')
_KIND = re.compile(r"[a-z_]{1,40}")
# Queued publishes merged into one Redis message, at most.
MERGE_MAX = 256

# For a message entry: given one recipient's (user id, seq) and the message id announced,
# a function that renders the frame for any recipient's seq (None if that entry is not
# there, or holds another message).
MessageSource = Callable[[int, int, str], Awaitable[Callable[[int], str] | None]]
# The newest inbox position of each of these users (those with no entry may be left out).
InboxHeads = Callable[[list[int]], Awaitable[dict[int, int]]]
# Users per inbox-head query while Redis is unhealthy.
HEADS_CHUNK = 1000


class BrokerMetrics(Protocol):
    def broker_state(self, healthy: bool, queued: int) -> None: ...

    def broker_published(self, size: int) -> None: ...

    def broker_dropped(self, count: int) -> None: ...


@dataclass
class _Parts:
    """One ``publish`` call's events, in wire form."""

    messages: list[list[Any]] = field(default_factory=list)
    data: list[list[Any]] = field(default_factory=list)
    shared: list[list[Any]] = field(default_factory=list)
    ephemeral: list[list[Any]] = field(default_factory=list)
    ended: list[list[Any]] = field(default_factory=list)


def encode(events: list[InboxEvent]) -> _Parts:
    parts = _Parts()
    by_message: dict[str, list[Any]] = {}
    by_frame: dict[str, list[int]] = {}
    by_data: dict[tuple[str, str], list[Any]] = {}
    for e in events:
        if e.ended is not None:
            parts.ended.append([e.user_id, e.ended.reason, e.ended.only, e.ended.keep])
        elif e.ephemeral:
            by_frame.setdefault(e.frame, []).append(e.user_id)
        elif e.message_id is not None:
            entry = by_message.get(e.message_id)
            if entry is None:
                entry = by_message[e.message_id] = [e.message_id, e.committed_at, []]
                parts.messages.append(entry)
            entry[2] += [e.user_id, e.seq]
        elif len(e.frame) > INLINE_FRAME_MAX:
            parts.data.append([e.user_id, e.seq, None, e.committed_at])
        elif (found := _DATA_FRAME.match(e.frame)) is not None and found.group(2) == str(e.seq):
            # One entry's data for many users (a group change to every member): sent once,
            # each user's frame made from it with their own seq.
            key = (found.group(1), e.frame[found.end() :])
            shared = by_data.get(key)
            if shared is None:
                shared = by_data[key] = [key[0], key[1], e.committed_at, []]
                parts.shared.append(shared)
            shared[3] += [e.user_id, e.seq]
        else:
            parts.data.append([e.user_id, e.seq, e.frame, e.committed_at])
    parts.ephemeral = [[frame, users] for frame, users in by_frame.items()]
    return parts


class RedisBroker:
    def __init__(
        self,
        url: str,
        channel: str = DEFAULT_CHANNEL,
        *,
        messages: MessageSource | None = None,
        heads: InboxHeads | None = None,
        queue_max: int = 10_000,
        metrics: BrokerMetrics | None = None,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        degraded_resync_seconds: float = DEGRADED_RESYNC_SECONDS,
    ) -> None:
        # Publishing and health checks time out; the subscription waits as long as it must.
        self._redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._subscriber = Redis.from_url(url, socket_connect_timeout=timeout)
        # One channel per deployment: two deployments sharing a Redis must not share it.
        self._channel = channel
        self._local = InProcessBroker()
        self._messages = messages
        self._heads = heads
        # The newest position handed to local subscribers, per subscribed user: while
        # Redis is unhealthy, only users whose inbox head is past it re-read their inbox.
        self._known: dict[int, int] = {}
        self._instance = uuid.uuid4().hex
        self._pending: collections.deque[_Parts] = collections.deque()
        self._queue_max = max(1, queue_max)
        self._wakeup = asyncio.Event()
        # Events were dropped: the next publish tells every instance to resync.
        self._lost = False
        self.dropped = 0
        self._metrics = metrics
        self._degraded_resync_seconds = degraded_resync_seconds
        self._redis_answers = False
        self._subscribed = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-broker-listen"),
            asyncio.create_task(self._publish_loop(), name="redis-broker-publish"),
            asyncio.create_task(self._watch(), name="redis-broker-health"),
        ]

    @property
    def healthy(self) -> bool:
        return self._redis_answers and self._subscribed

    def status(self) -> str:
        return "ok" if self.healthy else "degraded"

    async def publish(self, events: list[InboxEvent]) -> None:
        await self._offer_local(events)
        if not events:
            return
        self._pending.append(encode(events))
        while len(self._pending) > self._queue_max:
            self._drop_oldest()
        self._wakeup.set()
        self._report()

    def subscribe(self, user_id: int) -> contextlib.AbstractAsyncContextManager[EventQueue]:
        return self._local.subscribe(user_id)

    def _drop_oldest(self) -> None:
        self._pending.popleft()
        self._lost = True
        self.dropped += 1
        if self._metrics is not None:
            self._metrics.broker_dropped(1)
        if self.dropped == 1 or self.dropped % 1000 == 0:
            logger.warning("Redis publish queue full: %d publish(es) dropped so far", self.dropped)

    def _report(self) -> None:
        if self._metrics is not None:
            self._metrics.broker_state(self.healthy, len(self._pending))

    # Publishing

    async def _publish_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if not await self._flush():
                    await asyncio.sleep(RECONNECT_SECONDS / 2)

    async def _flush(self) -> bool:
        """Publish what is queued (merged into one Redis message); False if Redis failed,
        in which case the events stay queued for the next attempt."""
        taken = [self._pending.popleft() for _ in range(min(MERGE_MAX, len(self._pending)))]
        lost = self._lost
        payload = self._payload(taken, resync=lost)
        try:
            await self._redis.publish(self._channel, payload)
        except (RedisError, OSError):
            # Retried as is: a publish that timed out may have gone through after all,
            # and an event seen twice is skipped by its socket.
            self._pending.extendleft(reversed(taken))
            while len(self._pending) > self._queue_max:
                self._drop_oldest()
            self._redis_answers = False
            self._report()
            return False
        if lost:
            self._lost = False
        if self._metrics is not None:
            self._metrics.broker_published(len(payload))
        self._report()
        return True

    def _payload(self, taken: list[_Parts], *, resync: bool) -> str:
        merged: dict[str, Any] = {"v": 2, "from": self._instance}
        if resync:
            merged["resync"] = True
        for key, attribute in (
            ("m", "messages"),
            ("d", "data"),
            ("g", "shared"),
            ("x", "ephemeral"),
            ("s", "ended"),
        ):
            items = [item for parts in taken for item in getattr(parts, attribute)]
            if items:
                merged[key] = items
        return json.dumps(merged, separators=(",", ":"))

    # Health

    async def _watch(self) -> None:
        last_resync = 0.0
        while True:
            was_healthy = self.healthy
            try:
                await self._redis.ping()
                self._redis_answers = True
            except (RedisError, OSError):
                self._redis_answers = False
            if self.healthy and not was_healthy:
                logger.info("Redis answers again: local sockets re-read their inboxes")
                self._local.resync()
                self._wakeup.set()
            elif not self.healthy:
                if was_healthy:
                    logger.warning("Redis does not answer: delivery across instances is degraded")
                now = time.monotonic()
                if now - last_resync >= self._degraded_resync_seconds:
                    # Events from other instances may not be arriving: look in the database.
                    await self._check_heads()
                    last_resync = now
            self._report()
            await asyncio.sleep(HEALTH_CHECK_SECONDS)

    async def _check_heads(self) -> None:
        """Make the sockets of local users whose inbox grew past what they were handed
        re-read it: one query per thousand users, not one per socket."""
        users = self._local.subscribed_users()
        self._known = {uid: self._known[uid] for uid in users if uid in self._known}
        if self._heads is None:
            self._local.resync()
            return
        stale: list[int] = []
        try:
            for start in range(0, len(users), HEADS_CHUNK):
                chunk = users[start : start + HEADS_CHUNK]
                heads = await self._heads(chunk)
                for uid in chunk:
                    head = heads.get(uid, 0)
                    if head > self._known.get(uid, -1):
                        stale.append(uid)
                        self._known[uid] = head
        except Exception:
            logger.warning("could not read inbox heads; sockets re-read their inboxes", exc_info=True)
            self._local.resync()
            return
        if stale:
            self._local.resync(stale)

    async def _offer_local(self, events: list[InboxEvent]) -> None:
        for event in events:
            newer = event.seq > self._known.get(event.user_id, -1)
            if event.seq and not event.ephemeral and newer and self._local.has_subscribers(event.user_id):
                self._known[event.user_id] = event.seq
        await self._local.publish(events)

    # Receiving

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._subscriber.pubsub()
                await pubsub.subscribe(self._channel)
                if not self._subscribed:
                    self._subscribed = True
                    # Whatever was published while this instance was not listening.
                    self._local.resync()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                if self._subscribed:
                    logger.warning("Redis subscription lost; retrying")
                self._subscribed = False
                self._report()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _deliver(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
            if payload.get("from") == self._instance:
                return
            if "events" in payload:
                await self._offer_local(_legacy_events(payload["events"]))
                return
            events, references, messages = self._decode(payload)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignored a malformed event on the Redis channel")
            return
        if payload.get("resync"):
            # Another instance dropped events: every socket looks in the database.
            self._local.resync()
        if references:
            self._local.resync(references)
        await self._offer_local(events)
        for message_id, committed_at, recipients in messages:
            await self._deliver_message(message_id, committed_at, recipients)

    def _decode(
        self, payload: dict[str, Any]
    ) -> tuple[list[InboxEvent], list[int], list[tuple[str, float, list[tuple[int, int]]]]]:
        local = self._local.has_subscribers
        events: list[InboxEvent] = []
        references: list[int] = []
        for uid, reason, only, keep in payload.get("s", []):
            events.append(InboxEvent(int(uid), 0, "", ephemeral=True, ended=_ended([reason, only, keep])))
        for frame, uids in payload.get("x", []):
            events += [InboxEvent(int(uid), 0, str(frame), ephemeral=True) for uid in uids if local(int(uid))]
        for uid, seq, frame, at in payload.get("d", []):
            if not local(int(uid)):
                continue
            if frame is None:
                references.append(int(uid))
            else:
                events.append(InboxEvent(int(uid), int(seq), str(frame), committed_at=float(at)))
        for kind, rest, at, flat in payload.get("g", []):
            if not isinstance(kind, str) or not _KIND.fullmatch(kind) or not isinstance(rest, str):
                raise ValueError("malformed data entry")
            for i in range(0, len(flat), 2):
                uid, seq = int(flat[i]), int(flat[i + 1])
                if local(uid):
                    frame = f'{{"type":"{kind}","seq":{seq},{rest}'
                    events.append(InboxEvent(uid, seq, frame, committed_at=float(at)))
        messages = []
        for message_id, at, flat in payload.get("m", []):
            pairs = [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
            recipients = [(uid, seq) for uid, seq in pairs if local(uid)]
            if recipients:
                messages.append((str(message_id), float(at), recipients))
        return events, references, messages

    async def _deliver_message(
        self, message_id: str, committed_at: float, recipients: list[tuple[int, int]]
    ) -> None:
        """Read the message once, render each local recipient's frame from that read."""
        render = None
        if self._messages is not None:
            try:
                render = await asyncio.wait_for(
                    self._messages(*recipients[0], message_id), COMMAND_TIMEOUT_SECONDS * 5
                )
            except Exception:
                logger.warning(
                    "could not read a message for live delivery; sockets will re-read", exc_info=True
                )
        if render is None:
            self._local.resync([uid for uid, _ in recipients])
            return
        await self._offer_local(
            [InboxEvent(uid, seq, render(seq), message_id, committed_at) for uid, seq in recipients]
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # What is still queued, once, if Redis answers at once (a hung one is not awaited).
        if self._pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), COMMAND_TIMEOUT_SECONDS)
        await self._local.close()
        await self._redis.aclose()
        await self._subscriber.aclose()


def _legacy_events(raw: list[Any]) -> list[InboxEvent]:
    """Events from an instance of an earlier version (during a rolling upgrade): six
    fields, or seven when sessions ended."""
    return [
        InboxEvent(
            int(uid),
            int(seq),
            str(frame),
            message_id,
            float(at),
            bool(ephemeral),
            _ended(rest[0] if rest else None),
        )
        for uid, seq, frame, message_id, at, ephemeral, *rest in raw
    ]


def _ended(value: Any) -> SessionsEnded | None:
    """None, or [reason, only, keep] (ValueError or TypeError if malformed)."""
    if value is None:
        return None
    reason, only, keep = value
    if not isinstance(reason, str) or not isinstance(only, str | None) or not isinstance(keep, str | None):
        raise ValueError("malformed ended sessions")
    return SessionsEnded(reason, only, keep)
