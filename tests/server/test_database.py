"""Storage engine behaviour that the rest of the server relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import conversations


async def test_database_errors_never_show_bound_values(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await migrate(database)
        secret = "ciphertext-or-token-that-must-not-be-logged"
        row = {"id": "dm-" + "0" * 32, "kind": secret, "created_at": 0}
        async with database.write() as conn:
            await conn.execute(insert(conversations).values(**row))
        with pytest.raises(IntegrityError) as caught:
            async with database.write() as conn:
                await conn.execute(insert(conversations).values(**row))
        assert secret not in str(caught.value)
    finally:
        await database.dispose()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with database.read() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() >= 5000
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2  # FULL
    finally:
        await database.dispose()


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
def test_sqlite_in_memory_is_refused(url: str) -> None:
    # The reading, writing and batch connections must all see one database.
    with pytest.raises(ValueError, match="database file"):
        Database(url)
