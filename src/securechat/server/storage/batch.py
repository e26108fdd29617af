"""Synchronous queries for the group-commit writer.

The writer applies a whole batch in one transaction on one thread: on SQLite that is a
dedicated thread with its own connection (one hand-off per batch instead of one per
statement); on PostgreSQL the same functions run through ``AsyncConnection.run_sync``.

These statements are the hot path, so they go to the driver's cursor as fixed SQL
text: building, caching and compiling a SQLAlchemy statement costs more than SQLite
takes to run it (measured with ``benchmarks/bench_writer.py``). The text is written
once with ``?`` markers and rewritten for the driver's parameter style; lists become
one marker per item. Table and column names are the ones in ``tables.py``; the tests
run every function on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from .database import DriverConnection

_MESSAGE_COLUMNS = ("id", "message_id", "conversation_id", "sender_id", "server_ts", "envelope_sha256")


@functools.lru_cache(maxsize=1024)
def _for_driver(paramstyle: str, sql: str) -> str:
    """``sql`` with its ``?`` markers in the driver's style (qmark, numeric_dollar, format)."""
    if paramstyle == "qmark":
        return sql
    parts = sql.split("?")
    if paramstyle in ("numeric_dollar", "numeric"):
        sign = "$" if paramstyle == "numeric_dollar" else ":"
        return parts[0] + "".join(f"{sign}{number}{part}" for number, part in enumerate(parts[1:], 1))
    if paramstyle in ("format", "pyformat"):
        return "%s".join(parts)
    raise ValueError(f"unsupported parameter style {paramstyle}")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _execute(conn: DriverConnection, sql: str, parameters: Sequence[Any] = ()) -> Any:
    cursor = conn.connection.cursor()
    cursor.execute(_for_driver(conn.dialect.paramstyle, sql), tuple(parameters))
    return cursor


def _execute_many(conn: DriverConnection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    cursor = conn.connection.cursor()
    cursor.executemany(_for_driver(conn.dialect.paramstyle, sql), list(rows))
    cursor.close()


def _fetch_all(conn: DriverConnection, sql: str, parameters: Sequence[Any] = ()) -> list[Sequence[Any]]:
    cursor = _execute(conn, sql, parameters)
    rows: list[Sequence[Any]] = cursor.fetchall()
    cursor.close()
    return rows


def get_messages_by_message_ids(
    conn: DriverConnection, message_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Stored messages by message id: id, message_id, conversation_id, sender_id,
    server_ts and envelope_sha256 (never the envelope)."""
    if not message_ids:
        return {}
    rows = _fetch_all(
        conn,
        f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages WHERE message_id IN ({_marks(len(message_ids))})",
        message_ids,
    )
    found = [dict(zip(_MESSAGE_COLUMNS, row, strict=True)) for row in rows]
    for row in found:
        # bytea comes back as memoryview on some drivers.
        row["envelope_sha256"] = bytes(row["envelope_sha256"])
    return {row["message_id"]: row for row in found}


def get_conversation_ids(conn: DriverConnection, conversation_ids: Sequence[str]) -> set[str]:
    if not conversation_ids:
        return set()
    rows = _fetch_all(
        conn, f"SELECT id FROM conversations WHERE id IN ({_marks(len(conversation_ids))})", conversation_ids
    )
    return {row[0] for row in rows}


def get_members_by_conversation(
    conn: DriverConnection, conversation_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """For each conversation, its members' usernames mapped to user ids."""
    members: dict[str, dict[str, int]] = {cid: {} for cid in conversation_ids}
    if not conversation_ids:
        return members
    rows = _fetch_all(
        conn,
        "SELECT m.conversation_id, u.username, u.id FROM conversation_members m"
        f" JOIN users u ON u.id = m.user_id WHERE m.conversation_id IN ({_marks(len(conversation_ids))})",
        conversation_ids,
    )
    for conversation_id, username, user_id in rows:
        members[conversation_id][username] = user_id
    return members


def get_user_ids(conn: DriverConnection, usernames: Sequence[str]) -> dict[str, int]:
    rows = _fetch_all(
        conn, f"SELECT username, id FROM users WHERE username IN ({_marks(len(usernames))})", usernames
    )
    return {username: user_id for username, user_id in rows}


def add_conversation(
    conn: DriverConnection,
    conversation_id: str,
    kind: str,
    member_ids: list[int],
    now: int,
    *,
    if_absent: bool = False,
) -> None:
    """Store a conversation and its members. ``if_absent``: rows already there stand (a v2
    message can record the same direct conversation on another instance at this moment,
    storage/device_inbox.ensure_direct_conversation); else a second one is an error."""
    on_conflict = " ON CONFLICT DO NOTHING" if if_absent else ""
    _execute(
        conn,
        "INSERT INTO conversations (id, kind, created_at) VALUES (?, ?, ?)" + on_conflict,
        (conversation_id, kind, now),
    ).close()
    _execute_many(
        conn,
        "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)"
        + on_conflict,
        [(conversation_id, uid, now) for uid in member_ids],
    )


def allocate_inbox_seqs(conn: DriverConnection, counts: dict[int, int]) -> dict[int, int]:
    """Reserve ``counts[user]`` new inbox sequence numbers per user; returns the first
    number of each user's block: one past the user's newest entry.

    The numbers come from the entries themselves (the primary key's index finds each
    user's newest at once), so nothing else is written: a counter column in ``users``
    cost a write of the user's whole row, several per commit. Entries are never deleted
    while their user exists, so a number is never handed out twice. On PostgreSQL the
    users' rows are locked first (in id order, so two instances cannot deadlock); on
    SQLite the write transaction is already exclusive.
    """
    if not counts:
        return {}
    user_ids = sorted(counts)
    marks = _marks(len(user_ids))
    if conn.dialect.name == "postgresql":
        _fetch_all(conn, f"SELECT id FROM users WHERE id IN ({marks}) ORDER BY id FOR UPDATE", user_ids)
    rows = _fetch_all(
        conn,
        "SELECT u.id, (SELECT max(e.seq) FROM inbox_entries e WHERE e.user_id = u.id)"
        f" FROM users u WHERE u.id IN ({marks})",
        user_ids,
    )
    newest = {int(user_id): int(seq or 0) for user_id, seq in rows}
    return {uid: newest[uid] + 1 for uid in user_ids}


_MESSAGE_INSERT_COLUMNS = (
    "message_id",
    "conversation_id",
    "sender_id",
    "client_ts",
    "server_ts",
    "size",
    "envelope_sha256",
    "envelope",
)
_INBOX_COLUMNS = ("user_id", "seq", "kind", "message_pk", "data", "created_at", "delivered_at")


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(len(columns))})"


