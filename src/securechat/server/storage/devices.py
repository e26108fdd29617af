"""Protocol v2 device lists and the device rows that follow them (PROTOCOL.md 15.3).

Each account has at most one stored list: the highest version it published, kept as
the client signed it. ``devices`` mirrors that list, one row per device, and carries
what the prekeys of a device need (services/prekeys.py). Replacing a list deletes the
rows, and so the prekeys, of every device the new list leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .device_inbox import delete_unreferenced_bodies
from .tables import device_inbox, device_inbox_floors, device_lists, devices, one_time_prekeys, users

Outcome = Literal["stored", "unchanged", "stale"]


@dataclass(frozen=True)
class ListWrite:
    """What storing a list did: ``stale`` (nothing), ``unchanged`` (the same list again)
    or ``stored``, with the ids of the devices it added and removed."""

    outcome: Outcome
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


async def get_user_id(conn: AsyncConnection, username: str) -> int | None:
    result = await conn.execute(select(users.c.id).where(users.c.username == username))
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


async def get_signing_key(conn: AsyncConnection, user_id: int) -> bytes | None:
    """The account's registered v1 signing key (SPKI DER), which v2 takes as its
    account identity key (PROTOCOL.md 15.12)."""
    result = await conn.execute(select(users.c.signing_key).where(users.c.id == user_id))
    value = result.scalar_one_or_none()
    return None if value is None else bytes(value)


async def get_list(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """The stored list: version, list_hash, document (the JSON text as published)."""
    query = select(device_lists.c.version, device_lists.c.list_hash, device_lists.c.document).where(
        device_lists.c.user_id == user_id
    )
    return (await conn.execute(query)).mappings().first()


async def put_list(
    conn: AsyncConnection,
    user_id: int,
    version: int,
    list_hash: bytes,
    document: str,
    listed: Sequence[tuple[str, bytes]],
    now: int,
) -> ListWrite:
    """Store a checked list if its version is above the stored one, and make ``devices``
    follow it. ``listed`` is each device's (id, signing key).

    The stored row is read ``FOR UPDATE`` (PostgreSQL; SQLite has one writer), so of two
    lists published at once on different instances the second sees the first's version.
    Two first lists at once: the second insert fails on the key (IntegrityError).
    """
    current = (
        (
            await conn.execute(
                select(device_lists.c.version, device_lists.c.list_hash)
                .where(device_lists.c.user_id == user_id)
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    values = {"version": version, "list_hash": list_hash, "document": document, "updated_at": now}
    if current is None:
        await conn.execute(insert(device_lists).values(user_id=user_id, **values))
    else:
        stored_version = int(current["version"])
        if version < stored_version or (
            version == stored_version and bytes(current["list_hash"]) != list_hash
        ):
            return ListWrite("stale")
        if version == stored_version:
            return ListWrite("unchanged")
        await conn.execute(update(device_lists).where(device_lists.c.user_id == user_id).values(**values))

    existing = {
        row.device_id: int(row.inbox_head)
        for row in await conn.execute(
            select(devices.c.device_id, devices.c.inbox_head).where(devices.c.user_id == user_id)
        )
    }
    keys = dict(listed)
    removed = sorted(existing.keys() - keys.keys())
    added = sorted(keys.keys() - existing.keys())
    floors: dict[str, int] = {}
    if added:
        # A device listed again goes on from its last inbox position: positions are never
        # given twice to one device id, or it would skip (as already seen) the entries
        # numbered at or below the position it had stored.
        floor_rows = and_(
            device_inbox_floors.c.user_id == user_id, device_inbox_floors.c.device_id.in_(added)
        )
        floors = {
            row.device_id: int(row.inbox_head)
            for row in await conn.execute(
                select(device_inbox_floors.c.device_id, device_inbox_floors.c.inbox_head).where(floor_rows)
            )
        }
        await conn.execute(delete(device_inbox_floors).where(floor_rows))
    if removed:
        await conn.execute(
            insert(device_inbox_floors),
            [{"user_id": user_id, "device_id": ident, "inbox_head": existing[ident]} for ident in removed],
        )
        # The foreign keys would cascade; deleting here does not depend on them. A revoked
        # device's undelivered v2 inbox entries go too: it must not read them later.
        pending = [
            row.message_pk
            for row in await conn.execute(
                select(device_inbox.c.message_pk).where(
                    and_(device_inbox.c.user_id == user_id, device_inbox.c.device_id.in_(removed))
                )
            )
        ]
        for table in (one_time_prekeys, device_inbox, devices):
            await conn.execute(
                delete(table).where(and_(table.c.user_id == user_id, table.c.device_id.in_(removed)))
            )
        await delete_unreferenced_bodies(conn, pending, now)
    if added:
        await conn.execute(
            insert(devices),
            [
                {
                    "user_id": user_id,
                    "device_id": ident,
                    "signing_key": keys[ident],
                    "added_at": now,
                    "inbox_head": floors.get(ident, 0),
                }
                for ident in added
            ],
        )
    return ListWrite("stored", tuple(added), tuple(removed))


async def get_device(conn: AsyncConnection, user_id: int, device_id: str) -> RowMapping | None:
    """A device of the account's current list: its signing key and signed prekey."""
    query = select(devices.c.device_id, devices.c.signing_key, devices.c.signed_prekey).where(
        and_(devices.c.user_id == user_id, devices.c.device_id == device_id)
    )
    return (await conn.execute(query)).mappings().first()


async def get_devices(conn: AsyncConnection, user_id: int) -> list[RowMapping]:
    """Every device of the account's current list, by id: id and signed prekey."""
    query = (
        select(devices.c.device_id, devices.c.signed_prekey)
        .where(devices.c.user_id == user_id)
        .order_by(devices.c.device_id)
    )
    return list((await conn.execute(query)).mappings())
