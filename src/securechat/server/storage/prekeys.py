"""Protocol v2 prekeys of listed devices (PROTOCOL.md 15.4, 15.16).

Prekey ids only go up: each device row keeps the lowest id of each kind it may still
use, so no id is ever stored twice for one device, not even after its one-time prekey
was claimed and deleted. A prekey sent again under an id below that mark is accepted
only if it is still stored exactly as sent (a retried upload) and refused otherwise.

A claim deletes one one-time prekey in the statement that returns it. On PostgreSQL
the row is chosen ``FOR UPDATE SKIP LOCKED``: concurrent claims on any instance take
different rows and none waits for another; SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import devices, one_time_prekeys

Refusal = Literal["not_listed", "reused", "too_many"]


@dataclass(frozen=True)
class PrekeyWrite:
    """``refused`` is None when the prekeys are stored (or were, exactly so, before)."""

    refused: Refusal | None
    stored: int = 0  # new rows
    remaining: int = 0  # unclaimed one-time prekeys of the device afterwards
    next_prekey_id: int = 0


def _device(user_id: int, device_id: str) -> ColumnElement[bool]:
    return and_(devices.c.user_id == user_id, devices.c.device_id == device_id)


def _prekeys_of(user_id: int, device_id: str) -> ColumnElement[bool]:
    return and_(one_time_prekeys.c.user_id == user_id, one_time_prekeys.c.device_id == device_id)


async def put_signed_prekey(
    conn: AsyncConnection, user_id: int, device_id: str, prekey_id: int, prekey: str
) -> PrekeyWrite:
    """Replace the device's signed prekey with ``prekey`` (its JSON) under ``prekey_id``."""
    row = (
        (
            await conn.execute(
                select(devices.c.signed_prekey, devices.c.next_signed_prekey_id)
                .where(_device(user_id, device_id))
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return PrekeyWrite("not_listed")
    floor = int(row["next_signed_prekey_id"])
    if prekey_id < floor:
        # The current signed prekey sent again (a retry) is no reuse; anything else is.
        return PrekeyWrite(None if row["signed_prekey"] == prekey else "reused", next_prekey_id=floor)
    await conn.execute(
        update(devices)
        .where(_device(user_id, device_id))
        .values(signed_prekey=prekey, next_signed_prekey_id=prekey_id + 1)
    )
    return PrekeyWrite(None, stored=1, next_prekey_id=prekey_id + 1)


async def count_one_time_prekeys(conn: AsyncConnection, user_id: int, device_id: str) -> int:
    result = await conn.execute(
        select(func.count()).select_from(one_time_prekeys).where(_prekeys_of(user_id, device_id))
    )
    return int(result.scalar_one())


async def add_one_time_prekeys(
    conn: AsyncConnection, user_id: int, device_id: str, prekeys: Sequence[tuple[int, str]], limit: int
) -> PrekeyWrite:
    """Store a batch of (id, JSON) with distinct ids, unless one reuses an id or the
    device would hold more than ``limit`` unclaimed; all or nothing."""
    floor_row = (
        await conn.execute(
            select(devices.c.next_one_time_prekey_id).where(_device(user_id, device_id)).with_for_update()
        )
    ).first()
    if floor_row is None:
        return PrekeyWrite("not_listed")
    floor = int(floor_row[0])
    again = {prekey_id: prekey for prekey_id, prekey in prekeys if prekey_id < floor}
    fresh = [(prekey_id, prekey) for prekey_id, prekey in prekeys if prekey_id >= floor]
    if again:
        stored = {
            int(row.prekey_id): row.prekey
            for row in await conn.execute(
                select(one_time_prekeys.c.prekey_id, one_time_prekeys.c.prekey).where(
                    and_(_prekeys_of(user_id, device_id), one_time_prekeys.c.prekey_id.in_(sorted(again)))
                )
            )
        }
        # Claimed (so deleted) or stored with another key: the id was used.
        if any(stored.get(prekey_id) != prekey for prekey_id, prekey in again.items()):
            return PrekeyWrite("reused", next_prekey_id=floor)
    remaining = await count_one_time_prekeys(conn, user_id, device_id)
    if remaining + len(fresh) > limit:
        return PrekeyWrite("too_many", remaining=remaining, next_prekey_id=floor)
    if fresh:
        await conn.execute(
            insert(one_time_prekeys),
            [
                {"user_id": user_id, "device_id": device_id, "prekey_id": prekey_id, "prekey": prekey}
                for prekey_id, prekey in fresh
            ],
        )
        floor = max(prekey_id for prekey_id, _ in fresh) + 1
        await conn.execute(
            update(devices).where(_device(user_id, device_id)).values(next_one_time_prekey_id=floor)
        )
    return PrekeyWrite(None, stored=len(fresh), remaining=remaining + len(fresh), next_prekey_id=floor)


async def claim_one_time_prekey(conn: AsyncConnection, user_id: int, device_id: str) -> str | None:
    """Delete and return the device's oldest unclaimed one-time prekey (its JSON); None
    if it has none left (or, on PostgreSQL, if every one left is being claimed by
    another transaction at this moment)."""
    oldest = (
        select(one_time_prekeys.c.prekey_id)
        .where(_prekeys_of(user_id, device_id))
        .order_by(one_time_prekeys.c.prekey_id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(
        delete(one_time_prekeys)
        .where(and_(_prekeys_of(user_id, device_id), one_time_prekeys.c.prekey_id == oldest))
        .returning(one_time_prekeys.c.prekey)
    )
    row = result.first()
    return None if row is None else str(row[0])
