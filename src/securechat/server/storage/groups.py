"""Group chains, invites and the member rows that follow them (synchronous: these run
inside one write transaction through ``Database.run_batch``)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from ...protocol.groups import ChainHead
from ...protocol.identifiers import ConversationId, Username
from .tables import conversation_members, group_changes, group_heads, group_invites, users


def get_changes(conn: Connection, conversation_id: str, after: int = -1) -> list[str]:
    query = (
        select(group_changes.c.change)
        .where(and_(group_changes.c.conversation_id == conversation_id, group_changes.c.seq > after))
        .order_by(group_changes.c.seq)
    )
    return [row.change for row in conn.execute(query)]


def add_change(conn: Connection, conversation_id: str, seq: int, change: str, now: int) -> None:
    conn.execute(
        insert(group_changes).values(conversation_id=conversation_id, seq=seq, change=change, created_at=now)
    )


def _names(text: str) -> frozenset[Username]:
    return frozenset(Username(name) for name in json.loads(text))


def _head_values(head: ChainHead) -> dict[str, object]:
    return {
        "seq": head.seq,
        "head": head.head,
        "at": head.at,
        "members": json.dumps(sorted(head.members), separators=(",", ":")),
        "admins": json.dumps(sorted(head.admins), separators=(",", ":")),
    }


def get_head(conn: Connection, conversation_id: str) -> ChainHead | None:
    """The group's verified head as stored (None: no such group, or no verified chain)."""
    row = (
        conn.execute(select(group_heads).where(group_heads.c.conversation_id == conversation_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return ChainHead(
        group_id=ConversationId(row["conversation_id"]),
        seq=int(row["seq"]),
        head=bytes(row["head"]),
        at=int(row["at"]),
        members=_names(row["members"]),
        admins=_names(row["admins"]),
    )


def add_head(conn: Connection, head: ChainHead) -> None:
    conn.execute(insert(group_heads).values(conversation_id=head.group_id, **_head_values(head)))


def advance_head(conn: Connection, old: ChainHead, new: ChainHead) -> bool:
    """Move the head from ``old`` to ``new`` if it is still at ``old`` (compare-and-set);
    False if another change moved it first. Under PostgreSQL's READ COMMITTED a
    concurrent UPDATE of the row waits for the other transaction, then finds the new seq."""
    result = conn.execute(
        update(group_heads)
        .where(
            and_(
                group_heads.c.conversation_id == old.group_id,
                group_heads.c.seq == old.seq,
                group_heads.c.head == old.head,
            )
        )
        .values(**_head_values(new))
    )
    return result.rowcount == 1


def get_users(conn: Connection, usernames: Iterable[str]) -> dict[str, RowMapping]:
    """Registered users by name, with their public keys."""
    names = sorted(set(usernames))
    if not names:
        return {}
    query = select(
        users.c.id,
        users.c.username,
        users.c.signing_key,
        users.c.encryption_key,
        users.c.encryption_key_signature,
    ).where(users.c.username.in_(names))
    return {row["username"]: row for row in conn.execute(query).mappings()}


def add_members(conn: Connection, conversation_id: str, user_ids: Iterable[int], now: int) -> None:
    rows = [{"conversation_id": conversation_id, "user_id": uid, "joined_at": now} for uid in user_ids]
    if rows:
        conn.execute(insert(conversation_members), rows)


def remove_members(conn: Connection, conversation_id: str, user_ids: Iterable[int]) -> None:
    ids = list(user_ids)
    if ids:
        conn.execute(
            delete(conversation_members).where(
                and_(
                    conversation_members.c.conversation_id == conversation_id,
                    conversation_members.c.user_id.in_(ids),
                )
            )
        )


def add_invite(
    conn: Connection,
    invite_id: str,
    conversation_id: str,
    invite: str,
    expires_at: int,
    max_uses: int,
    now: int,
) -> None:
    conn.execute(
        insert(group_invites).values(
            invite_id=invite_id,
            conversation_id=conversation_id,
            invite=invite,
            expires_at=expires_at,
            max_uses=max_uses,
            created_at=now,
        )
    )


def get_invite(conn: Connection, invite_id: str) -> RowMapping | None:
    return (
        conn.execute(select(group_invites).where(group_invites.c.invite_id == invite_id)).mappings().first()
    )


def use_invite(conn: Connection, invite_id: str) -> bool:
    """Count one use of an invite, if it has uses left (False: it had none)."""
    result = conn.execute(
        update(group_invites)
        .where(and_(group_invites.c.invite_id == invite_id, group_invites.c.uses < group_invites.c.max_uses))
        .values(uses=group_invites.c.uses + 1)
    )
    return result.rowcount == 1