_INSERT_MESSAGE = _insert_sql("messages", _MESSAGE_INSERT_COLUMNS)
_INSERT_INBOX_ENTRY = _insert_sql("inbox_entries", _INBOX_COLUMNS)


def add_messages(conn: DriverConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert messages; returns their primary keys in the rows' order."""
    if not rows:
        return []
    _execute_many(conn, _INSERT_MESSAGE, [tuple(row[c] for c in _MESSAGE_INSERT_COLUMNS) for row in rows])
    ids = [row["message_id"] for row in rows]
    found = _fetch_all(
        conn, f"SELECT message_id, id FROM messages WHERE message_id IN ({_marks(len(ids))})", ids
    )
    pks = {message_id: int(pk) for message_id, pk in found}
    return [pks[message_id] for message_id in ids]


def add_inbox_entries(conn: DriverConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        _execute_many(conn, _INSERT_INBOX_ENTRY, [tuple(row[c] for c in _INBOX_COLUMNS) for row in rows])


def get_undelivered_messages_up_to(conn: DriverConnection, up_to: dict[int, int]) -> list[dict[str, Any]]:
    """Undelivered message entries of several users, each up to its own sequence number:
    user_id, seq, message_id and sender_id, in (user, seq) order.

    The partial index ``ix_inbox_entries_undelivered`` keeps this small: only entries not
    yet delivered are in it (its condition is repeated here so the planner can use it).
    """
    if not up_to:
        return []
    user_ids = sorted(up_to)
    rows = _fetch_all(
        conn,
        "SELECT e.user_id, e.seq, m.message_id, m.sender_id, m.id FROM inbox_entries e"
        " JOIN messages m ON m.id = e.message_pk"
        f" WHERE e.user_id IN ({_marks(len(user_ids))}) AND e.delivered_at IS NULL AND e.kind = 'message'"
        " ORDER BY e.user_id, e.seq",
        user_ids,
    )
    return [
        {"user_id": user_id, "seq": seq, "message_id": message_id, "sender_id": sender_id, "message_pk": pk}
        for user_id, seq, message_id, sender_id, pk in rows
        if seq <= up_to[user_id]
    ]


def mark_delivered_up_to(conn: DriverConnection, up_to: dict[int, int], now: int) -> None:
    if up_to:
        _execute_many(
            conn,
            "UPDATE inbox_entries SET delivered_at = ? WHERE user_id = ? AND seq <= ?"
            " AND delivered_at IS NULL AND kind = 'message'",
            [(now, uid, seq) for uid, seq in sorted(up_to.items())],
        )


def get_inbox_seq_for_message(conn: DriverConnection, user_id: int, message_pk: int) -> int:
    rows = _fetch_all(
        conn, "SELECT seq FROM inbox_entries WHERE user_id = ? AND message_pk = ?", (user_id, message_pk)
    )
    if len(rows) != 1:
        raise LookupError(f"expected one inbox entry for message {message_pk}, found {len(rows)}")
    return int(rows[0][0])


# Rows per INSERT of receipt marks: 5 parameters each, far below every driver's limit.
_MARKS_PER_STATEMENT = 100


def add_receipt_marks(
    conn: DriverConnection, reader_id: int, status: str, signed: bool, message_pks: Iterable[int], now: int
) -> set[int]:
    """Record that ``reader_id`` gave a ``status`` receipt (``signed`` by the reader, or the
    server's unsigned claim) for these messages; returns the ones it had not given yet.

    The table's primary key decides, so two instances recording the same receipt at once
    get it once between them: on PostgreSQL the second insert waits for the first
    transaction and then adds nothing. An unsigned claim is also passed over where the
    reader's signed receipt of that status exists, as it says no more. Rows go in
    ascending order, so concurrent transactions take the key's locks in one order.
    """
    pks = sorted(set(message_pks))
    if not pks:
        return set()
    if not signed:
        rows = _fetch_all(
            conn,
            "SELECT message_pk FROM receipt_marks WHERE reader_id = ? AND status = ? AND signed = ?"
            f" AND message_pk IN ({_marks(len(pks))})",
            (reader_id, status, True, *pks),
        )
        known = {int(row[0]) for row in rows}
        pks = [pk for pk in pks if pk not in known]
    added: set[int] = set()
    for start in range(0, len(pks), _MARKS_PER_STATEMENT):
        part = pks[start : start + _MARKS_PER_STATEMENT]
        rows = _fetch_all(
            conn,
            "INSERT INTO receipt_marks (message_pk, reader_id, status, signed, created_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(part))
            + " ON CONFLICT DO NOTHING RETURNING message_pk",
            [value for pk in part for value in (pk, reader_id, status, signed, now)],
        )
        added.update(int(row[0]) for row in rows)
    return added
