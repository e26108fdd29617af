"""This home's v2 records, in the client's state database (one SQLite file, 0600).

Private records (the device's keys, prekey private halves, session sets) are sealed
(``sealed.py``); accepted device lists are public documents and kept as they came.
Writers pass the connection of a ``StateStore.transaction()``, so a message's session
set, its seen record, the stored message and the inbox position change together or
not at all.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ...protocol.v2.devices import DeviceList, parse_device_list
from ..core.v2 import EMPTY, SessionSet
from ..core.v2.wire import session_set_from_wire, session_set_to_wire
from ..state import StateStore
from .sealed import open_record, seal_record

SCHEMA = """
CREATE TABLE IF NOT EXISTS v2_records (name TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS v2_sessions (
    username TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (username, device_id)
);
CREATE TABLE IF NOT EXISTS v2_lists (username TEXT PRIMARY KEY, document TEXT NOT NULL);
"""

# Plain settings (kv): positions and counters, nothing secret.
INBOX_POSITION = "v2_inbox_position"


def _session_name(username: str, device_id: str) -> str:
    return f"session/{username}/{device_id}"


class V2Store:
    def __init__(self, state: StateStore) -> None:
        self.state = state
        self._key: bytes | None = None
        with state.transaction() as conn:
            for statement in SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)

    def unlock(self, key: bytes) -> None:
        self._key = key

    @property
    def key(self) -> bytes:
        if self._key is None:
            raise RuntimeError("the v2 records are sealed: unlock the account first")
        return self._key

    # Sealed records ------------------------------------------------------------
    def record(self, conn: sqlite3.Connection, name: str) -> Any:
        row = conn.execute("SELECT sealed FROM v2_records WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return json.loads(open_record(self.key, name, bytes(row[0])))

    def put_record(self, conn: sqlite3.Connection, name: str, value: Any) -> None:
        sealed = seal_record(self.key, name, json.dumps(value, separators=(",", ":")).encode())
        conn.execute("INSERT OR REPLACE INTO v2_records (name, sealed) VALUES (?, ?)", (name, sealed))

    # Session sets ---------------------------------------------------------------
    def session_set(self, conn: sqlite3.Connection, username: str, device_id: str) -> SessionSet:
        row = conn.execute(
            "SELECT sealed FROM v2_sessions WHERE username = ? AND device_id = ?", (username, device_id)
        ).fetchone()
        if row is None:
            return EMPTY
        name = _session_name(username, device_id)
        return session_set_from_wire(json.loads(open_record(self.key, name, bytes(row[0]))))

    def put_session_set(
        self, conn: sqlite3.Connection, username: str, device_id: str, sessions: SessionSet
    ) -> None:
        name = _session_name(username, device_id)
        plain = json.dumps(session_set_to_wire(sessions), separators=(",", ":")).encode()
        conn.execute(
            "INSERT OR REPLACE INTO v2_sessions (username, device_id, sealed) VALUES (?, ?, ?)",
            (username, device_id, seal_record(self.key, name, plain)),
        )

    def drop_session_sets(self, conn: sqlite3.Connection, username: str, device_ids: list[str]) -> None:
        for device_id in device_ids:
            conn.execute(
                "DELETE FROM v2_sessions WHERE username = ? AND device_id = ?", (username, device_id)
            )

    # Accepted device lists ------------------------------------------------------
    def device_list(self, conn: sqlite3.Connection, username: str) -> DeviceList | None:
        row = conn.execute("SELECT document FROM v2_lists WHERE username = ?", (username,)).fetchone()
        return None if row is None else parse_device_list(json.loads(row[0]))

    def put_device_list(self, conn: sqlite3.Connection, device_list: DeviceList) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO v2_lists (username, document) VALUES (?, ?)",
            (device_list.username, json.dumps(device_list.to_wire(), separators=(",", ":"))),
        )

    # Plain settings ----------------------------------------------------------
    def number(self, conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def put_number(self, conn: sqlite3.Connection, key: str, value: int) -> None:
        conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, str(value)))
