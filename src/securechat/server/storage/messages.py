"""Conversations, messages and per-user inboxes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversation_members, conversations, inbox_entries, messages, users


async def get_members(conn: AsyncConnection, conversation_id: str) -> dict[str, int]:
    """Member usernames mapped to user ids."""
    query = (
        select(users.c.username, users.c.id)
        .join(conversation_members, conversation_members.c.user_id == users.c.id)
        .where(conversation_members.c.conversation_id == conversation_id)
    )
    return {row.username: row.id for row in await conn.execute(query)}


async def get_conversations_for_user(conn: AsyncConnection, user_id: int) -> list[RowMapping]:
    """The user's conversations, the most recently active first, each with the time of
    its last message (found through ``ix_messages_conversation``: not stored, so that
    sending a message does not rewrite the conversation's row)."""
    last_message_at = (
        select(messages.c.server_ts)
        .where(messages.c.conversation_id == conversations.c.id)
        .order_by(messages.c.id.desc())
        .limit(1)
        .correlate(conversations)
        .scalar_subquery()
        .label("last_message_at")
    )
    query = (
        select(conversations, last_message_at)
        .join(conversation_members, conversation_members.c.conversation_id == conversations.c.id)
        .where(conversation_members.c.user_id == user_id)
        .order_by(last_message_at.desc().nulls_last(), conversations.c.created_at.desc())
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


async def add_message(conn: AsyncConnection, **values: Any) -> int:
    result = await conn.execute(insert(messages).values(**values).returning(messages.c.id))
    return int(result.scalar_one())


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
    """The sequence number of the user's newest inbox entry (0 for an empty inbox)."""
    result = await conn.execute(
        select(func.max(inbox_entries.c.seq)).where(inbox_entries.c.user_id == user_id)
    )
    return int(result.scalar_one() or 0)


async def get_history(
    conn: AsyncConnection, conversation_id: str, before_id: int | None, limit: int, since_ts: int = 0
) -> list[RowMapping]:
    """A page of messages, newest first; ``since_ts`` hides what came before (a group
    member sees nothing from before it joined)."""
    condition = messages.c.conversation_id == conversation_id
    if since_ts:
        condition = and_(condition, messages.c.server_ts >= since_ts)
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


async def get_joined_at(conn: AsyncConnection, conversation_id: str, user_id: int) -> int | None:
    query = select(conversation_members.c.joined_at).where(
        and_(
            conversation_members.c.conversation_id == conversation_id,
            conversation_members.c.user_id == user_id,
        )
    )
    value = (await conn.execute(query)).scalar_one_or_none()
    return int(value) if value is not None else None
