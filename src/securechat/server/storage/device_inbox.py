"""Protocol v2 per-device inboxes (PROTOCOL.md 15.8, 15.16): a message stored once, and
each target device's own numbered entries carrying only its slot."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversation_members, conversations, device_inbox, device_lists, devices, v2_messages


async def get_message(conn: AsyncConnection, message_id: str) -> RowMapping | None:
    query = select(
        v2_messages.c.id, v2_messages.c.sender_id, v2_messages.c.envelope_sha256, v2_messages.c.server_ts
    ).where(v2_messages.c.message_id == message_id)
    return (await conn.execute(query)).mappings().first()


async def ensure_direct_conversation(
    conn: AsyncConnection, conversation_id: str, member_ids: Sequence[int], now: int
) -> None:
    """Record the direct conversation and its two members if it is new, as a v1 message
    does: the admin console's filters and recipients (metadata the server has anyway)
    then cover v2 messages too. Idempotent on any instance: a row another transaction
    stored first is left as it is."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        dialect_insert(conversations)
        .values(id=conversation_id, kind="direct", created_at=now)
        .on_conflict_do_nothing()
    )
    await conn.execute(
        dialect_insert(conversation_members)
        .values(
            [{"conversation_id": conversation_id, "user_id": uid, "joined_at": now} for uid in member_ids]
        )
        .on_conflict_do_nothing()
    )


async def get_device_ids(conn: AsyncConnection, user_id: int) -> list[str]:
    query = select(devices.c.device_id).where(devices.c.user_id == user_id).order_by(devices.c.device_id)
    return [row.device_id for row in await conn.execute(query)]


async def lock_list_versions(conn: AsyncConnection, user_ids: Sequence[int]) -> dict[int, int]:
    """The accounts' stored list versions, locked ``FOR SHARE`` until the transaction
    ends (PostgreSQL; SQLite has one writer): a list publication, which locks its row
    ``FOR UPDATE``, waits. In user id order, as every taker of these locks goes."""
    query = (
        select(device_lists.c.user_id, device_lists.c.version)
        .where(device_lists.c.user_id.in_(sorted(user_ids)))
        .order_by(device_lists.c.user_id)
        .with_for_update(read=True)
    )
    return {int(row.user_id): int(row.version) for row in await conn.execute(query)}


async def add_message(
    conn: AsyncConnection,
    message_id: str,
    conversation_id: str,
    sender_id: int,
    envelope_sha256: bytes,
    envelope: str,
    slots: Mapping[tuple[int, str], str],
    now: int,
    size: int,
) -> int | None:
    """Store the message and one entry per (user id, device id) -> slot, each at the
    next position of that device's inbox. None (and nothing stored: the caller rolls
    back) if one of the devices is no longer listed.

    Device rows are locked in one order (``FOR UPDATE``), so two messages to the same
    devices on two instances take positions one after the other and cannot deadlock.
    """
    result = await conn.execute(
        insert(v2_messages)
        .values(
            message_id=message_id,
            conversation_id=conversation_id,
            sender_id=sender_id,
            envelope_sha256=envelope_sha256,
            envelope=envelope,
            server_ts=now,
            size=size,
        )
        .returning(v2_messages.c.id)
    )
    message_pk = int(result.scalar_one())
    for (user_id, device_id), slot in sorted(slots.items()):
        head = (
            await conn.execute(
                select(devices.c.inbox_head)
                .where(and_(devices.c.user_id == user_id, devices.c.device_id == device_id))
                .with_for_update()
            )
        ).scalar_one_or_none()
        if head is None:
            return None
        seq = int(head) + 1
        await conn.execute(
            update(devices)
            .where(and_(devices.c.user_id == user_id, devices.c.device_id == device_id))
            .values(inbox_head=seq)
        )
        await conn.execute(
            insert(device_inbox).values(
                user_id=user_id,
                device_id=device_id,
                seq=seq,
                message_pk=message_pk,
                slot=slot,
                created_at=now,
            )
        )
    return message_pk


async def get_positions(conn: AsyncConnection, message_pk: int) -> list[tuple[int, str, int]]:
    """(user id, device id, position) of each entry the message made."""
    query = select(device_inbox.c.user_id, device_inbox.c.device_id, device_inbox.c.seq).where(
        device_inbox.c.message_pk == message_pk
    )
    return [(int(row.user_id), str(row.device_id), int(row.seq)) for row in await conn.execute(query)]


