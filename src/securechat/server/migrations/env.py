"""Alembic environment. The server runs migrations at start through
``securechat.server.storage.migrate``, passing its own connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from securechat.server.storage.tables import metadata

config = context.config
target_metadata = metadata


def run_with_connection(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables.
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with_connection(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as sync_connection:
        run_with_connection(sync_connection)
