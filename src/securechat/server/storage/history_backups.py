"""History backups (PROTOCOL.md 15.10.1): one sealed blob per account, the latest."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import history_backups


async def get_meta(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """Version and size of the stored backup, without the blob."""
    query = select(history_backups.c.version, history_backups.c.size).where(
        history_backups.c.user_id == user_id
    )
    return (await conn.execute(query)).mappings().one_or_none()


async def get(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    query = select(history_backups).where(history_backups.c.user_id == user_id)
    return (await conn.execute(query)).mappings().one_or_none()


async def put(
    conn: AsyncConnection, user_id: int, version: int, sealed: bytes, now: int, *, replace: bool
) -> None:
    values = {"version": version, "sealed": sealed, "size": len(sealed), "updated_at": now}
    if replace:
        await conn.execute(
            update(history_backups).where(history_backups.c.user_id == user_id).values(**values)
        )
    else:
        await conn.execute(insert(history_backups).values(user_id=user_id, **values))


async def remove(conn: AsyncConnection, user_id: int) -> int:
    """Delete the backup; the bytes it held (0 if there was none)."""
    result = await conn.execute(
        delete(history_backups).where(history_backups.c.user_id == user_id).returning(history_backups.c.size)
    )
    size = result.scalar_one_or_none()
    return int(size or 0)
