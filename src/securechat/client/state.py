"""Client state in ``SECURECHAT_HOME``: one SQLite file, mode 0600.

It holds the session (refresh token), pinned contact keys, received and sent
messages, seen message ids (replay detection) and the last inbox sequence. Private
keys are never written here: they live in memory, unsealed from the server's bundle
with the password each time.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import NameRecord, SeenRecord

# A sent message's status only moves forward along this order.
STATUS_ORDER = ("sent", "delivered", "read")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    username TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    pinned_at INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    pending_identity TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER,
    message_id TEXT,
    conversation_id TEXT,
    sender TEXT,
    peer TEXT,
    text TEXT,
    sent_at INTEGER,
    server_ts INTEGER,
    received_at INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    reason TEXT,
    status TEXT,
    recipients TEXT,
    imported TEXT
);
CREATE INDEX IF NOT EXISTS ix_messages_message_id ON messages(message_id);
CREATE TABLE IF NOT EXISTS seen_ids (message_id TEXT PRIMARY KEY, signature TEXT, seq INTEGER);
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY,
    chain TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL DEFAULT 'member',
    name_sent_at INTEGER,
    name_message_id TEXT
);
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    descriptor TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Contact:
    username: str
    identity: dict[str, str]
    pinned_at: int
    verified: bool
    pending_identity: dict[str, str] | None


class StateStore:
    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = home / "state.db"
        if not path.exists():
            # Create it 0600 before SQLite opens it, so it is never readable by others.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        for suffix in ("-wal", "-shm"):
            extra = home / f"state.db{suffix}"
            if extra.exists():
                os.chmod(extra, 0o600)

    def _add_missing_columns(self) -> None:
        """Homes made by an earlier version lack these columns (PROTOCOL.md 14.2, 14.4, 14.7,
        15.10)."""
        for table, column, kind in (
            ("seen_ids", "signature", "TEXT"),
            ("seen_ids", "seq", "INTEGER"),
            ("groups", "name_sent_at", "INTEGER"),
            ("groups", "name_message_id", "TEXT"),
            ("messages", "recipients", "TEXT"),
            ("messages", "imported", "TEXT"),
        ):
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate transaction: other processes on the same home wait for it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def file_lock(self) -> Iterator[None]:
        """An advisory lock shared by every process using this home."""
        with open(self.home / "state.lock", "a", opener=_private_opener) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # Key-value settings
    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def last_seq(self) -> int:
        return int(self.get("last_seq") or 0)

    def clear_session(self) -> None:
        for key in ("refresh_token", "access_token", "access_expires", "session_id"):
            self.put(key, None)

    # Contacts
    def get_contact(self, username: str) -> Contact | None:
        row = self._db.execute("SELECT * FROM contacts WHERE username = ?", (username,)).fetchone()
        if row is None:
            return None
        pending = json.loads(row["pending_identity"]) if row["pending_identity"] else None
        return Contact(
            row["username"], json.loads(row["identity"]), row["pinned_at"], bool(row["verified"]), pending
        )

    def list_contacts(self) -> list[Contact]:
        names = [
            row["username"] for row in self._db.execute("SELECT username FROM contacts ORDER BY username")
        ]
        return [c for c in (self.get_contact(n) for n in names) if c is not None]

    def pin_contact(self, username: str, identity: dict[str, str]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO contacts (username, identity, pinned_at, verified, pending_identity)"
            " VALUES (?, ?, ?, 0, NULL)",
            (username, json.dumps(identity), int(time.time() * 1000)),
        )

    def set_pending_identity(self, username: str, identity: dict[str, str]) -> None:
        self._db.execute(
            "UPDATE contacts SET pending_identity = ? WHERE username = ?", (json.dumps(identity), username)
        )

    def set_verified(self, username: str, verified: bool) -> None:
        self._db.execute("UPDATE contacts SET verified = ? WHERE username = ?", (int(verified), username))

    # Messages
    def seen_record(self, message_id: str) -> SeenRecord | None:
        """How this device first accepted a message id (PROTOCOL.md 14.2), if it did."""
        row = self._db.execute(
            "SELECT signature, seq FROM seen_ids WHERE message_id = ?", (message_id,)
        ).fetchone()
        # A record from before signatures were kept matches no envelope: a copy of that
        # message is taken for a replay, which is the safe side.
        return None if row is None else SeenRecord(row["signature"] or "", row["seq"])

    def put_seen(self, message_id: str, record: SeenRecord) -> None:
        self._db.execute(
            "INSERT INTO seen_ids (message_id, signature, seq) VALUES (?, ?, ?) "
            "ON CONFLICT(message_id) DO UPDATE SET signature = excluded.signature, seq = excluded.seq",
            (message_id, record.signature, record.seq),
        )

    def add_message(self, **values: Any) -> None:
        """Keep a row. ``imported`` marks a row of an archive (``backup``: a restored
        backup, ``link``: a device's hand-over; PROTOCOL.md 15.10). A verified row checked
        here (no ``imported``) replaces an imported copy of the same message: same id, same
        conversation, same sender. The archive's row is only as trustworthy as whoever made
        the archive, so it never stands beside or in for that message once this home has
        verified it itself. A message with the id but another conversation or sender is not
        that message (a contact can sign one under the id of a restored row, even one of the
        user's own words): it is kept beside the copy and erases nothing."""
        values.setdefault("received_at", int(time.time() * 1000))
        if values.get("verified") and not values.get("imported") and values.get("message_id"):
            self._db.execute(
                "DELETE FROM messages WHERE message_id = ? AND conversation_id = ? AND sender = ?"
                " AND imported IS NOT NULL",
                (values["message_id"], values.get("conversation_id"), values.get("sender")),
            )
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._db.execute(f"INSERT INTO messages ({columns}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    def verified_messages(self, message_ids: list[str]) -> list[dict[str, Any]]:
        """The verified messages with these ids: message_id, conversation_id, sender, peer,
        and recipients (JSON, for messages recorded with them; PROTOCOL.md 14.7)."""
        if not message_ids:
            return []
        marks = ", ".join("?" for _ in message_ids)
        columns = "message_id, conversation_id, sender, peer, recipients"
        query = f"SELECT {columns} FROM messages WHERE verified = 1 AND message_id IN ({marks})"  # noqa: S608
        return [dict(row) for row in self._db.execute(query, tuple(message_ids)).fetchall()]

    def set_status(self, message_id: str, status: str) -> None:
        """Move a sent message's status forward, never back: a read receipt can arrive
        before the delivery receipt, whose ack the reader sends a little later
        (PROTOCOL.md 9.2)."""
        later = STATUS_ORDER[STATUS_ORDER.index(status) :]
        marks = ", ".join("?" for _ in later)
        self._db.execute(
            f"UPDATE messages SET status = ? WHERE message_id = ? AND verified = 1 AND status NOT IN ({marks})",  # noqa: S608
            (status, message_id, *later),
        )

    def add_file(self, file_id: str, message_id: str, sender: str, descriptor: dict[str, Any]) -> None:
        """Remember a shared file's descriptor (its key included) so it can be fetched later."""
        self._db.execute(
            "INSERT OR IGNORE INTO files (file_id, message_id, sender, descriptor) VALUES (?, ?, ?, ?)",
            (file_id, message_id, sender, json.dumps(descriptor)),
        )

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT descriptor FROM files WHERE file_id = ?", (file_id,)).fetchone()
        return json.loads(row["descriptor"]) if row else None

    def files_by_message(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT message_id, descriptor FROM files").fetchall()
        return {row["message_id"]: json.loads(row["descriptor"]) for row in rows}

    def get_group(self, group_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM groups WHERE group_id = ?", (group_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "chain": json.loads(row["chain"])}

    def put_group(self, group_id: str, chain: list[dict[str, Any]], status: str) -> None:
        """The verified chain (every change, as received) and whether we are still in."""
        self._db.execute(
            "INSERT INTO groups (group_id, chain, status) VALUES (?, ?, ?) "
            "ON CONFLICT(group_id) DO UPDATE SET chain = excluded.chain, status = excluded.status",
            (group_id, json.dumps(chain), status),
        )

    def group_name(self, group_id: str) -> NameRecord | None:
        row = self._db.execute(
            "SELECT name, name_sent_at, name_message_id FROM groups WHERE group_id = ?", (group_id,)
        ).fetchone()
        if row is None or row["name"] is None:
            return None
        return NameRecord(row["name"], row["name_sent_at"] or 0, row["name_message_id"] or "")

    def set_group_name(self, group_id: str, record: NameRecord) -> None:
        self._db.execute(
            "UPDATE groups SET name = ?, name_sent_at = ?, name_message_id = ? WHERE group_id = ?",
            (record.name, record.sent_at, record.message_id, group_id),
        )

    def list_groups(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM groups ORDER BY name, group_id").fetchall()
        return [{**dict(row), "chain": json.loads(row["chain"])} for row in rows]

    def messages(self, peer: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = "SELECT * FROM messages"
        params: tuple[Any, ...] = ()
        if peer is not None:
            query += " WHERE peer = ?"
            params = (peer,)
        query += " ORDER BY id DESC LIMIT ?"
        rows = self._db.execute(query, (*params, limit)).fetchall()
        return [dict(row) for row in reversed(rows)]


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
