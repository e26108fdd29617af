"""Bounded deletes of expired rows, safe to run from several instances at once."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection


async def delete_batch(conn: AsyncConnection, table: Table, expired: ColumnElement[bool], limit: int) -> int:
    """Delete at most ``limit`` rows of ``table`` matching ``expired``, oldest ids first;
    return how many went.

    In id order, expired rows come first (ids grow with time), so a batch stops early
    without an index on the time columns. On PostgreSQL the rows are taken with
    ``FOR UPDATE SKIP LOCKED``: two instances pruning at once take different rows, and a
    prune never waits on (or deadlocks with) a request's transaction holding some of them;
    what it skips, a later batch or round deletes. SQLite has one writer at a time.
    """
    chosen = select(table.c.id).where(expired).order_by(table.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    result = await conn.execute(delete(table).where(table.c.id.in_(chosen)))
    return int(result.rowcount or 0)
