"""Conversations, messages and per-user inboxes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversation_members, conversations, inbox_entries, messages, users


async def get_conversation(conn: AsyncConnection, conversation_id: str) -> RowMapping | None:
    result = await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
    return result.mappings().first()


async def get_members(conn: AsyncConnection, conversation_id: str) -> dict[str, int]:
    """Member usernames mapped to user ids."""
    query = (
        select(users.c.username, users.c.id)
        .join(conversation_members, conversation_members.c.user_id == users.c.id)
        .where(conversation_members.c.conversation_id == conversation_id)
    )
    return {row.username: row.id for row in await conn.execute(query)}


async def add_conversation(
    conn: AsyncConnection, conversation_id: str, kind: str, member_ids: list[int], now: int
) -> None:
    await conn.execute(insert(conversations).values(id=conversation_id, kind=kind, created_at=now))
    await conn.execute(
        insert(conversation_members),
        [{"conversation_id": conversation_id, "user_id": uid, "joined_at": now} for uid in member_ids],
    )


async def get_conversations_for_user(conn: AsyncConnection, user_id: int) -> list[RowMapping]:
    query = (
        select(conversations)
        .join(conversation_members, conversation_members.c.conversation_id == conversations.c.id)
        .where(conversation_members.c.user_id == user_id)
        .order_by(conversations.c.last_message_at.desc(), conversations.c.created_at.desc())
    )
    return list((await conn.execute(query)).mappings())


async def get_members_for_conversations(conn: AsyncConnection, ids: list[str]) -> dict[str, list[str]]:
    query = (
        select(conversation_members.c.conversation_id, users.c.username)
        .join(users, users.c.id == conversation_members.c.user_id)
        .where(conversation_members.c.conversation_id.in_(ids))
    )
    members: dict[str, list[str]] = {cid: [] for cid in ids}
    for row in await conn.execute(query):
        members[row.conversation_id].append(row.username)
    return {cid: sorted(names) for cid, names in members.items()}


async def get_message_by_message_id(conn: AsyncConnection, message_id: str) -> RowMapping | None:
    result = await conn.execute(select(messages).where(messages.c.message_id == message_id))
    return result.mappings().first()


async def add_message(conn: AsyncConnection, **values: Any) -> int:
    result = await conn.execute(insert(messages).values(**values).returning(messages.c.id))
    return int(result.scalar_one())


async def allocate_inbox_seqs(conn: AsyncConnection, counts: dict[int, int]) -> dict[int, int]:
    """Reserve ``counts[user]`` new inbox sequence numbers per user, inside the caller's
    write transaction; returns the first number of each user's block.

    On PostgreSQL the users' rows are locked (in id order, so two instances cannot
    deadlock); on SQLite the write transaction is already exclusive.
    """
    if not counts:
        return {}
    user_ids = sorted(counts)
    query = select(users.c.id, users.c.inbox_seq).where(users.c.id.in_(user_ids)).order_by(users.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    current = {row.id: int(row.inbox_seq) for row in await conn.execute(query)}
    await conn.execute(
        update(users).where(users.c.id == bindparam("uid")).values(inbox_seq=bindparam("new_seq")),
        [{"uid": uid, "new_seq": current[uid] + counts[uid]} for uid in user_ids],
    )
    return {uid: current[uid] + 1 for uid in user_ids}


async def add_inbox_entries(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(inbox_entries), rows)


_INBOX_COLUMNS = (
    inbox_entries.c.seq,
    inbox_entries.c.kind,
    inbox_entries.c.data,
    inbox_entries.c.created_at,
    messages.c.message_id,
    messages.c.conversation_id,
    messages.c.server_ts,
    messages.c.envelope,
)


async def get_inbox_after(
    conn: AsyncConnection, user_id: int, after_seq: int, limit: int
) -> list[RowMapping]:
    query = (
        select(*_INBOX_COLUMNS, users.c.username.label("sender"))
        .select_from(inbox_entries)
        .outerjoin(messages, messages.c.id == inbox_entries.c.message_pk)
        .outerjoin(users, users.c.id == messages.c.sender_id)
        .where(and_(inbox_entries.c.user_id == user_id, inbox_entries.c.seq > after_seq))
        .order_by(inbox_entries.c.seq)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def get_inbox_head(conn: AsyncConnection, user_id: int) -> int:
    result = await conn.execute(select(users.c.inbox_seq).where(users.c.id == user_id))
    return int(result.scalar_one())


async def get_history(
    conn: AsyncConnection, conversation_id: str, before_id: int | None, limit: int
) -> list[RowMapping]:
    condition = messages.c.conversation_id == conversation_id
    if before_id is not None:
        condition = and_(condition, messages.c.id < before_id)
    query = (
        select(
            messages.c.id,
            messages.c.message_id,
            messages.c.server_ts,
            messages.c.envelope,
            users.c.username.label("sender"),
        )
        .join(users, users.c.id == messages.c.sender_id)
        .where(condition)
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def get_delivered_to(conn: AsyncConnection, message_pks: list[int]) -> dict[int, list[str]]:
    if not message_pks:
        return {}
    query = (
        select(inbox_entries.c.message_pk, users.c.username)
        .join(users, users.c.id == inbox_entries.c.user_id)
        .where(and_(inbox_entries.c.message_pk.in_(message_pks), inbox_entries.c.delivered_at.is_not(None)))
    )
    delivered: dict[int, list[str]] = {pk: [] for pk in message_pks}
    for row in await conn.execute(query):
        delivered[row.message_pk].append(row.username)
    return delivered


async def get_inbox_seq_for_message(conn: AsyncConnection, user_id: int, message_pk: int) -> int:
    result = await conn.execute(
        select(inbox_entries.c.seq).where(
            and_(inbox_entries.c.user_id == user_id, inbox_entries.c.message_pk == message_pk)
        )
    )
    return int(result.scalar_one())


async def get_messages_by_message_ids(
    conn: AsyncConnection, message_ids: Sequence[str]
) -> dict[str, RowMapping]:
    if not message_ids:
        return {}
    result = await conn.execute(select(messages).where(messages.c.message_id.in_(message_ids)))
    return {row["message_id"]: row for row in result.mappings()}


async def get_conversation_ids(conn: AsyncConnection, conversation_ids: Sequence[str]) -> set[str]:
    if not conversation_ids:
        return set()
    result = await conn.execute(select(conversations.c.id).where(conversations.c.id.in_(conversation_ids)))
    return {row.id for row in result}


async def get_members_by_conversation(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """For each conversation, its members' usernames mapped to user ids."""
    members: dict[str, dict[str, int]] = {cid: {} for cid in conversation_ids}
    if not conversation_ids:
        return members
    query = (
        select(conversation_members.c.conversation_id, users.c.username, users.c.id)
        .join(users, users.c.id == conversation_members.c.user_id)
        .where(conversation_members.c.conversation_id.in_(conversation_ids))
    )
    for row in await conn.execute(query):
        members[row.conversation_id][row.username] = row.id
    return members


