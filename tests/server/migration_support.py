"""What the migration tests share: a database on SQLite and on PostgreSQL, moving it to a
revision, and the row counts and columns they compare before and after.

A test module takes the fixture by importing it (``from .migration_support import database``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from securechat.server.settings import Settings
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import alembic_config

from ..conftest import throwaway_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        async with throwaway_postgres("securechat_migrations") as (_, url):
            db = Database(Settings(database_url=url).sqlalchemy_url())
            try:
                yield db
            finally:
                await db.dispose()
    else:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            yield db
        finally:
            await db.dispose()


async def to_revision(database: Database, revision: str, *, down: bool = False) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    async with database.write_engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()


def columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


async def table_names(conn: AsyncConnection) -> set[str]:
    return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names())) - {"alembic_version"}


async def row_counts(conn: AsyncConnection, tables: set[str]) -> dict[str, int]:
    return {
        name: int((await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar_one())
        for name in sorted(tables)
    }


async def add_user(conn: AsyncConnection, user_id: int, name: str, key: bytes = b"k") -> None:
    """A bare account row, written in SQL so that it fits any revision from 0011 on."""
    await conn.execute(
        text(
            "INSERT INTO users (id, username, created_at, auth_hash, kdf_salt, kdf_iterations,"
            " signing_key, encryption_key, encryption_key_signature, key_bundle, keys_updated_at)"
            " VALUES (:id, :name, 0, 'x', :salt, 600000, :k, :k, :k, '{}', 0)"
        ),
        {"id": user_id, "name": name, "salt": bytes(16), "k": key},
    )


async def add_list_at_0011(conn: AsyncConnection, user_id: int, device_id: str, version: int = 1) -> None:
    """A device list and its device as the 0011 schema stores them, in plain SQL: the
    storage code follows the head schema (0012 added ``devices.inbox_head``), so a test
    that fills a database at 0011 cannot use it."""
    await conn.execute(
        text(
            "INSERT INTO device_lists (user_id, version, list_hash, document, updated_at)"
            " VALUES (:u, :v, :h, '{}', 1)"
        ),
        {"u": user_id, "v": version, "h": bytes(32)},
    )
    await conn.execute(
        text("INSERT INTO devices (user_id, device_id, signing_key, added_at) VALUES (:u, :d, :k, 1)"),
        {"u": user_id, "d": device_id, "k": bytes(32)},
    )
