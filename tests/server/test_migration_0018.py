"""Migration 0018 (v2 direct conversations recorded like v1's) on a database at 0017, on
SQLite and PostgreSQL: each v2 conversation without a row gets one with its two accounts
(from its first message's targets, at that message's time); a conversation that has its
rows already is left as it is; a hand-over to the account's own devices gets none; no
other row changes, and a downgrade keeps the rows."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.server.storage.database import Database

from .migration_support import add_user, database, row_counts, table_names, to_revision  # noqa: F401

AB = direct_conversation_id(Username("alice"), Username("bob"))
AC = direct_conversation_id(Username("alice"), Username("carol"))
AA = direct_conversation_id(Username("alice"), Username("alice"))


async def add_v2_message(
    conn: AsyncConnection, pk: int, conversation_id: str, sender_id: int, names: list[str], at: int
) -> None:
    envelope = {"v": 2, "targets": [{"username": n, "device_list_version": 1, "devices": []} for n in names]}
    await conn.execute(
        text(
            "INSERT INTO v2_messages (id, message_id, conversation_id, sender_id, envelope_sha256,"
            " envelope, server_ts) VALUES (:pk, :mid, :cid, :sender, :digest, :envelope, :at)"
        ),
        {
            "pk": pk,
            "mid": f"00000000-0000-4000-8000-{pk:012d}",
            "cid": conversation_id,
            "sender": sender_id,
            "digest": bytes(32),
            "envelope": json.dumps(envelope),
            "at": at,
        },
    )


async def members(conn: AsyncConnection, conversation_id: str) -> list[tuple[int, int]]:
    rows = await conn.execute(
        text(
            "SELECT user_id, joined_at FROM conversation_members WHERE conversation_id = :c ORDER BY user_id"
        ),
        {"c": conversation_id},
    )
    return [(row[0], row[1]) for row in rows]


async def test_0018_records_v2_direct_conversations(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0017")
    async with database.write() as conn:
        for uid, name in ((1, "alice"), (2, "bob"), (3, "carol")):
            await add_user(conn, uid, name, bytes([uid]))
        # alice and carol talked in v1 first: their conversation has its rows (from 5).
        await conn.execute(
            text("INSERT INTO conversations (id, kind, created_at) VALUES (:c, 'direct', 5)"), {"c": AC}
        )
        for uid in (1, 3):
            await conn.execute(
                text(
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (:c, :u, 5)"
                ),
                {"c": AC, "u": uid},
            )
        await add_v2_message(conn, 1, AB, 2, ["alice", "bob"], 100)
        await add_v2_message(conn, 2, AB, 1, ["alice", "bob"], 200)
        await add_v2_message(conn, 3, AC, 3, ["alice", "carol"], 300)
        await add_v2_message(conn, 4, AA, 1, ["alice"], 400)
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))

    await to_revision(database, "0018")
    async with database.read() as conn:
        after = await row_counts(conn, set(before))
        assert after == before | {"conversations": 2, "conversation_members": 4}
        created = await conn.execute(
            text("SELECT id, kind, created_at FROM conversations ORDER BY created_at")
        )
        assert [tuple(row) for row in created] == [(AC, "direct", 5), (AB, "direct", 100)]
        assert await members(conn, AB) == [(1, 100), (2, 100)]
        assert await members(conn, AC) == [(1, 5), (3, 5)]
        assert await members(conn, AA) == []

    await to_revision(database, "0017", down=True)
    async with database.read() as conn:
        assert await row_counts(conn, set(before)) == after
