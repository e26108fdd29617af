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


async def test_a_new_sqlite_database_and_its_journal_files_are_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    # Under a permissive umask, as a server started from a shell usually has.
    import os

    previous = os.umask(0o022)
    try:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            await migrate(database)
            async with database.write() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            files = sorted(tmp_path.glob("db.sqlite*"))
            assert tmp_path / "db.sqlite" in files and tmp_path / "db.sqlite-wal" in files
            for path in files:
                assert path.stat().st_mode & 0o777 == 0o600, path
        finally:
            await database.dispose()
    finally:
        os.umask(previous)


async def test_an_existing_sqlite_database_that_others_can_read_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    path.write_bytes(b"")
    wal = tmp_path / "old.sqlite-wal"
    wal.write_bytes(b"")
    for made in (path, wal):
        made.chmod(0o644)
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.dispose()
    assert [p.stat().st_mode & 0o777 for p in (path, wal)] == [0o600, 0o600]
