"""Rate limits counted in the database over a sliding minute (exact, and shared by every
instance): per address for registration, pre-login and WebSocket connects, per account
for messages sent over HTTP (the WebSocket has its per-connection frame budget)."""

from __future__ import annotations

from ..errors import RateLimited
from ..storage import intrusion as store
from .context import ServiceContext, now_ms

WINDOW_MS = 60_000


async def hit(ctx: ServiceContext, action: str, subject: str, limit: int, *, who: str = "address") -> None:
    """Record one ``action`` by ``subject``, or raise RateLimited (429, Retry-After)."""
    now = now_ms()
    async with ctx.database.write() as conn:
        await store.lock_subjects(conn, f"rate:{action}:{subject}")
        await store.prune_rate_events(conn, action, subject, now - WINDOW_MS)
        count, oldest = await store.count_rate_events(conn, action, subject, now - WINDOW_MS)
        if count >= limit:
            ctx.metrics.rate_limited.labels(action).inc()
            wait_ms = (oldest or now) + WINDOW_MS - now
            raise RateLimited(
                f"too many {action} requests from this {who}; try again later",
                headers={"Retry-After": str(max(1, -(-wait_ms // 1000)))},
                retry_after_ms=wait_ms,
            )
        await store.add_rate_event(conn, action, subject, now)
