"""Synchronous queries for the group-commit writer.

The writer applies a whole batch in one transaction on one thread: on SQLite that is a
dedicated thread with its own connection (one hand-off per batch instead of one per
statement); on PostgreSQL the same functions run through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from .tables import conversation_members, conversations, inbox_entries, messages, users

_SET_INBOX_SEQ = update(users).where(users.c.id == bindparam("uid")).values(inbox_seq=bindparam("new_seq"))
_SET_LAST_MESSAGE_AT = (
    update(conversations)
    .where(conversations.c.id == bindparam("cid"))
    .values(last_message_at=bindparam("ts"))
)
_MARK_DELIVERED = (
    update(inbox_entries)
    .where(
        and_(
            inbox_entries.c.user_id == bindparam("uid"),
            inbox_entries.c.seq <= bindparam("up_to"),
            inbox_entries.c.kind == "message",
            inbox_entries.c.delivered_at.is_(None),
        )
    )
    .values(delivered_at=bindparam("now"))
)


def get_messages_by_message_ids(conn: Connection, message_ids: Sequence[str]) -> dict[str, RowMapping]:
    if not message_ids:
        return {}
    result = conn.execute(select(messages).where(messages.c.message_id.in_(message_ids)))
    return {row["message_id"]: row for row in result.mappings()}


def get_conversation_ids(conn: Connection, conversation_ids: Sequence[str]) -> set[str]:
    if not conversation_ids:
        return set()
    result = conn.execute(select(conversations.c.id).where(conversations.c.id.in_(conversation_ids)))
    return {row.id for row in result}


def get_members_by_conversation(
    conn: Connection, conversation_ids: Sequence[str]
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
    for row in conn.execute(query):
        members[row.conversation_id][row.username] = row.id
    return members


def get_user_ids(conn: Connection, usernames: Sequence[str]) -> dict[str, int]:
    result = conn.execute(select(users.c.username, users.c.id).where(users.c.username.in_(usernames)))
    return {row.username: row.id for row in result}


def add_conversation(
    conn: Connection, conversation_id: str, kind: str, member_ids: list[int], now: int
) -> None:
    conn.execute(insert(conversations).values(id=conversation_id, kind=kind, created_at=now))
    conn.execute(
        insert(conversation_members),
        [{"conversation_id": conversation_id, "user_id": uid, "joined_at": now} for uid in member_ids],
    )


def allocate_inbox_seqs(conn: Connection, counts: dict[int, int]) -> dict[int, int]:
    """Reserve ``counts[user]`` new inbox sequence numbers per user; returns the first
    number of each user's block.

    On PostgreSQL the users' rows are locked (in id order, so two instances cannot
    deadlock); on SQLite the write transaction is already exclusive.
    """
    if not counts:
        return {}
    user_ids = sorted(counts)
    query = select(users.c.id, users.c.inbox_seq).where(users.c.id.in_(user_ids)).order_by(users.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    current = {row.id: int(row.inbox_seq) for row in conn.execute(query)}
    conn.execute(_SET_INBOX_SEQ, [{"uid": uid, "new_seq": current[uid] + counts[uid]} for uid in user_ids])
    return {uid: current[uid] + 1 for uid in user_ids}


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """A plain DB-API executemany: for hundreds of rows per batch, SQLAlchemy's per-row
    parameter processing costs more than the database does."""
    columns = list(rows[0])
    style = conn.dialect.paramstyle
    if style == "qmark":
        marks = ", ".join("?" for _ in columns)
    elif style in ("numeric_dollar", "numeric"):
        sign = "$" if style == "numeric_dollar" else ":"
        marks = ", ".join(f"{sign}{i + 1}" for i in range(len(columns)))
    else:
        marks = ", ".join("%s" for _ in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - names are ours
    conn.exec_driver_sql(sql, [tuple(row[column] for column in columns) for row in rows])


def add_messages(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert messages; returns their primary keys in the rows' order."""
    if not rows:
        return []
    _insert_many(conn, messages, rows)
    ids = [row["message_id"] for row in rows]
    found = conn.execute(select(messages.c.message_id, messages.c.id).where(messages.c.message_id.in_(ids)))
    pks = {row.message_id: int(row.id) for row in found}
    return [pks[message_id] for message_id in ids]


def add_inbox_entries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        _insert_many(conn, inbox_entries, rows)


def set_last_message_times(conn: Connection, times: dict[str, int]) -> None:
    if times:
        conn.execute(_SET_LAST_MESSAGE_AT, [{"cid": cid, "ts": ts} for cid, ts in times.items()])


def get_undelivered_messages_up_to(conn: Connection, up_to: dict[int, int]) -> list[RowMapping]:
    """Undelivered message entries of several users, each up to its own sequence number.

    The partial index ``ix_inbox_entries_undelivered`` keeps this small: only entries not
    yet delivered are in it.
    """
    if not up_to:
        return []
    query = (
        select(inbox_entries.c.user_id, inbox_entries.c.seq, messages.c.message_id, messages.c.sender_id)
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
    return [row for row in conn.execute(query).mappings() if row["seq"] <= up_to[row["user_id"]]]


def mark_delivered_up_to(conn: Connection, up_to: dict[int, int], now: int) -> None:
    if up_to:
        conn.execute(
            _MARK_DELIVERED, [{"uid": uid, "up_to": seq, "now": now} for uid, seq in sorted(up_to.items())]
        )


def get_inbox_seq_for_message(conn: Connection, user_id: int, message_pk: int) -> int:
    result = conn.execute(
        select(inbox_entries.c.seq).where(
            and_(inbox_entries.c.user_id == user_id, inbox_entries.c.message_pk == message_pk)
        )
    )
    return int(result.scalar_one())