async def add_messages(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert messages in one statement; returns their primary keys in the rows' order."""
    if not rows:
        return []
    result = await conn.execute(insert(messages).returning(messages.c.id, sort_by_parameter_order=True), rows)
    return [int(pk) for pk in result.scalars()]


async def set_last_message_times(conn: AsyncConnection, times: dict[str, int]) -> None:
    if times:
        await conn.execute(
            update(conversations)
            .where(conversations.c.id == bindparam("cid"))
            .values(last_message_at=bindparam("ts")),
            [{"cid": cid, "ts": ts} for cid, ts in times.items()],
        )


async def get_undelivered_messages_up_to(conn: AsyncConnection, up_to: dict[int, int]) -> list[RowMapping]:
    """Undelivered message entries of several users, each up to its own sequence number.

    The partial index ``ix_inbox_entries_undelivered`` keeps this small: only entries not
    yet delivered are in it.
    """
    if not up_to:
        return []
    query = (
        select(
            inbox_entries.c.user_id,
            inbox_entries.c.seq,
            messages.c.message_id,
            messages.c.sender_id,
        )
        .join(messages, messages.c.id == inbox_entries.c.message_pk)
        .where(
            and_(
                inbox_entries.c.user_id.in_(sorted(up_to)),
                inbox_entries.c.kind == "message",
                inbox_entries.c.delivered_at.is_(None),
            )
        )
        .order_by(inbox_entries.c.user_id, inbox_entries.c.seq)
    )
    rows = (await conn.execute(query)).mappings()
    return [row for row in rows if row["seq"] <= up_to[row["user_id"]]]


async def mark_delivered_up_to(conn: AsyncConnection, up_to: dict[int, int], now: int) -> None:
    if up_to:
        await conn.execute(
            update(inbox_entries)
            .where(
                and_(
                    inbox_entries.c.user_id == bindparam("uid"),
                    inbox_entries.c.seq <= bindparam("up_to"),
                    inbox_entries.c.kind == "message",
                    inbox_entries.c.delivered_at.is_(None),
                )
            )
            .values(delivered_at=now),
            [{"uid": uid, "up_to": seq} for uid, seq in sorted(up_to.items())],
        )
