"""Device challenges (PROTOCOL.md 15.16, device credentials): the nonces a device signs,
kept as hashes, each good once on any instance sharing the database; and the device that
proved itself in a session, which the sessions view shows."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import device_challenges, devices, sessions


async def add_challenge(
    conn: AsyncConnection,
    nonce_hash: bytes,
    user_id: int,
    device_id: str,
    session_id: str,
    expires_at: int,
    now: int,
    max_pending: int,
) -> None:
    """Store a challenge; first drop the account's expired ones, and the oldest of this
    device's in this session past ``max_pending`` (another session's are not touched), so
    the table stays bounded by what is in use."""
    await conn.execute(
        delete(device_challenges).where(
            and_(device_challenges.c.user_id == user_id, device_challenges.c.expires_at <= now)
        )
    )
    mine = and_(
        device_challenges.c.user_id == user_id,
        device_challenges.c.device_id == device_id,
        device_challenges.c.session_id == session_id,
    )
    pending = int(
        (await conn.execute(select(func.count()).select_from(device_challenges).where(mine))).scalar_one()
    )
    if pending >= max_pending:
        oldest = (
            select(device_challenges.c.nonce_hash)
            .where(mine)
            .order_by(device_challenges.c.expires_at)
            .limit(pending - max_pending + 1)
        )
        await conn.execute(delete(device_challenges).where(device_challenges.c.nonce_hash.in_(oldest)))
    await conn.execute(
        insert(device_challenges).values(
            nonce_hash=nonce_hash,
            user_id=user_id,
            device_id=device_id,
            session_id=session_id,
            expires_at=expires_at,
        )
    )


def dead_challenges(now: int) -> ColumnElement[bool]:
    """Challenges no answer can use at ``now``: expired, or of a session that has ended
    (revoked, expired or gone; ``issue`` only takes a challenge of the caller's session,
    which must be live)."""
    live_session = exists().where(
        and_(
            sessions.c.id == device_challenges.c.session_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
        )
    )
    return or_(device_challenges.c.expires_at <= now, ~live_session)


async def delete_dead_challenges(conn: AsyncConnection, now: int, limit: int) -> int:
    """Delete at most ``limit`` dead challenges (as storage/pruning.py's batches, keyed by
    the nonce hash since the table has no id); return how many went."""
    chosen = select(device_challenges.c.nonce_hash).where(dead_challenges(now)).limit(limit)
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    result = await conn.execute(delete(device_challenges).where(device_challenges.c.nonce_hash.in_(chosen)))
    return int(result.rowcount or 0)


async def take_challenge(conn: AsyncConnection, nonce_hash: bytes) -> RowMapping | None:
    """Delete the challenge and return it, in one statement: of two answers to one nonce,
    on any instances, only one gets it."""
    result = await conn.execute(
        delete(device_challenges)
        .where(device_challenges.c.nonce_hash == nonce_hash)
        .returning(
            device_challenges.c.user_id,
            device_challenges.c.device_id,
            device_challenges.c.session_id,
            device_challenges.c.expires_at,
        )
    )
    return result.mappings().first()


async def get_listed_device(conn: AsyncConnection, user_id: int, device_id: str) -> RowMapping | None:
    """The device's signing key and when it was added to the list, if it is listed now."""
    query = select(devices.c.signing_key, devices.c.added_at).where(
        and_(devices.c.user_id == user_id, devices.c.device_id == device_id)
    )
    return (await conn.execute(query)).mappings().first()


async def set_session_device(conn: AsyncConnection, user_id: int, session_id: str, device_id: str) -> None:
    """Record ``device_id`` as the device of the session, replacing any before it (a
    session is one client). Only a session of ``user_id`` is touched, so a device is never
    put on another account's session."""
    await conn.execute(
        update(sessions)
        .where(and_(sessions.c.id == session_id, sessions.c.user_id == user_id))
        .values(device_id=device_id)
    )