async def get_entries(
    conn: AsyncConnection, user_id: int, device_id: str, since: int, limit: int, max_bytes: int
) -> tuple[list[RowMapping], int]:
    """The device's entries after ``since`` (oldest first, at most ``limit``, and no more
    than ``max_bytes`` of stored envelope and slot text, but at least one) with their
    stored message, and its inbox head.

    The sizes are read first, without the texts, so a page of large envelopes is never
    loaded only to be cut.
    """
    head = (
        await conn.execute(
            select(devices.c.inbox_head).where(
                and_(devices.c.user_id == user_id, devices.c.device_id == device_id)
            )
        )
    ).scalar_one_or_none()
    after = and_(
        device_inbox.c.user_id == user_id,
        device_inbox.c.device_id == device_id,
        device_inbox.c.seq > since,
    )
    sizes = await conn.execute(
        select(
            device_inbox.c.seq,
            (func.length(device_inbox.c.slot) + func.length(v2_messages.c.envelope)).label("size"),
        )
        .join(v2_messages, v2_messages.c.id == device_inbox.c.message_pk)
        .where(after)
        .order_by(device_inbox.c.seq)
        .limit(limit)
    )
    last: int | None = None
    total = 0
    for row in sizes:
        total += int(row.size)
        if last is not None and total > max_bytes:
            break
        last = int(row.seq)
    if last is None:
        return [], int(head or 0)
    query = (
        select(
            device_inbox.c.seq,
            device_inbox.c.slot,
            v2_messages.c.envelope,
            v2_messages.c.server_ts,
        )
        .join(v2_messages, v2_messages.c.id == device_inbox.c.message_pk)
        .where(and_(after, device_inbox.c.seq <= last))
        .order_by(device_inbox.c.seq)
    )
    return list((await conn.execute(query)).mappings()), int(head or 0)


async def acknowledge(conn: AsyncConnection, user_id: int, device_id: str, seq: int, now: int) -> int:
    """Delete the device's entries up to ``seq``, then the bodies of the messages no
    device still waits for. Returns how many entries went."""
    mine = and_(device_inbox.c.user_id == user_id, device_inbox.c.device_id == device_id)
    pks = [
        row.message_pk
        for row in await conn.execute(
            select(device_inbox.c.message_pk).where(and_(mine, device_inbox.c.seq <= seq))
        )
    ]
    if not pks:
        return 0
    await conn.execute(delete(device_inbox).where(and_(mine, device_inbox.c.seq <= seq)))
    await delete_unreferenced_bodies(conn, pks, now)
    return len(pks)


# Ids per DELETE: PostgreSQL (asyncpg) takes at most 32,767 parameters in a statement, and
# a flooded inbox can name more messages than that.
_DELETE_CHUNK = 1000


# What of a stored envelope stays once its body is deleted (PROTOCOL.md 15.16): the header.
_HEADER_MEMBERS = ("v", "message_id", "conversation_id", "sender", "sender_device", "sent_at", "targets")


def header_only(envelope: str) -> str:
    """The stored envelope without its ciphertext (``iv``, ``body``) and signature; ``{}``
    for anything stored that is not an envelope (nothing of it is kept)."""
    try:
        document = json.loads(envelope)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return "{}"
    return json.dumps({k: document[k] for k in _HEADER_MEMBERS if k in document}, separators=(",", ":"))


async def delete_unreferenced_bodies(conn: AsyncConnection, message_pks: Sequence[int], now: int) -> None:
    """The messages among ``message_pks`` that no inbox entry names any more lose their
    body: the envelope is cut to its header and ``body_deleted_at`` set. Nothing can
    serve them again; the metadata stays for the admin log (as a v1 message's does)."""
    ordered = sorted(set(message_pks))
    for start in range(0, len(ordered), _DELETE_CHUNK):
        chunk = ordered[start : start + _DELETE_CHUNK]
        if conn.dialect.name == "postgresql":
            # Two devices acknowledging a message's last two entries at once would each still
            # see the other's entry (not yet committed) and both keep the body. Locking the
            # message rows (in id order, as every taker does) makes the second wait for the
            # first and then see its deletion, so one of them cuts it. SQLite has one writer.
            await conn.execute(
                select(v2_messages.c.id)
                .where(and_(v2_messages.c.id.in_(chunk), v2_messages.c.body_deleted_at.is_(None)))
                .order_by(v2_messages.c.id)
                .with_for_update()
            )
        rows = await conn.execute(
            select(v2_messages.c.id, v2_messages.c.envelope).where(
                and_(
                    v2_messages.c.id.in_(chunk),
                    v2_messages.c.body_deleted_at.is_(None),
                    ~exists().where(device_inbox.c.message_pk == v2_messages.c.id),
                )
            )
        )
        for row in rows.all():
            await conn.execute(
                update(v2_messages)
                .where(v2_messages.c.id == row.id)
                .values(envelope=header_only(row.envelope), body_deleted_at=now)
            )
