"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions:
a deferred transaction that reads and then writes can fail with "database is locked"
whatever the busy timeout, because SQLite cannot upgrade its lock while another writer
waits. Writes go through a one-connection pool (writers queue in process) and
``BEGIN IMMEDIATE`` (writers queue across processes, within the busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from .checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DriverDialect(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def paramstyle(self) -> str: ...


class DriverConnection(Protocol):
    """What the hot-path queries (``storage.batch``) use of a connection: its DB-API
    connection and its dialect's name and parameter style. A SQLAlchemy ``Connection``
    has both; so has ``SqliteDriverConnection``."""

    @property
    def connection(self) -> Any: ...

    @property
    def dialect(self) -> DriverDialect: ...


@dataclass(frozen=True)
class _SqliteDialect:
    name: str = "sqlite"
    paramstyle: str = sqlite3.paramstyle


@dataclass(frozen=True)
class SqliteDriverConnection:
    connection: sqlite3.Connection
    dialect: _SqliteDialect = _SqliteDialect()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._batch_engine: Engine | None = None
        self._batch_thread: ThreadPoolExecutor | None = None
        self.checkpointer: WalCheckpointer | None = None
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
            # The writer's own batches skip SQLAlchemy altogether (see run_write_batch).
            path = make_url(url).database
            if not path or path == ":memory:":
                # Each engine above has its own connections: they must meet in a file.
                raise ValueError("SQLite needs a database file, not an in-memory database")
            keep_private(path)
            self._sqlite_path = path
            self._writer_connection: sqlite3.Connection | None = None
            # Started with the writer's connection: the writer makes nearly all the log.
            self.checkpointer = WalCheckpointer(path, _apply_sqlite_pragmas)
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

    async def run_write_batch(
        self, function: Callable[Concatenate[DriverConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like ``run_batch``, for functions that only use the DB-API connection (the
        group-commit writer's queries). On SQLite the transaction runs on a plain
        ``sqlite3`` connection kept open on the batch thread: SQLAlchemy's pool checkout,
        begin and commit cost more CPU than SQLite's own commit."""
        if self._batch_thread is None:
            # PostgreSQL: a SQLAlchemy connection serves as the driver connection.
            return await self.run_batch(function, *args, **kwargs)

        def in_transaction() -> T:
            connection = self._sqlite_writer()
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = function(SqliteDriverConnection(connection), *args, **kwargs)
                connection.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (disk full, I/O error): the next batch must
                # not find this transaction still open.
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise
            return result

        return await asyncio.get_running_loop().run_in_executor(self._batch_thread, in_transaction)

    def _sqlite_writer(self) -> sqlite3.Connection:
        """The batch thread's own connection, opened on first use (on that thread)."""
        if self._writer_connection is None:
            connection = sqlite3.connect(
                self._sqlite_path,
                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            _apply_sqlite_pragmas(connection)
            self._writer_connection = connection
            if self.checkpointer is not None:
                self.checkpointer.start()
        return self._writer_connection

    async def dispose(self) -> None:
        if self._batch_engine is not None and self._batch_thread is not None:
            if self.checkpointer is not None:
                self.checkpointer.stop()
            if self._writer_connection is not None:
                self._batch_thread.submit(self._writer_connection.close).result()
                self._writer_connection = None
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
        _apply_sqlite_pragmas(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _apply_sqlite_pragmas(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # FULL: a message acknowledged to a client survives power loss, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Most of the log is copied back by the WalCheckpointer; see storage/checkpoint.py.
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cursor.close()


def keep_private(path: str) -> None:
    """Create the SQLite file readable by its owner only, or tighten one that is not.

    It holds every account's metadata, sealed key bundles and password hashes, like the
    server secret beside it (0600). SQLite gives the ``-wal`` and ``-shm`` files it makes
    the database file's mode, so those follow; ones left looser by an earlier release are
    tightened too.
    """
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    for suffix in ("-wal", "-shm", "-journal"):
        journal = path + suffix
        with contextlib.suppress(FileNotFoundError):
            if os.stat(journal).st_mode & 0o077:
                os.chmod(journal, 0o600)
