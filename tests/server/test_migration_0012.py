"""Migration 0012 (per-device v2 inboxes) on a database with v2 devices at 0011, on
SQLite and PostgreSQL: devices and their prekeys stay, each device starts at inbox
position 0, and a downgrade drops the inbox tables and the column, keeping the rest."""

from __future__ import annotations

from sqlalchemy import text

from securechat.server.storage import device_inbox as inbox_store
from securechat.server.storage.database import Database

from .migration_support import (
    add_list_at_0011,
    add_user,
    columns,
    database,  # noqa: F401  (a fixture)
    row_counts,
    table_names,
    to_revision,
)
from .test_migration_0011 import DEVICE


async def test_0012_adds_device_inboxes_and_keeps_devices(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0011")
    async with database.write() as conn:
        await add_user(conn, 1, "alice")
        await add_list_at_0011(conn, 1, DEVICE)
        await conn.execute(
            text(
                "INSERT INTO one_time_prekeys (user_id, device_id, prekey_id, prekey) VALUES (1, :d, 1, '{}')"
            ),
            {"d": DEVICE},
        )
        await conn.execute(
            text(
                "INSERT INTO one_time_prekeys (user_id, device_id, prekey_id, prekey) VALUES (1, :d, 2, '{}')"
            ),
            {"d": DEVICE},
        )
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))

    await to_revision(database, "0012")
    async with database.read() as conn:
        assert await row_counts(conn, set(before)) == before
        assert "inbox_head" in await conn.run_sync(columns, "devices")
    # The storage code follows the head schema (0019 added v2_messages.size): the devices
    # carried by 0012 take their first positions there.
    await to_revision(database, "head")
    async with database.write() as conn:
        pk = await inbox_store.add_message(conn, "m1", "dm-x", 1, bytes(32), "{}", {(1, DEVICE): "{}"}, 2, 2)
        assert pk is not None
        rows, head = await inbox_store.get_entries(conn, 1, DEVICE, 0, 10, 1 << 20)
        assert ([int(row["seq"]) for row in rows], head) == ([1], 1)

    await to_revision(database, "0011", down=True)
    async with database.read() as conn:
        assert "inbox_head" not in await conn.run_sync(columns, "devices")
        assert await table_names(conn) == set(before)
        assert await row_counts(conn, set(before)) == before
