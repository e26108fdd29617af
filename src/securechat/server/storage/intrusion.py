"""Queries for intrusion detection: login attempts in a window, and blocks."""

from __future__ import annotations

import zlib

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import auth_attempts, blocks, rate_events


async def lock_subjects(conn: AsyncConnection, *subjects: str) -> None:
    """Serialise check-and-insert for these subjects across connections and instances.

    SQLite already serialises write transactions (BEGIN IMMEDIATE); PostgreSQL takes a
    transaction-scoped advisory lock per subject, in a fixed order so two attempts
    cannot deadlock.
    """
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({zlib.crc32(subject.encode()) for subject in subjects}):
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": 0x5EC0, "key": key - 2**31}
        )


async def active_block(conn: AsyncConnection, scope: str, subject: str, now: int) -> RowMapping | None:
    result = await conn.execute(
        select(blocks)
        .where(
            blocks.c.scope == scope,
            blocks.c.subject == subject,
            blocks.c.until > now,
            blocks.c.lifted_at.is_(None),
        )
        .order_by(blocks.c.until.desc())
        .limit(1)
    )
    return result.mappings().first()


async def count_blocks_since(conn: AsyncConnection, scope: str, subject: str, since: int) -> int:
    result = await conn.execute(
        select(func.count())
        .select_from(blocks)
        .where(blocks.c.scope == scope, blocks.c.subject == subject, blocks.c.created_at >= since)
    )
    return int(result.scalar_one())


async def last_block_at(conn: AsyncConnection, scope: str, subject: str) -> int:
    """When the latest block of ``subject`` began (0 if never): failures before it are spent."""
    result = await conn.execute(
        select(func.max(blocks.c.created_at)).where(blocks.c.scope == scope, blocks.c.subject == subject)
    )
    return int(result.scalar_one() or 0)


async def add_block(
    conn: AsyncConnection, *, scope: str, subject: str, reason: str, created_at: int, until: int
) -> None:
    await conn.execute(
        insert(blocks).values(scope=scope, subject=subject, reason=reason, created_at=created_at, until=until)
    )


async def lift_blocks(conn: AsyncConnection, scope: str, subject: str, now: int) -> int:
    result = await conn.execute(
        update(blocks)
        .where(
            blocks.c.scope == scope,
            blocks.c.subject == subject,
            blocks.c.until > now,
            blocks.c.lifted_at.is_(None),
        )
        .values(lifted_at=now)
    )
    return int(result.rowcount or 0)


async def list_active_blocks(conn: AsyncConnection, now: int, limit: int = 200) -> list[RowMapping]:
    result = await conn.execute(
        select(blocks)
        .where(blocks.c.until > now, blocks.c.lifted_at.is_(None))
        .order_by(blocks.c.created_at.desc())
        .limit(limit)
    )
    return list(result.mappings())


async def count_ip_attempts(conn: AsyncConnection, ip: str, since: int) -> int:
    """Failed and in-flight attempts from ``ip`` since ``since``."""
    result = await conn.execute(
        select(func.count())
        .select_from(auth_attempts)
        .where(auth_attempts.c.ip == ip, auth_attempts.c.at >= since)
    )
    return int(result.scalar_one())


async def count_account_failures(conn: AsyncConnection, username: str, since: int) -> int:
    result = await conn.execute(
        select(func.count())
        .select_from(auth_attempts)
        .where(
            auth_attempts.c.username == username,
            auth_attempts.c.at >= since,
            auth_attempts.c.outcome == "failed",
        )
    )
    return int(result.scalar_one())


async def count_pair_attempts(conn: AsyncConnection, ip: str, username: str, since: int) -> int:
    result = await conn.execute(
        select(func.count())
        .select_from(auth_attempts)
        .where(auth_attempts.c.ip == ip, auth_attempts.c.username == username, auth_attempts.c.at >= since)
    )
    return int(result.scalar_one())


async def add_attempt(conn: AsyncConnection, *, ip: str, username: str, at: int) -> int:
    result = await conn.execute(
        insert(auth_attempts)
        .values(ip=ip, username=username, at=at, outcome="pending")
        .returning(auth_attempts.c.id)
    )
    return int(result.scalar_one())


async def mark_attempt_failed(conn: AsyncConnection, attempt_id: int) -> None:
    await conn.execute(update(auth_attempts).where(auth_attempts.c.id == attempt_id).values(outcome="failed"))


async def remove_attempt(conn: AsyncConnection, attempt_id: int) -> None:
    await conn.execute(delete(auth_attempts).where(auth_attempts.c.id == attempt_id))


async def recent_failures(conn: AsyncConnection, since: int, limit: int = 200) -> list[RowMapping]:
    result = await conn.execute(
        select(auth_attempts.c.ip, auth_attempts.c.username, auth_attempts.c.at, auth_attempts.c.outcome)
        .where(auth_attempts.c.at >= since)
        .order_by(auth_attempts.c.at.desc())
        .limit(limit)
    )
    return list(result.mappings())


async def count_rate_events(
    conn: AsyncConnection, action: str, subject: str, since: int
) -> tuple[int, int | None]:
    """How many ``action`` events ``subject`` had since ``since``, and the oldest one's time."""
    result = await conn.execute(
        select(func.count(), func.min(rate_events.c.at)).where(
            rate_events.c.action == action, rate_events.c.subject == subject, rate_events.c.at >= since
        )
    )
    count, oldest = result.one()
    return int(count), (int(oldest) if oldest is not None else None)


async def nth_rate_event_time(
    conn: AsyncConnection, action: str, subject: str, since: int, n: int
) -> int | None:
    """The time of ``subject``'s ``n``-th oldest ``action`` event since ``since`` (0-based)."""
    result = await conn.execute(
        select(rate_events.c.at)
        .where(rate_events.c.action == action, rate_events.c.subject == subject, rate_events.c.at >= since)
        .order_by(rate_events.c.at)
        .offset(n)
        .limit(1)
    )
    at = result.scalar_one_or_none()
    return int(at) if at is not None else None


async def add_rate_event(
    conn: AsyncConnection, action: str, subject: str, at: int, *, count: int = 1
) -> None:
    """Record ``count`` events (one row each, so a window's count stays a plain count)."""
    await conn.execute(insert(rate_events), [{"action": action, "subject": subject, "at": at}] * count)


async def prune_rate_events(conn: AsyncConnection, action: str, subject: str, before: int) -> None:
    await conn.execute(
        delete(rate_events).where(
            rate_events.c.action == action, rate_events.c.subject == subject, rate_events.c.at < before
        )
    )
