"""Migration 0015 (device challenges and inbox floors) on a database at 0014, on SQLite
and PostgreSQL: every stored row stays, a challenge is taken once, a device listed again
goes on from the inbox position it had, and a downgrade drops only the new tables."""

from __future__ import annotations

from sqlalchemy import text

from securechat.server.storage import device_auth as store
from securechat.server.storage import devices as device_store
from securechat.server.storage.database import Database

from .migration_support import add_user, database, row_counts, table_names, to_revision  # noqa: F401

PHONE, TABLET = "a" * 32, "b" * 32


async def test_0015_adds_challenges_and_floors_and_keeps_everything(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0014")
    async with database.write() as conn:
        await add_user(conn, 1, "alice")
        await conn.execute(
            text(
                "INSERT INTO devices (user_id, device_id, signing_key, added_at, inbox_head)"
                " VALUES (1, :d, :k, 0, 7)"
            ),
            {"d": PHONE, "k": bytes(32)},
        )
        await conn.execute(
            text(
                "INSERT INTO device_lists (user_id, version, list_hash, document, updated_at)"
                " VALUES (1, 1, :h, '{}', 0)"
            ),
            {"h": bytes(32)},
        )
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))

    await to_revision(database, "0015")
    async with database.write() as conn:
        assert await row_counts(conn, set(before)) == before
        await store.add_challenge(conn, b"n" * 32, 1, PHONE, "session", 100, 0, 8)
        taken = await store.take_challenge(conn, b"n" * 32)
        assert taken is not None and (taken["device_id"], taken["expires_at"]) == (PHONE, 100)
        assert await store.take_challenge(conn, b"n" * 32) is None
        # The phone revoked (its position 7 kept), then listed again: it goes on from 7.
        await device_store.put_list(conn, 1, 2, b"2" * 32, "{}", [(TABLET, bytes(32))], 10)
        await device_store.put_list(
            conn, 1, 3, b"3" * 32, "{}", [(PHONE, bytes(32)), (TABLET, bytes(32))], 20
        )
        heads = await conn.execute(text("SELECT device_id, inbox_head FROM devices ORDER BY device_id"))
        assert [tuple(row) for row in heads] == [(PHONE, 7), (TABLET, 0)]

    await to_revision(database, "0014", down=True)
    async with database.read() as conn:
        assert await table_names(conn) == set(before)
