"""Where encrypted file chunks live: opaque bytes under a key, nothing more.

A chunk's key is ``<file_id>/<index>/<sha256 of the bytes>``, so two uploads of
different bytes for one position never overwrite each other: the database row in
``file_chunks`` says which one counts. Two stores:

- ``DirectoryChunkStore``: files under the data directory, written to a temporary
  name and renamed, so a reader never sees half a chunk. Every instance that shares
  the data directory (same host, or a shared file system) sees the same chunks.
- ``DatabaseChunkStore``: a ``file_blobs`` table, so instances that share only the
  database (PostgreSQL) share the chunks too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .database import Database
from .tables import file_blobs


def chunk_key(file_id: str, index: int, digest: bytes) -> str:
    return f"{file_id}/{index}/{digest.hex()}"


class ChunkStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; storing the same key again is harmless."""

    async def get(self, key: str) -> bytes | None: ...

    async def delete_file(self, file_id: str) -> None:
        """Remove every chunk of a file (an abandoned upload)."""


class DirectoryChunkStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        file_id, index, digest = key.split("/")
        return self.root / file_id[:2] / file_id / f"{index}.{digest}"

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
        with open(temporary, "wb", opener=_private_opener) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete_file(self, file_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / file_id[:2] / file_id, True)


class DatabaseChunkStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def put(self, key: str, data: bytes) -> None:
        dialect_insert = sqlite_insert if self.database.is_sqlite else pg_insert
        statement = dialect_insert(file_blobs).values(blob_key=key, data=data).on_conflict_do_nothing()
        async with self.database.write() as conn:
            await conn.execute(statement)

    async def get(self, key: str) -> bytes | None:
        async with self.database.read() as conn:
            result = await conn.execute(select(file_blobs.c.data).where(file_blobs.c.blob_key == key))
            data = result.scalar_one_or_none()
        return bytes(data) if data is not None else None

    async def delete_file(self, file_id: str) -> None:
        async with self.database.write() as conn:
            await conn.execute(delete(file_blobs).where(file_blobs.c.blob_key.startswith(f"{file_id}/")))


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
