"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions:
a deferred transaction that reads and then writes can fail with "database is locked"
whatever the busy timeout, because SQLite cannot upgrade its lock while another writer
waits. Writes go through a one-connection pool (writers queue in process) and
``BEGIN IMMEDIATE`` (writers queue across processes, within the busy timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._batch_engine: Engine | None = None
        self._batch_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=4)
            # Batches of the hot write path run on one thread with a plain sqlite3
            # connection: one hand-off per batch rather than one per statement.
            self._batch_engine = create_engine(
                url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1),
                poolclass=QueuePool,
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(self._batch_engine, immediate=True)
            self._batch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")
        else:
            self.write_engine = create_async_engine(
                url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
            )
            self.read_engine = self.write_engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block exits, rolled back on error."""
        async with self.write_engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as connection:
            yield connection

    async def run_batch(
        self, function: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``function(connection, ...)`` synchronously in one write transaction."""
        if self._batch_engine is not None and self._batch_thread is not None:
            engine = self._batch_engine

            def in_transaction() -> T:
                with engine.begin() as connection:
                    return function(connection, *args, **kwargs)

            return await asyncio.get_running_loop().run_in_executor(self._batch_thread, in_transaction)
        async with self.write_engine.begin() as connection:
            return await connection.run_sync(function, *args, **kwargs)

    async def dispose(self) -> None:
        if self._batch_engine is not None and self._batch_thread is not None:
            self._batch_thread.shutdown(wait=True)
            self._batch_engine.dispose()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        # Errors and logs never show bound values (envelopes, hashes, tokens).
        hide_parameters=True,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    _configure_sqlite(engine.sync_engine, immediate=immediate)
    return engine


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a message acknowledged to a client survives power loss, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
