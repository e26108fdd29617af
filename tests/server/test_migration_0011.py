"""Migration 0011 (protocol v2 device lists and prekeys) on a database filled at 0010,
on SQLite and PostgreSQL: every stored row stays, the new tables work with the storage
code (a list, its devices, prekeys claimed once), and a downgrade drops only them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from securechat.server.storage import devices as device_store
from securechat.server.storage import prekeys as prekey_store
from securechat.server.storage.database import Database

from .migration_support import add_list_at_0011, add_user, database, row_counts, table_names, to_revision  # noqa: F401

NEW_TABLES = {"device_lists", "devices", "one_time_prekeys"}
DEVICE = "0123456789abcdef" * 2


async def fill_at_0010(conn: AsyncConnection) -> None:
    """Users, a conversation with a message, inbox entries, a receipt mark, a file and a
    rate event: a little of everything the v1 server stores."""
    cid = "dm-" + "d" * 32
    for user_id, name in ((1, "alice"), (2, "bob")):
        await conn.execute(
            text(
                "INSERT INTO users (id, username, created_at, auth_hash, kdf_salt, kdf_iterations,"
                " signing_key, encryption_key, encryption_key_signature, key_bundle, keys_updated_at,"
                " stored_bytes) VALUES (:id, :name, 0, 'x', :salt, 600000, :k, :k, :k, '{}', 0, 26)"
            ),
            {"id": user_id, "name": name, "salt": bytes(16), "k": b"k"},
        )
    await conn.execute(
        text("INSERT INTO conversations (id, kind, created_at) VALUES (:c, 'direct', 1)"), {"c": cid}
    )
    await conn.execute(
        text(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (:c, 1, 1), (:c, 2, 1)"
        ),
        {"c": cid},
    )
    await conn.execute(
        text(
            "INSERT INTO messages (id, message_id, conversation_id, sender_id, client_ts, server_ts,"
            " size, envelope_sha256, envelope) VALUES (1, :mid, :c, 1, 0, 1, 2, :h, '{}')"
        ),
        {"mid": "00000000-0000-4000-8000-0000000000bb", "c": cid, "h": bytes(32)},
    )
    await conn.execute(
        text(
            "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at)"
            " VALUES (1, 1, 'message', 1, 1), (2, 1, 'message', 1, 1)"
        )
    )
    await conn.execute(
        text(
            "INSERT INTO receipt_marks (message_pk, reader_id, status, signed, created_at)"
            " VALUES (1, 2, 'read', :signed, 1)"
        ),
        {"signed": True},
    )
    await conn.execute(
        text(
            "INSERT INTO files (file_id, conversation_id, uploader_id, size, chunks, created_at)"
            " VALUES ('00000000-0000-4000-8000-0000000000cc', :c, 1, 10, 1, 1)"
        ),
        {"c": cid},
    )
    await conn.execute(text("INSERT INTO rate_events (action, subject, at) VALUES ('lookup', 'user:1', 1)"))


async def test_0011_keeps_every_row_adds_the_v2_tables_and_goes_back(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0010")
    async with database.write() as conn:
        await fill_at_0010(conn)
    async with database.read() as conn:
        old_tables = await table_names(conn)
        before = await row_counts(conn, old_tables)
    assert not old_tables & NEW_TABLES
    assert before["users"] == 2 and before["messages"] == 1

    await to_revision(database, "0011")
    async with database.write() as conn:
        assert await table_names(conn) == old_tables | NEW_TABLES
        assert await row_counts(conn, old_tables) == before
        await add_list_at_0011(conn, 1, DEVICE)

    await to_revision(database, "0010", down=True)
    async with database.read() as conn:
        assert await table_names(conn) == old_tables
        assert await row_counts(conn, old_tables) == before
    # And up again, as a deployment that rolled back and forward would.
    await to_revision(database, "head")
    async with database.write() as conn:
        assert await row_counts(conn, NEW_TABLES) == dict.fromkeys(sorted(NEW_TABLES), 0)
        # The tables 0011 made work with the storage code (which follows the head schema).
        written = await device_store.put_list(conn, 1, 1, bytes(32), '{"v":2}', [(DEVICE, bytes(32))], 5)
        assert (written.outcome, written.added) == ("stored", (DEVICE,))
        stored = await prekey_store.add_one_time_prekeys(conn, 1, DEVICE, [(7, "{}"), (8, "{}")], 500)
        assert (stored.refused, stored.stored, stored.next_prekey_id) == (None, 2, 9)
        assert await prekey_store.claim_one_time_prekey(conn, 1, DEVICE) == "{}"
        assert await prekey_store.count_one_time_prekeys(conn, 1, DEVICE) == 1
        stale = await device_store.put_list(conn, 1, 1, bytes(31) + b"x", "{}", [], 6)
        assert stale.outcome == "stale"


async def test_0011_deleting_an_account_deletes_its_v2_rows(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0011")
    async with database.write() as conn:
        await add_user(conn, 2, "bob")
        await add_list_at_0011(conn, 2, DEVICE, version=3)
        await conn.execute(
            text(
                "INSERT INTO one_time_prekeys (user_id, device_id, prekey_id, prekey) VALUES (2, :d, 1, '{}')"
            ),
            {"d": DEVICE},
        )
    async with database.write() as conn:
        assert set((await row_counts(conn, NEW_TABLES)).values()) == {1}
        await conn.execute(text("DELETE FROM users WHERE id = 2"))
    async with database.read() as conn:
        assert await row_counts(conn, NEW_TABLES) == dict.fromkeys(sorted(NEW_TABLES), 0)
