"""Rate limits counted in the database over a sliding minute (exact, and shared by every
instance): per address for registration, pre-login and WebSocket connects, per account
for messages sent over HTTP (the WebSocket has its per-connection frame budget), group
changes, receipts and lookups of other users (services/lookups.py).

One row per event in ``rate_events``; rows older than the window are pruned by every
server in the background (services/pruning.py), so the table holds only live windows."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import RateLimited
from ..storage import intrusion as store
from .context import ServiceContext, now_ms

WINDOW_MS = 60_000
# The longest window any limit here counts over: older events are read by none of them.
LONGEST_WINDOW_MS = WINDOW_MS


async def hit(ctx: ServiceContext, action: str, subject: str, limit: int, *, who: str = "address") -> None:
    """Record one ``action`` by ``subject``, or raise RateLimited (429, Retry-After)."""
    now = now_ms()
    async with ctx.database.write() as conn:
        await store.lock_subjects(conn, f"rate:{action}:{subject}")
        await store.prune_rate_events(conn, action, subject, now - WINDOW_MS)
        count, _oldest = await store.count_rate_events(conn, action, subject, now - WINDOW_MS)
        if count >= limit:
            raise await _refusal(ctx, conn, action, subject, count, limit, now, who)
        await store.add_rate_event(conn, action, subject, now)


async def check(ctx: ServiceContext, action: str, subject: str, limit: int, *, who: str = "address") -> None:
    """Raise RateLimited if ``subject`` has nothing left of its budget now; record nothing."""
    now = now_ms()
    async with ctx.database.read() as conn:
        count, _oldest = await store.count_rate_events(conn, action, subject, now - WINDOW_MS)
        if count >= limit:
            raise await _refusal(ctx, conn, action, subject, count, limit, now, who)


async def charge(
    ctx: ServiceContext, action: str, subject: str, limit: int, cost: int, *, who: str = "address"
) -> None:
    """Record ``cost`` events of ``action`` by ``subject`` whatever the outcome, then raise
    RateLimited if they overdrew the budget.

    For an answer already worked out whose information must be paid for before it is
    given: the caller gives it only if this returns, and pays even if it does not.
    """
    now = now_ms()
    async with ctx.database.write() as conn:
        await store.lock_subjects(conn, f"rate:{action}:{subject}")
        await store.add_rate_event(conn, action, subject, now, count=cost)
        count, _oldest = await store.count_rate_events(conn, action, subject, now - WINDOW_MS)
        if count > limit:
            raise await _refusal(ctx, conn, action, subject, count, limit, now, who)


async def _refusal(
    ctx: ServiceContext,
    conn: AsyncConnection,
    action: str,
    subject: str,
    count: int,
    limit: int,
    now: int,
    who: str,
) -> RateLimited:
    """429 with the time until enough of the window's events expire for one more."""
    ctx.metrics.rate_limited.labels(action).inc()
    # The (count - limit)-th oldest event in the window (0-based) frees the first slot.
    freeing = await store.nth_rate_event_time(conn, action, subject, now - WINDOW_MS, max(0, count - limit))
    wait_ms = (freeing if freeing is not None else now) + WINDOW_MS - now
    return RateLimited(
        f"too many {action} requests from this {who}; try again later",
        headers={"Retry-After": str(max(1, -(-wait_ms // 1000)))},
        retry_after_ms=wait_ms,
    )
