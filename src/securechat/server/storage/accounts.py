"""Users, sessions and refresh tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import refresh_tokens, sessions, users


class DuplicateUsername(Exception):
    pass


async def add_user(conn: AsyncConnection, **values: Any) -> int:
    try:
        result = await conn.execute(insert(users).values(**values).returning(users.c.id))
    except IntegrityError as exc:
        raise DuplicateUsername() from exc
    return int(result.scalar_one())


async def get_user_by_name(conn: AsyncConnection, username: str) -> RowMapping | None:
    result = await conn.execute(select(users).where(users.c.username == username))
    return result.mappings().first()


async def get_user_by_id(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    result = await conn.execute(select(users).where(users.c.id == user_id))
    return result.mappings().first()


async def update_user(conn: AsyncConnection, user_id: int, **values: Any) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def add_session(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(sessions).values(**values))


async def get_session(conn: AsyncConnection, session_id: str) -> RowMapping | None:
    result = await conn.execute(select(sessions).where(sessions.c.id == session_id))
    return result.mappings().first()


async def get_active_session(conn: AsyncConnection, session_id: str, now: int) -> RowMapping | None:
    """The session with its user's name and flags, if neither is revoked or expired."""
    query = (
        select(sessions, users.c.username, users.c.disabled, users.c.is_admin)
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            and_(sessions.c.id == session_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
        )
    )
    result = await conn.execute(query)
    return result.mappings().first()


async def get_sessions_for_user(conn: AsyncConnection, user_id: int, now: int) -> list[RowMapping]:
    query = (
        select(sessions)
        .where(
            and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
        )
        .order_by(sessions.c.created_at)
    )
    return list((await conn.execute(query)).mappings())


async def revoke_sessions(
    conn: AsyncConnection, user_id: int, now: int, *, only: str | None = None, keep: str | None = None
) -> int:
    condition = and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if only is not None:
        condition = and_(condition, sessions.c.id == only)
    if keep is not None:
        condition = and_(condition, sessions.c.id != keep)
    result = await conn.execute(update(sessions).where(condition).values(revoked_at=now))
    return int(result.rowcount or 0)


async def touch_session(conn: AsyncConnection, session_id: str, now: int, expires_at: int) -> None:
    await conn.execute(
        update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now, expires_at=expires_at)
    )


async def add_refresh_token(conn: AsyncConnection, token_hash: bytes, session_id: str, now: int) -> None:
    await conn.execute(
        insert(refresh_tokens).values(token_hash=token_hash, session_id=session_id, created_at=now)
    )


async def get_refresh_token(conn: AsyncConnection, token_hash: bytes) -> RowMapping | None:
    result = await conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
    return result.mappings().first()


async def mark_refresh_token_used(conn: AsyncConnection, token_hash: bytes, now: int) -> bool:
    """Mark a token used; False if it already was (a concurrent or repeated use)."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(and_(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None)))
        .values(used_at=now)
    )
    return bool(result.rowcount)


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())
