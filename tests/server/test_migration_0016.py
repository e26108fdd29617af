"""Migration 0016 (the account key sealed under the password) on a database at 0015, on
SQLite and PostgreSQL: every stored row stays, an account without a seal has never
rotated, a seal is one row per account (replaced, never duplicated), it goes with its
account, and a downgrade drops only the new table."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.server.storage import identity_transitions as store
from securechat.server.storage.database import Database
from securechat.server.storage.tables import account_key_seals, users

from .migration_support import add_user, database, row_counts, table_names, to_revision  # noqa: F401

SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
K1, K2, K3 = (ed25519_raw_public(bytes([n]) * 32) for n in (1, 2, 3))


async def test_0016_adds_account_key_seals_and_keeps_everything(database: Database) -> None:  # noqa: F811
    await to_revision(database, "0015")
    async with database.write() as conn:
        await add_user(conn, 1, "alice", SPKI_PREFIX + K1)
    async with database.read() as conn:
        before = await row_counts(conn, await table_names(conn))

    await to_revision(database, "0016")
    async with database.write() as conn:
        assert await row_counts(conn, set(before)) == before
        assert await store.account_key_seal(conn, 1) is None
        await store.put_account_key_seal(conn, 1, K2, '{"first":1}', 0)
        await store.put_account_key_seal(conn, 1, K3, '{"second":2}', 1)
        row = await store.account_key_seal(conn, 1)
        assert row is not None and bytes(row["account_key"]) == K3 and row["document"] == '{"second":2}'
    with pytest.raises(IntegrityError):
        async with database.write() as conn:
            await conn.execute(
                account_key_seals.insert().values(user_id=1, account_key=K2, document="{}", updated_at=2)
            )
    async with database.write() as conn:
        await conn.execute(delete(users).where(users.c.id == 1))
    async with database.read() as conn:
        assert await store.account_key_seal(conn, 1) is None

    await to_revision(database, "0015", down=True)
    async with database.read() as conn:
        assert await table_names(conn) == set(before)
