"""SQLite's write-ahead log is copied back by a background thread, and still starts
over from its beginning under continuous writes (storage/checkpoint.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from securechat.server.storage.checkpoint import AUTOCHECKPOINT_PAGES, CheckpointResult, WalCheckpointer
from securechat.server.storage.database import Database, DriverConnection
from securechat.server.storage.migrate import migrate

PAGE = 4096


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(db)
    try:
        yield db
    finally:
        await db.dispose()


def insert_conversations(conn: DriverConnection, start: int, count: int) -> None:
    # Rows in a table with a random-looking key: each commit dirties many pages.
    conn.connection.executemany(
        "INSERT INTO conversations (id, kind, created_at) VALUES (?, 'direct', 0)",
        [(f"dm-{(n * 2654435761) % 2**128:032x}",) for n in range(start, start + count)],
    )


async def test_writers_checkpoint_only_at_the_larger_threshold(database: Database) -> None:
    async with database.read() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == AUTOCHECKPOINT_PAGES

    def writer_setting(conn: DriverConnection) -> Any:
        return conn.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

    assert await database.run_write_batch(writer_setting) == AUTOCHECKPOINT_PAGES


async def test_the_checkpointer_copies_the_log_back_without_the_writer(database: Database) -> None:
    assert database.checkpointer is not None
    await database.run_write_batch(insert_conversations, 0, 2_000)
    # Well under the writers' threshold: only the background thread copies pages back.
    async with asyncio.timeout(10):
        while True:
            result = database.checkpointer.last_result
            if result is not None and result.log_pages > 0 and result.checkpointed_pages == result.log_pages:
                break
            await asyncio.sleep(0.05)
    assert result.log_pages < AUTOCHECKPOINT_PAGES
    assert isinstance(result, CheckpointResult) and not result.busy


async def test_the_log_stays_bounded_under_continuous_writes(database: Database, tmp_path: Path) -> None:
    wal = tmp_path / "db.sqlite-wal"
    largest = 0

    async def writer(first: int) -> None:
        nonlocal largest
        for batch in range(400):
            await database.run_write_batch(insert_conversations, first + batch * 20, 20)
            largest = max(largest, wal.stat().st_size)

    # Small commits with no pause between them (four writers keep the batch thread
    # busy), as under a steady stream of messages: several times the threshold in log
    # pages. A background checkpoint alone never catches up with such a log, so it
    # could never start over; the writers' own checkpoint lets it.
    await asyncio.gather(*(writer(n * 1_000_000) for n in range(4)))
    written = (
        sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT count(*) FROM conversations").fetchone()[0]
    )
    assert written == 4 * 400 * 20
    assert largest < 2 * AUTOCHECKPOINT_PAGES * (PAGE + 24)


async def test_dispose_stops_the_thread_and_leaves_no_log(database: Database, tmp_path: Path) -> None:
    await database.run_write_batch(insert_conversations, 0, 100)
    checkpointer = database.checkpointer
    assert checkpointer is not None and checkpointer._thread is not None
    thread = checkpointer._thread
    await database.dispose()
    assert not thread.is_alive()
    # Every connection is closed (the checkpointer's too), so SQLite folded the log
    # into the database file and removed it.
    assert not (tmp_path / "db.sqlite-wal").exists()


def test_a_database_that_cannot_be_opened_is_logged_and_the_thread_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "missing-dir" / "db.sqlite"), lambda _connection: None)
    with caplog.at_level("WARNING", logger="securechat.server.storage.checkpoint"):
        checkpointer.start()
        assert checkpointer._thread is not None
        checkpointer._thread.join(timeout=5)
        assert not checkpointer._thread.is_alive()
    assert "could not open the database" in caplog.text
    checkpointer.stop()
