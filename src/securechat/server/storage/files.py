"""Upload records: which file belongs to which conversation, and which chunks are stored;
and each user's stored bytes, reserved when an upload starts and released with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from ...protocol.primitives import GCM_TAG_BYTES
from .tables import conversation_members, file_chunks, files, users


def stored_size(size: int, chunks: int) -> int:
    """What an upload occupies once complete: its chunks' ciphertext (plaintext and tag)."""
    return size + GCM_TAG_BYTES * chunks


async def reserve_bytes(conn: AsyncConnection, user_id: int, amount: int, quota: int) -> bool:
    """Add ``amount`` to the user's stored bytes if that stays within ``quota``; False if
    not. One statement: the check and the addition cannot be split by another writer
    (PostgreSQL re-checks the condition on the row it waited for; SQLite has one writer)."""
    result = await conn.execute(
        update(users)
        .where(and_(users.c.id == user_id, users.c.stored_bytes + amount <= quota))
        .values(stored_bytes=users.c.stored_bytes + amount)
    )
    return bool(result.rowcount)


async def get_stored_bytes(conn: AsyncConnection, user_id: int) -> int:
    result = await conn.execute(select(users.c.stored_bytes).where(users.c.id == user_id))
    return int(result.scalar_one_or_none() or 0)


async def get_usage(conn: AsyncConnection, user_id: int) -> RowMapping:
    """The user's stored bytes, complete files and unfinished uploads."""

    def count(condition: Any) -> Any:
        return (
            select(func.count())
            .select_from(files)
            .where(and_(files.c.uploader_id == user_id, condition))
            .scalar_subquery()
        )

    query = select(
        users.c.stored_bytes,
        count(files.c.completed_at.is_not(None)).label("files"),
        count(files.c.completed_at.is_(None)).label("pending_uploads"),
    ).where(users.c.id == user_id)
    return (await conn.execute(query)).mappings().one()


async def add_file(
    conn: AsyncConnection,
    *,
    file_id: str,
    conversation_id: str,
    uploader_id: int,
    size: int,
    chunks: int,
    created_at: int,
) -> None:
    await conn.execute(
        insert(files).values(
            file_id=file_id,
            conversation_id=conversation_id,
            uploader_id=uploader_id,
            size=size,
            chunks=chunks,
            created_at=created_at,
        )
    )


async def get_file(conn: AsyncConnection, file_id: str) -> RowMapping | None:
    query = (
        select(files, users.c.username.label("uploader"))
        .join(users, users.c.id == files.c.uploader_id)
        .where(files.c.file_id == file_id)
    )
    return (await conn.execute(query)).mappings().first()


async def is_member(conn: AsyncConnection, conversation_id: str, user_id: int) -> bool:
    query = select(conversation_members.c.user_id).where(
        and_(
            conversation_members.c.conversation_id == conversation_id,
            conversation_members.c.user_id == user_id,
        )
    )
    return (await conn.execute(query)).first() is not None


async def get_chunk_digest(conn: AsyncConnection, file_pk: int, index: int) -> bytes | None:
    query = select(file_chunks.c.digest).where(
        and_(file_chunks.c.file_pk == file_pk, file_chunks.c.idx == index)
    )
    digest = (await conn.execute(query)).scalar_one_or_none()
    return bytes(digest) if digest is not None else None


async def add_chunk(conn: AsyncConnection, file_pk: int, index: int, digest: bytes) -> None:
    await conn.execute(insert(file_chunks).values(file_pk=file_pk, idx=index, digest=digest))


async def stored_indexes(conn: AsyncConnection, file_pk: int) -> set[int]:
    query = select(file_chunks.c.idx).where(file_chunks.c.file_pk == file_pk)
    return {row.idx for row in await conn.execute(query)}


async def mark_complete(conn: AsyncConnection, file_pk: int, at: int) -> None:
    await conn.execute(
        update(files)
        .where(and_(files.c.id == file_pk, files.c.completed_at.is_(None)))
        .values(completed_at=at)
    )


async def stale_uploads(conn: AsyncConnection, created_before: int, limit: int) -> list[RowMapping]:
    query = (
        select(files.c.id, files.c.file_id)
        .where(and_(files.c.completed_at.is_(None), files.c.created_at < created_before))
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def delete_file(conn: AsyncConnection, file_pk: int) -> bool:
    """Delete an upload and release its bytes; False if it was already gone (another
    instance deleted it first: its bytes were released then, and only then)."""
    row = (
        await conn.execute(
            select(files.c.uploader_id, files.c.size, files.c.chunks).where(files.c.id == file_pk)
        )
    ).first()
    await conn.execute(delete(file_chunks).where(file_chunks.c.file_pk == file_pk))
    result = await conn.execute(delete(files).where(files.c.id == file_pk))
    if row is None or not result.rowcount:
        return False
    await conn.execute(
        update(users)
        .where(users.c.id == row.uploader_id)
        .values(stored_bytes=users.c.stored_bytes - stored_size(row.size, row.chunks))
    )
    return True


async def pending_uploads(conn: AsyncConnection, uploader_id: int) -> int:
    query = select(func.count()).where(
        and_(files.c.uploader_id == uploader_id, files.c.completed_at.is_(None))
    )
    return int((await conn.execute(query)).scalar_one())
