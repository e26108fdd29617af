"""Migration 0014 (identity-key transitions) on a database at 0013, on SQLite and
PostgreSQL: every stored row stays, an account's key stays its registered one until a
transition is stored, a key cannot come back (unique per account), and a downgrade drops
only the new table."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.server.storage import identity_transitions as store
from securechat.server.storage.database import Database

from .migration_support import add_user, database, row_counts, table_names, to_revision  # noqa: F401

SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
K1, K2, K3 = (ed25519_raw_public(bytes([n]) * 32) for n in (1, 2, 3))


async def test_0014_adds_identity_transitions_and_keeps_everything(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0013")
    async with database.write() as conn:
        await add_user(conn, 1, "alice", SPKI_PREFIX + K1)
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))

    await to_revision(database, "0014")
    async with database.write() as conn:
        assert await row_counts(conn, set(before)) == before
        assert await store.current_key(conn, 1) == K1
        await store.add(conn, 1, 1, K1, K2, 10, "{}", 0)
        assert await store.current_key(conn, 1) == K2
        assert await store.key_was_used(conn, 1, K1) and await store.key_was_used(conn, 1, K2)
        assert not await store.key_was_used(conn, 1, K3)
    with pytest.raises(IntegrityError):
        async with database.write() as conn:
            await store.add(conn, 1, 2, K2, K2, 20, "{}", 0)  # new_key unique per account
    with pytest.raises(IntegrityError):
        async with database.write() as conn:
            await store.add(conn, 1, 1, K2, K3, 20, "{}", 0)  # one transition per position
    async with database.read() as conn:
        assert [bytes(row["new_key"]) for row in await store.chain(conn, 1)] == [K2]

    await to_revision(database, "0013", down=True)
    async with database.read() as conn:
        assert await table_names(conn) == set(before)
        assert await row_counts(conn, set(before)) == before
