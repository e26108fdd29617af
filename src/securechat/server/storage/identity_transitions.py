"""Identity-key transitions of an account (PROTOCOL.md 15.11, 15.16).

An account's identity key is the registered v1 signing key (15.12) until its first
transition; after that, the ``new_key`` of its last one. ``identity_transitions`` keeps
every transition as the client signed it, numbered 1, 2, … per account; a key never
comes back (``new_key`` unique per account, and never the registered key: the service
checks that).
"""

from __future__ import annotations

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from ...protocol.der import check_ed25519_spki
from .tables import account_key_seals, device_lists, identity_transitions, users


async def lock_account_key(conn: AsyncConnection, user_id: int) -> None:
    """Hold the account's stored device list row ``FOR UPDATE`` until the transaction ends
    (PostgreSQL; SQLite has one writer). A rotation takes it first, and so does a password
    change that seals the account key again: that one reads the current key only after,
    so it never stores a seal of a key a rotation retired meanwhile. The same row that
    ``devices.put_list`` locks, so no new lock order is made."""
    await conn.execute(
        select(device_lists.c.user_id).where(device_lists.c.user_id == user_id).with_for_update()
    )


async def registered_key(conn: AsyncConnection, user_id: int) -> bytes | None:
    """The account's registered v1 signing key as a raw 32-byte Ed25519 key."""
    result = await conn.execute(select(users.c.signing_key).where(users.c.id == user_id))
    spki = result.scalar_one_or_none()
    # Registration accepted only this form (5.1), so this does not fail for a stored key.
    return None if spki is None else check_ed25519_spki(bytes(spki))


async def chain(conn: AsyncConnection, user_id: int) -> list[RowMapping]:
    """Every transition of the account, oldest first: seq, old_key, new_key, at, document."""
    query = (
        select(
            identity_transitions.c.seq,
            identity_transitions.c.old_key,
            identity_transitions.c.new_key,
            identity_transitions.c.at,
            identity_transitions.c.document,
        )
        .where(identity_transitions.c.user_id == user_id)
        .order_by(identity_transitions.c.seq)
    )
    return list((await conn.execute(query)).mappings())


async def last(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    query = (
        select(identity_transitions.c.seq, identity_transitions.c.new_key, identity_transitions.c.at)
        .where(identity_transitions.c.user_id == user_id)
        .order_by(identity_transitions.c.seq.desc())
        .limit(1)
    )
    return (await conn.execute(query)).mappings().first()


async def current_key(conn: AsyncConnection, user_id: int) -> bytes | None:
    """The account's identity key now (None: no such account)."""
    row = await last(conn, user_id)
    if row is not None:
        return bytes(row["new_key"])
    return await registered_key(conn, user_id)


async def key_was_used(conn: AsyncConnection, user_id: int, key: bytes) -> bool:
    """Was ``key`` ever this account's identity key (registered or rotated to)?"""
    if key == await registered_key(conn, user_id):
        return True
    query = select(identity_transitions.c.seq).where(
        and_(identity_transitions.c.user_id == user_id, identity_transitions.c.new_key == key)
    )
    return (await conn.execute(query)).first() is not None


async def add(
    conn: AsyncConnection,
    user_id: int,
    seq: int,
    old_key: bytes,
    new_key: bytes,
    at: int,
    document: str,
    now: int,
) -> None:
    """Insert transition ``seq``; two rotations from one key at once collide on the key
    (IntegrityError), so only one of them is stored."""
    await conn.execute(
        insert(identity_transitions).values(
            user_id=user_id,
            seq=seq,
            old_key=old_key,
            new_key=new_key,
            at=at,
            document=document,
            created_at=now,
        )
    )


async def account_key_seal(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """The account key sealed under the password (account_key, document), if it rotated."""
    query = select(account_key_seals.c.account_key, account_key_seals.c.document).where(
        account_key_seals.c.user_id == user_id
    )
    return (await conn.execute(query)).mappings().first()


async def put_account_key_seal(
    conn: AsyncConnection, user_id: int, account_key: bytes, document: str, now: int
) -> None:
    """Replace the account's seal (a rotation seals a new key, a password change re-seals)."""
    await conn.execute(delete(account_key_seals).where(account_key_seals.c.user_id == user_id))
    await conn.execute(
        insert(account_key_seals).values(
            user_id=user_id, account_key=account_key, document=document, updated_at=now
        )
    )
