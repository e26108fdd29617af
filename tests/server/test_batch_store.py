"""The group-commit writer's queries (``storage.batch``), on each way they run.

They are written as driver SQL, so they are checked here against the schema on every
path: SQLite through the writer's plain ``sqlite3`` connection (``run_write_batch``),
SQLite through SQLAlchemy (``run_batch``, as the group and presence services call them),
and PostgreSQL through asyncpg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from securechat.server.settings import Settings
from securechat.server.storage import batch
from securechat.server.storage import messages as message_store
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import inbox_entries, users

from ..conftest import throwaway_postgres

Runner = Callable[..., Any]


@pytest.fixture(params=["sqlite-driver", "sqlite-sqlalchemy", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Database, Runner]]:
    async def open_database(url: str) -> AsyncIterator[tuple[Database, Runner]]:
        database = Database(url)
        try:
            await migrate(database)
            async with database.write() as conn:
                for name in ("alice", "bob", "carol"):
                    await conn.execute(
                        insert(users).values(
                            username=name,
                            created_at=0,
                            auth_hash="x",
                            kdf_salt=bytes(16),
                            kdf_iterations=600_000,
                            signing_key=b"s",
                            encryption_key=b"e",
                            encryption_key_signature=b"g",
                            key_bundle="{}",
                            keys_updated_at=0,
                        )
                    )
            runner = database.run_batch if request.param == "sqlite-sqlalchemy" else database.run_write_batch
            yield database, runner
        finally:
            await database.dispose()

    if request.param == "postgresql":
        async with throwaway_postgres("securechat_batch") as (_, url):
            async for pair in open_database(Settings(database_url=url).sqlalchemy_url()):
                yield pair
    else:
        async for pair in open_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"):
            yield pair


def _message(message_id: str, conversation_id: str, sender_id: int, ts: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "client_ts": ts,
        "server_ts": ts + 1,
        "size": 10,
        "envelope_sha256": bytes([ts % 256]) * 32,
        "envelope": '{"opaque":true}',
    }


async def test_every_writer_query_on_each_path(store: tuple[Database, Runner]) -> None:
    database, run = store
    cid = "dm-" + "1" * 32
    mid1, mid2, mid3 = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))

    def setup(conn: Any) -> dict[str, Any]:
        ids = batch.get_user_ids(conn, ["alice", "bob", "carol", "nobody"])
        assert set(ids) == {"alice", "bob", "carol"}
        assert batch.get_conversation_ids(conn, [cid]) == set()
        batch.add_conversation(conn, cid, "direct", [ids["alice"], ids["bob"]], 5)
        # Stored meanwhile by a v2 message on another instance: the first rows stand.
        batch.add_conversation(conn, cid, "direct", [ids["alice"], ids["bob"]], 6, if_absent=True)
        assert batch.get_conversation_ids(conn, [cid, "grp-" + "2" * 32]) == {cid}
        members = batch.get_members_by_conversation(conn, [cid, "grp-" + "2" * 32])
        assert members == {cid: {"alice": ids["alice"], "bob": ids["bob"]}, "grp-" + "2" * 32: {}}
        # Empty inboxes start at 1 (bob's block of 4 below, alice's of 1).
        first = batch.allocate_inbox_seqs(conn, {ids["alice"]: 1, ids["bob"]: 4})
        assert first == {ids["alice"]: 1, ids["bob"]: 1}
        pks = batch.add_messages(
            conn, [_message(m, cid, ids["alice"], 100 + i) for i, m in enumerate((mid1, mid2, mid3))]
        )
        assert len(set(pks)) == 3
        rows = [
            {
                "user_id": ids["bob"],
                "seq": seq,
                "kind": "message",
                "message_pk": pk,
                "data": None,
                "created_at": 7,
                "delivered_at": None,
            }
            for seq, pk in zip((1, 2, 3), pks, strict=True)
        ]
        rows.append(
            {
                "user_id": ids["bob"],
                "seq": 4,
                "kind": "receipt",
                "message_pk": None,
                "data": '{"x":1}',
                "created_at": 7,
                "delivered_at": None,
            }
        )
        rows.append(
            {
                "user_id": ids["alice"],
                "seq": 1,
                "kind": "message",
                "message_pk": pks[0],
                "data": None,
                "created_at": 7,
                "delivered_at": 7,
            }
        )
        batch.add_inbox_entries(conn, rows)
        # Numbering goes on after each user's newest entry.
        after = batch.allocate_inbox_seqs(conn, {ids["alice"]: 2, ids["bob"]: 1, ids["carol"]: 1})
        assert after == {ids["alice"]: 2, ids["bob"]: 5, ids["carol"]: 1}
        return {"ids": ids, "pks": pks}

    made = await run(setup)
    ids, pks = made["ids"], made["pks"]

    def check(conn: Any) -> None:
        found = batch.get_messages_by_message_ids(conn, [mid1, mid3, "00000000-0000-4000-8000-0000000000ff"])
        assert set(found) == {mid1, mid3}
        assert found[mid1]["id"] == pks[0]
        assert found[mid1]["conversation_id"] == cid
        assert found[mid1]["sender_id"] == ids["alice"]
        assert found[mid1]["server_ts"] == 101
        assert found[mid1]["envelope_sha256"] == bytes([100]) * 32
        assert "envelope" not in found[mid1]
        # Bob has processed entries up to 2: two messages become delivered, the third
        # and the receipt are untouched; alice's own copy was delivered from the start.
        undelivered = batch.get_undelivered_messages_up_to(conn, {ids["bob"]: 2, ids["alice"]: 9})
        assert [(r["user_id"], r["seq"], r["message_id"]) for r in undelivered] == [
            (ids["bob"], 1, mid1),
            (ids["bob"], 2, mid2),
        ]
        assert all(r["sender_id"] == ids["alice"] for r in undelivered)
        batch.mark_delivered_up_to(conn, {ids["bob"]: 2}, 999)
        assert batch.get_undelivered_messages_up_to(conn, {ids["bob"]: 9}) == [
            {
                "user_id": ids["bob"],
                "seq": 3,
                "message_id": mid3,
                "sender_id": ids["alice"],
                "message_pk": pks[2],
            }
        ]
        # Receipts: each (reader, message, status, signed) once; the unsigned claim not
        # after the signed receipt.
        assert batch.add_receipt_marks(conn, ids["bob"], "read", True, [pks[1], pks[0], pks[1]], 5) == {
            pks[0],
            pks[1],
        }
        assert batch.add_receipt_marks(conn, ids["bob"], "read", True, pks, 6) == {pks[2]}
        assert batch.add_receipt_marks(conn, ids["bob"], "read", True, pks, 7) == set()
        assert batch.add_receipt_marks(conn, ids["bob"], "read", False, pks, 7) == set()
        assert batch.add_receipt_marks(conn, ids["bob"], "delivered", False, pks[:2], 7) == set(pks[:2])
        assert batch.add_receipt_marks(conn, ids["bob"], "delivered", True, pks, 7) == set(pks)
        assert batch.add_receipt_marks(conn, ids["alice"], "read", True, pks, 7) == set(pks)
        assert batch.add_receipt_marks(conn, ids["alice"], "read", True, [], 7) == set()
        assert batch.get_inbox_seq_for_message(conn, ids["bob"], pks[2]) == 3
        assert batch.get_inbox_seq_for_message(conn, ids["alice"], pks[0]) == 1

    await run(check)

    # What the queries wrote, read back through SQLAlchemy.
    async with database.read() as conn:
        assert [
            await message_store.get_inbox_head(conn, ids[name]) for name in ("alice", "bob", "carol")
        ] == [
            1,
            4,
            0,
        ]
        # The conversation's last message time is its newest message's.
        (listed,) = await message_store.get_conversations_for_user(conn, ids["bob"])
        assert (listed["id"], listed["last_message_at"]) == (cid, 103)
        delivered = dict(
            (
                await conn.execute(
                    select(inbox_entries.c.seq, inbox_entries.c.delivered_at).where(
                        inbox_entries.c.user_id == ids["bob"]
                    )
                )
            ).all()
        )
        assert delivered == {1: 999, 2: 999, 3: None, 4: None}


async def test_a_failed_batch_writes_nothing(store: tuple[Database, Runner]) -> None:
    database, run = store
    cid = "dm-" + "3" * 32

    def half_then_fail(conn: Any) -> None:
        ids = batch.get_user_ids(conn, ["alice", "bob"])
        batch.add_conversation(conn, cid, "direct", list(ids.values()), 1)
        batch.add_inbox_entries(
            conn,
            [
                {
                    "user_id": ids["alice"],
                    "seq": 1,
                    "kind": "receipt",
                    "message_pk": None,
                    "data": "{}",
                    "created_at": 1,
                    "delivered_at": None,
                }
            ],
        )
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError):
        await run(half_then_fail)

    def nothing_stored(conn: Any) -> None:
        assert batch.get_conversation_ids(conn, [cid]) == set()

    await run(nothing_stored)
    async with database.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox_entries))).scalar_one() == 0


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("qmark", "SELECT a FROM t WHERE a IN (?, ?) AND b = ?"),
        ("numeric_dollar", "SELECT a FROM t WHERE a IN ($1, $2) AND b = $3"),
        ("format", "SELECT a FROM t WHERE a IN (%s, %s) AND b = %s"),
    ],
)
def test_markers_follow_the_driver(style: str, expected: str) -> None:
    assert batch._for_driver(style, "SELECT a FROM t WHERE a IN (?, ?) AND b = ?") == expected


async def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A COMMIT can fail (here a deferred foreign key; in life a full disk): the writer's
    connection must roll back, so the next batch starts cleanly and nothing half-made stays."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    cid = "dm-" + "4" * 32
    try:
        await migrate(database)

        def fails_at_commit(conn: Any) -> None:
            conn.connection.execute("PRAGMA defer_foreign_keys=ON")
            batch.add_conversation(conn, cid, "direct", [4242], 1)  # no user 4242

        with pytest.raises(sqlite3.IntegrityError):
            await database.run_write_batch(fails_at_commit)

        def next_batch(conn: Any) -> set[str]:
            return batch.get_conversation_ids(conn, [cid])

        assert await database.run_write_batch(next_batch) == set()
    finally:
        await database.dispose()
