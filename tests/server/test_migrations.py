"""Migrations that change stored data keep what is stored, on both databases."""

from __future__ import annotations

import json

from sqlalchemy import inspect, text

from securechat.protocol.groups import ChainHead, check_next, genesis, sign_change
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PublicIdentity
from securechat.server.storage import groups as group_store
from securechat.server.storage import messages as message_store
from securechat.server.storage.database import Database

from ..api.support import identity_for
from .migration_support import columns, database, to_revision  # noqa: F401


def identity_lookup(name: Username) -> PublicIdentity | None:
    return identity_for(name).public if name in ("alice", "bob", "carol") else None


async def test_0007_derives_inbox_heads_and_last_message_times(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0006")
    async with database.write() as conn:
        for user_id, name, head in ((1, "alice", 3), (2, "bob", 2), (3, "carol", 0)):
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, created_at, auth_hash, kdf_salt, kdf_iterations,"
                    " signing_key, encryption_key, encryption_key_signature, key_bundle, keys_updated_at,"
                    " inbox_seq) VALUES (:id, :name, 0, 'x', :salt, 600000, :k, :k, :k, '{}', 0, :head)"
                ),
                {"id": user_id, "name": name, "salt": bytes(16), "k": b"k", "head": head},
            )
        for cid, last in (("dm-" + "a" * 32, 20), ("dm-" + "b" * 32, None)):
            await conn.execute(
                text(
                    "INSERT INTO conversations (id, kind, created_at, last_message_at) VALUES (:id, 'direct', 1, :t)"
                ),
                {"id": cid, "t": last},
            )
            await conn.execute(
                text(
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (:c, 1, 1), (:c, 2, 1)"
                ),
                {"c": cid},
            )
        for pk, ts in ((1, 10), (2, 20)):
            await conn.execute(
                text(
                    "INSERT INTO messages (id, message_id, conversation_id, sender_id, client_ts, server_ts,"
                    " size, envelope_sha256, envelope) VALUES (:pk, :mid, :c, 1, 0, :ts, 2, :h, '{}')"
                ),
                {
                    "pk": pk,
                    "mid": f"00000000-0000-4000-8000-00000000000{pk}",
                    "c": "dm-" + "a" * 32,
                    "ts": ts,
                    "h": bytes(32),
                },
            )
        entries = [(1, 1, 1), (1, 2, 2), (1, 3, None), (2, 1, 1), (2, 2, 2)]
        for user_id, seq, pk in entries:
            await conn.execute(
                text(
                    "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, data, created_at)"
                    " VALUES (:u, :s, :k, :pk, :d, 0)"
                ),
                {
                    "u": user_id,
                    "s": seq,
                    "k": "message" if pk else "receipt",
                    "pk": pk,
                    "d": None if pk else "{}",
                },
            )

    await to_revision(database, "head")
    async with database.read() as conn:
        assert "inbox_seq" not in await conn.run_sync(columns, "users")
        assert "last_message_at" not in await conn.run_sync(columns, "conversations")
        # Nothing stored was lost: heads and times read from the entries and messages.
        assert [await message_store.get_inbox_head(conn, uid) for uid in (1, 2, 3)] == [3, 2, 0]
        listed = await message_store.get_conversations_for_user(conn, 2)
        assert [(row["id"], row["last_message_at"]) for row in listed] == [
            ("dm-" + "a" * 32, 20),
            ("dm-" + "b" * 32, None),
        ]
        count = (await conn.execute(text("SELECT count(*) FROM inbox_entries"))).scalar_one()
        assert count == len(entries)

    await to_revision(database, "0006", down=True)
    async with database.read() as conn:
        heads = (await conn.execute(text("SELECT username, inbox_seq FROM users ORDER BY id"))).all()
        assert [tuple(row) for row in heads] == [("alice", 3), ("bob", 2), ("carol", 0)]
        times = (await conn.execute(text("SELECT id, last_message_at FROM conversations ORDER BY id"))).all()
        assert [tuple(row) for row in times] == [("dm-" + "a" * 32, 20), ("dm-" + "b" * 32, None)]


