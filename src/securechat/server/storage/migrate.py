"""Run Alembic migrations to head at server start, on the server's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .database import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every instance.
_PG_MIGRATION_LOCK = 724_115_001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(database: Database) -> None:
    async with database.write_engine.connect() as connection:
        if not database.is_sqlite:
            # Two instances starting together must not both run the same migration.
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        try:
            await connection.run_sync(_upgrade)
            await connection.commit()
        finally:
            if not database.is_sqlite:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK})
                await connection.commit()
