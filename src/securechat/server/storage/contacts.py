"""Who shares a conversation with whom (for the lookup limit, services/lookups.py)."""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversation_members, users


async def shares_conversation(conn: AsyncConnection, user_id: int, username: str) -> bool:
    """Whether the user ``user_id`` and the user named ``username`` are both members of
    some conversation (direct or group). One index lookup per table: the name's user, its
    memberships, and the caller's membership in each."""
    mine = conversation_members.alias("mine")
    theirs = conversation_members.alias("theirs")
    result = await conn.execute(
        select(literal(1))
        .select_from(
            users.join(theirs, theirs.c.user_id == users.c.id).join(
                mine, mine.c.conversation_id == theirs.c.conversation_id
            )
        )
        .where(users.c.username == username, mine.c.user_id == user_id)
        .limit(1)
    )
    return result.first() is not None
