"""Migration 0019 (v2 messages keep their metadata after delivery) on a database at 0018,
on SQLite and PostgreSQL: stored rows stay with the size of what they hold and no
deletion time; at head, acknowledging the last entry cuts a message to its header; a
downgrade drops the columns and the header-only rows (which 0018's code never kept)."""

from __future__ import annotations

import json

from sqlalchemy import text

from securechat.server.storage import device_inbox as store
from securechat.server.storage.database import Database

from .migration_support import add_user, columns, database, row_counts, table_names, to_revision  # noqa: F401
from .test_migration_0018 import AB, add_v2_message


async def test_0019_keeps_rows_and_cuts_delivered_bodies_to_the_header(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0018")
    async with database.write() as conn:
        for uid, name in ((1, "alice"), (2, "bob")):
            await add_user(conn, uid, name, bytes([uid]))
        await add_v2_message(conn, 1, AB, 1, ["alice", "bob"], 100)
        await add_v2_message(conn, 2, AB, 2, ["alice", "bob"], 200)
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))
        lengths = [
            len(row[0]) for row in await conn.execute(text("SELECT envelope FROM v2_messages ORDER BY id"))
        ]

    await to_revision(database, "0019")
    async with database.write() as conn:
        assert await row_counts(conn, set(before)) == before
        rows = (await conn.execute(text("SELECT size, body_deleted_at FROM v2_messages ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(n, None) for n in lengths]
        # Message 2 with a body, then no entry names it any more: the body goes.
        full = {
            "v": 2,
            "message_id": "m",
            "targets": [],
            "iv": "aXY=",
            "body": "Ym9keQ==",
            "signature": "c2ln",
        }
        await conn.execute(text("UPDATE v2_messages SET envelope = :e WHERE id = 2"), {"e": json.dumps(full)})
        await store.delete_unreferenced_bodies(conn, [2], 300)
        (envelope, deleted_at) = (
            await conn.execute(text("SELECT envelope, body_deleted_at FROM v2_messages WHERE id = 2"))
        ).one()
        assert json.loads(envelope) == {"v": 2, "message_id": "m", "targets": []}
        assert deleted_at == 300

    await to_revision(database, "0018", down=True)
    async with database.read() as conn:
        ids = [row[0] for row in await conn.execute(text("SELECT id FROM v2_messages"))]
        assert ids == [1]
