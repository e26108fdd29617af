"""Stored file bytes per user (``storage.files``), on SQLite and PostgreSQL: reserving is
one statement that checks and adds, so transactions racing on one user never pass the
quota between them; deleting an upload releases its bytes once, however many purges
(on however many instances) reach it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from securechat.server.settings import Settings
from securechat.server.storage import files as store
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import conversation_members, conversations, users

from ..conftest import throwaway_postgres

CID = "dm-" + "5" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async def ready(url: str) -> AsyncIterator[Database]:
        db = Database(url)
        try:
            await migrate(db)
            async with db.write() as conn:
                await conn.execute(
                    insert(users).values(
                        id=1,
                        username="alice",
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
                await conn.execute(insert(conversations).values(id=CID, kind="direct", created_at=0))
                await conn.execute(
                    insert(conversation_members).values(conversation_id=CID, user_id=1, joined_at=0)
                )
            yield db
        finally:
            await db.dispose()

    if request.param == "postgresql":
        async with throwaway_postgres("securechat_usage") as (_, url):
            async for db in ready(Settings(database_url=url).sqlalchemy_url()):
                yield db
    else:
        async for db in ready(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"):
            yield db


async def test_racing_reservations_never_pass_the_quota(database: Database) -> None:
    async def reserve() -> bool:
        async with database.write() as conn:
            granted = await store.reserve_bytes(conn, 1, 300, 1000)
            # Hold the transaction open a moment, so the others really wait on it.
            await asyncio.sleep(0.01)
            return granted

    granted = await asyncio.gather(*(reserve() for _ in range(12)))

    assert sum(granted) == 3
    async with database.read() as conn:
        assert await store.get_stored_bytes(conn, 1) == 900


async def test_an_upload_is_released_once(database: Database) -> None:
    async with database.write() as conn:
        assert await store.reserve_bytes(conn, 1, store.stored_size(5000, 1), 10**6)
        await store.add_file(
            conn,
            file_id="00000000-0000-4000-8000-000000000001",
            conversation_id=CID,
            uploader_id=1,
            size=5000,
            chunks=1,
            created_at=0,
        )
        row = await store.get_file(conn, "00000000-0000-4000-8000-000000000001")
        assert row is not None
    async with database.read() as conn:
        usage = await store.get_usage(conn, 1)
        assert (usage["stored_bytes"], usage["files"], usage["pending_uploads"]) == (5016, 0, 1)

    async def purge() -> bool:
        async with database.write() as conn:
            return await store.delete_file(conn, row["id"])

    assert sorted(await asyncio.gather(purge(), purge(), purge())) == [False, False, True]
    async with database.read() as conn:
        usage = await store.get_usage(conn, 1)
        assert (usage["stored_bytes"], usage["files"], usage["pending_uploads"]) == (0, 0, 0)