async def test_0008_backfills_each_groups_verified_head(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0007")
    alice, bob = identity_for("alice"), identity_for("bob")
    start = 1_767_225_600_000
    made = [sign_change(alice, None, "create", ["bob"], at=start)]
    state = genesis(made[0], identity_lookup)
    for at, (actor, action, targets) in enumerate(
        [(alice, "add", ["carol"]), (alice, "promote", ["bob"]), (bob, "remove", ["carol"])], start=start + 1
    ):
        made.append(sign_change(actor, state, action, targets, at=at))
        state = state.apply(made[-1], identity_lookup)
    good = state.group_id
    # A second group whose stored chain was altered in the database: it does not replay.
    broken_create = sign_change(alice, None, "create", ["bob"], at=start)
    broken_next = sign_change(alice, genesis(broken_create, identity_lookup), "add", ["carol"], at=start + 1)
    broken = broken_create.group_id
    tampered = broken_next.to_wire() | {"prev": "00" * 32}

    async with database.write() as conn:
        for user_id, name in ((1, "alice"), (2, "bob"), (3, "carol")):
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, created_at, auth_hash, kdf_salt, kdf_iterations,"
                    " signing_key, encryption_key, encryption_key_signature, key_bundle, keys_updated_at)"
                    " VALUES (:id, :name, 0, 'x', :salt, 600000, :k, :k, :k, '{}', 0)"
                ),
                {"id": user_id, "name": name, "salt": bytes(16), "k": b"k"},
            )
        for group_id, wires in (
            (good, [c.to_wire() for c in made]),
            (broken, [broken_create.to_wire(), tampered]),
        ):
            await conn.execute(
                text("INSERT INTO conversations (id, kind, created_at) VALUES (:id, 'group', 1)"),
                {"id": group_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (:c, 1, 1), (:c, 2, 1)"
                ),
                {"c": group_id},
            )
            for seq, wire in enumerate(wires):
                await conn.execute(
                    text(
                        "INSERT INTO group_changes (conversation_id, seq, change, created_at) VALUES (:c, :s, :t, 1)"
                    ),
                    {"c": group_id, "s": seq, "t": json.dumps(wire)},
                )

    await to_revision(database, "0008")
    async with database.read() as conn:
        head = await conn.run_sync(group_store.get_head, good)
        assert head == ChainHead.of(state)
        assert (head.seq, sorted(head.members), sorted(head.admins)) == (
            3,
            ["alice", "bob"],
            ["alice", "bob"],
        )
        assert await conn.run_sync(group_store.get_head, broken) is None
        # The stored head is what the next change is checked against.
        following = sign_change(bob, state, "add", ["carol"], at=start + 10)
        assert check_next(head, following, identity_lookup).seq == 4
        count = (await conn.execute(text("SELECT count(*) FROM group_changes"))).scalar_one()
        assert count == len(made) + 2

    await to_revision(database, "0007", down=True)
    async with database.read() as conn:
        assert "group_heads" not in await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        count = (await conn.execute(text("SELECT count(*) FROM group_changes"))).scalar_one()
        assert count == len(made) + 2


async def test_0010_counts_stored_bytes_and_keeps_one_receipt_per_kind(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0009")
    cid = "dm-" + "c" * 32
    async with database.write() as conn:
        for user_id, name in ((1, "alice"), (2, "bob"), (3, "carol")):
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, created_at, auth_hash, kdf_salt, kdf_iterations,"
                    " signing_key, encryption_key, encryption_key_signature, key_bundle, keys_updated_at)"
                    " VALUES (:id, :name, 0, 'x', :salt, 600000, :k, :k, :k, '{}', 0)"
                ),
                {"id": user_id, "name": name, "salt": bytes(16), "k": b"k"},
            )
        await conn.execute(
            text("INSERT INTO conversations (id, kind, created_at) VALUES (:c, 'direct', 1)"), {"c": cid}
        )
        # alice: a complete file of 2 MiB + 1000 bytes (3 chunks) and an unfinished empty
        # one (1 chunk); bob: 10 bytes; carol: nothing.
        uploads = [(1, 2 * 1024 * 1024 + 1000, 3, 5), (1, 0, 1, None), (2, 10, 1, 6)]
        for number, (uploader, size, chunks, completed) in enumerate(uploads, 1):
            await conn.execute(
                text(
                    "INSERT INTO files (file_id, conversation_id, uploader_id, size, chunks, created_at, completed_at)"
                    " VALUES (:f, :c, :u, :s, :n, 1, :done)"
                ),
                {
                    "f": f"00000000-0000-4000-8000-0000000000{number:02d}",
                    "c": cid,
                    "u": uploader,
                    "s": size,
                    "n": chunks,
                    "done": completed,
                },
            )
        await conn.execute(
            text(
                "INSERT INTO messages (id, message_id, conversation_id, sender_id, client_ts, server_ts,"
                " size, envelope_sha256, envelope) VALUES (1, :mid, :c, 1, 0, 1, 2, :h, '{}')"
            ),
            {"mid": "00000000-0000-4000-8000-0000000000aa", "c": cid, "h": bytes(32)},
        )

    await to_revision(database, "0010")
    async with database.write() as conn:
        stored = (await conn.execute(text("SELECT username, stored_bytes FROM users ORDER BY id"))).all()
        # Each chunk stores its plaintext and a 16-byte tag; unfinished uploads count too.
        assert [tuple(row) for row in stored] == [
            ("alice", 2 * 1024 * 1024 + 1000 + 3 * 16 + 16),
            ("bob", 10 + 16),
            ("carol", 0),
        ]
        insert_mark = text(
            "INSERT INTO receipt_marks (message_pk, reader_id, status, signed, created_at)"
            " VALUES (1, 2, :status, :signed, 1) ON CONFLICT DO NOTHING"
        )
        for status, signed in (("read", True), ("read", True), ("read", False), ("delivered", True)):
            await conn.execute(insert_mark, {"status": status, "signed": signed})
        marks = (
            await conn.execute(text("SELECT status, signed FROM receipt_marks ORDER BY status, signed"))
        ).all()
        assert [(status, bool(signed)) for status, signed in marks] == [
            ("delivered", True),
            ("read", False),
            ("read", True),
        ]

    await to_revision(database, "0009", down=True)
    async with database.read() as conn:
        assert "stored_bytes" not in await conn.run_sync(columns, "users")
        assert "receipt_marks" not in await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        count = (await conn.execute(text("SELECT count(*) FROM files"))).scalar_one()
        assert count == len(uploads)
