"""Migration 0017 (the device of a session) on a database at 0016, on SQLite and
PostgreSQL: every stored row stays, sessions stored before have no device, the storage code
records one on a session of its own account only, and a downgrade drops only the column
(the refresh tokens that hang off the sessions by a cascading foreign key stay)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from securechat.server.storage import accounts as account_store
from securechat.server.storage import device_auth as store
from securechat.server.storage.database import Database

from .migration_support import add_user, columns, database, row_counts, table_names, to_revision  # noqa: F401

LAPTOP = "a" * 32


async def add_session_at_0016(conn: AsyncConnection, session_id: str, user_id: int) -> None:
    """A session and its refresh token as the 0016 schema stores them, in plain SQL (the
    storage code follows the head schema)."""
    await conn.execute(
        text(
            "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, user_agent)"
            " VALUES (:id, :u, 1, 2, 9999999999999, 'agent')"
        ),
        {"id": session_id, "u": user_id},
    )
    await conn.execute(
        text("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (:h, :s, 1)"),
        {"h": session_id.encode().ljust(32, b"\0"), "s": session_id},
    )


async def test_0017_adds_the_session_device_and_keeps_everything(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0016")
    async with database.write() as conn:
        await add_user(conn, 1, "alice")
        await add_user(conn, 2, "bob", b"b")
        await add_session_at_0016(conn, "s-alice", 1)
        await add_session_at_0016(conn, "s-bob", 2)
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))
        assert "device_id" not in await conn.run_sync(columns, "sessions")

    await to_revision(database, "0017")
    async with database.write() as conn:
        assert await row_counts(conn, set(before)) == before
        listed = await account_store.get_sessions_for_user(conn, 1, 0)
        assert [(row["id"], row["user_agent"], row["device_id"]) for row in listed] == [
            ("s-alice", "agent", None)
        ]
        await store.set_session_device(conn, 1, "s-alice", LAPTOP)
        # A session of another account is not touched, whatever the caller names.
        await store.set_session_device(conn, 1, "s-bob", LAPTOP)
        devices = await conn.execute(text("SELECT id, device_id FROM sessions ORDER BY id"))
        assert [tuple(row) for row in devices] == [("s-alice", LAPTOP), ("s-bob", None)]

    await to_revision(database, "0016", down=True)
    async with database.read() as conn:
        assert await row_counts(conn, set(before)) == before
        assert "device_id" not in await conn.run_sync(columns, "sessions")
