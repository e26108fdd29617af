"""Fan-out of inbox events to the connections of a user.

The database is the source of truth; an event only says "entry ``seq`` exists, and
here is its frame". A connection that sees a gap in sequence numbers (an event lost,
or published by another instance) reads the missing entries from the database, so a
lost event costs latency, never a message.

The same fan-out tells a user's connections that sessions ended (:class:`SessionsEnded`):
those connections close at once, on every instance. The database stays the source of
truth there too: a connection re-checks its session periodically, so a lost event costs
time, never a revocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SessionsEnded:
    """Some of a user's sessions ended (committed): their connections must close.

    ``only``: that one session; otherwise every session of the user but ``keep`` (if
    any). ``reason`` says why, for the close frame and the log: ``logout``, ``revoked``,
    ``password_changed``, ``account_disabled``, ``token_reuse``.
    """

    reason: str
    only: str | None = None
    keep: str | None = None

    def covers(self, session_id: str) -> bool:
        if self.only is not None:
            return session_id == self.only
        return session_id != self.keep


@dataclass(slots=True)
class InboxEvent:
    user_id: int
    seq: int
    frame: str
    # For message entries: lets the sending connection skip the copy of its own message.
    message_id: str | None = None
    # Wall-clock time of the commit that made it (for the delivery-latency metric).
    committed_at: float = 0.0
    # Not an inbox entry (no seq, not stored): a typing indicator, passed on as is.
    ephemeral: bool = False
    # Not an entry either (ephemeral, no frame): sessions of the user that ended.
    ended: SessionsEnded | None = None


# A subscription's queue holds events, or None when it overflowed and the connection
# must re-read its inbox from the database.
EventQueue = asyncio.Queue[InboxEvent | None]


class Broker(Protocol):
    async def publish(self, events: list[InboxEvent]) -> None:
        """Deliver to local subscribers at once; reaching other instances, if any, never
        waits here (an acknowledgement must not wait on Redis)."""
        ...

    def subscribe(self, user_id: int) -> AbstractAsyncContextManager[EventQueue]: ...

    def status(self) -> str:
        """``in_process``, or for a shared broker ``ok`` or ``degraded`` (for /readyz)."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """Fan-out within one process: enough for one server instance."""

    QUEUE_SIZE = 1024

    def __init__(self) -> None:
        self._queues: dict[int, set[EventQueue]] = {}

    async def publish(self, events: list[InboxEvent]) -> None:
        for event in events:
            for queue in self._queues.get(event.user_id, ()):
                _offer(queue, event)

    @asynccontextmanager
    async def subscribe(self, user_id: int) -> AsyncIterator[EventQueue]:
        queue: EventQueue = asyncio.Queue(self.QUEUE_SIZE)
        self._queues.setdefault(user_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(user_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[user_id]

    def has_subscribers(self, user_id: int) -> bool:
        return user_id in self._queues

    def subscribed_users(self) -> list[int]:
        return list(self._queues)

    def resync(self, user_ids: list[int] | None = None) -> None:
        """Tell those users' connections (everyone's if None) to re-read their inboxes
        from the database: events for them may have been lost on the way."""
        targets = (
            self._queues if user_ids is None else {u: self._queues[u] for u in user_ids if u in self._queues}
        )
        for queues in list(targets.values()):
            for queue in list(queues):
                _offer_resync(queue)

    def status(self) -> str:
        return "in_process"

    async def close(self) -> None:
        self._queues.clear()


def _offer_resync(queue: EventQueue) -> None:
    try:
        queue.put_nowait(None)
    except asyncio.QueueFull:
        # Full: the overflow path leaves a resync marker (and keeps ended sessions).
        _offer(queue, InboxEvent(0, 0, "", ephemeral=True))


def _offer(queue: EventQueue, event: InboxEvent) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:
        # A slow consumer: drop what is queued and tell it to resync from storage. Ended
        # sessions are kept: storage cannot tell a connection that its own session ended.
        kept = [event] if event.ended is not None else []
        while not queue.empty():
            dropped = queue.get_nowait()
            if dropped is not None and dropped.ended is not None:
                kept.append(dropped)
        queue.put_nowait(None)
        for ended in kept[: queue.maxsize - 1]:
            queue.put_nowait(ended)
