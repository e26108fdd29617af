"""Encrypted file uploads and downloads (PROTOCOL.md 12.4).

The server sees opaque chunks of exactly the length the declared size implies, and
hands them only to current members of the upload's conversation. It never learns a
file's name, type or key: those travel inside the message that shares the file.

Each account has a quota of stored bytes (``FILE_QUOTA_BYTES``): an upload reserves its
whole stored size (from the declared size) in the transaction that creates it, with one
statement that checks and adds, so uploads started at once on any number of instances
cannot together pass it; the reservation goes when the upload expires unfinished.
Chunks count against ``UPLOAD_MIB_PER_MINUTE`` per account.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from ...protocol import errors as protocol_errors
from ...protocol.files import FILE_CHUNK_BYTES, chunk_ciphertext_size, chunk_count
from ...protocol.identifiers import parse_conversation_id, parse_message_id
from ..errors import (
    BadRequest,
    ChunkConflict,
    FileIdReused,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    TooLarge,
    TooManyUploads,
    UploadIncomplete,
)
from ..storage import files as store
from ..storage.chunks import chunk_key
from . import ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal

logger = logging.getLogger(__name__)

_PURGE_BATCH = 50
_MISSING_LISTED = 20


def _file_id(value: str) -> str:
    try:
        return parse_message_id(value)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput("file_id must be a lower-case UUIDv4", field="file_id") from exc


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _describe(row: Any) -> dict[str, Any]:
    return {
        "file_id": row["file_id"],
        "conversation_id": row["conversation_id"],
        "uploader": row["uploader"],
        "size": row["size"],
        "chunks": row["chunks"],
        "chunk_bytes": FILE_CHUNK_BYTES,
        "complete": row["completed_at"] is not None,
        "created_at": row["created_at"],
    }


async def create_upload(
    ctx: ServiceContext, principal: Principal, file_id: str, conversation_id: str, size: int
) -> dict[str, Any]:
    fid = _file_id(file_id)
    try:
        cid = parse_conversation_id(conversation_id)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="conversation_id") from exc
    limit = ctx.settings.max_file_bytes
    if size > limit:
        raise TooLarge("the file is larger than this server accepts", limit=limit)
    await purge_stale_uploads(ctx)
    try:
        return await _create(ctx, principal, fid, cid, size)
    except IntegrityError:
        # The same file id, created at this moment through another instance: this
        # transaction (and its reservation) was rolled back; answer from what the other
        # one stored.
        return await _answer_retry(ctx, principal, fid, cid, size)


async def _create(ctx: ServiceContext, principal: Principal, fid: str, cid: str, size: int) -> dict[str, Any]:
    async with ctx.database.write() as conn:
        existing = await store.get_file(conn, fid)
        if existing is not None:
            # A retried request is answered as the first; anything else is a clash.
            same = (existing["uploader_id"], existing["conversation_id"], existing["size"])
            if same != (principal.user_id, cid, size):
                raise FileIdReused("this file id is already in use")
            return _describe(existing)
        if not await store.is_member(conn, cid, principal.user_id):
            raise NotFound("no such conversation")
        if await store.pending_uploads(conn, principal.user_id) >= ctx.settings.max_pending_uploads:
            raise TooManyUploads(
                "too many unfinished uploads; complete or abandon one first",
                limit=ctx.settings.max_pending_uploads,
            )
        chunks = chunk_count(size)
        needed = store.stored_size(size, chunks)
        quota = ctx.settings.file_quota_bytes
        if not await store.reserve_bytes(conn, principal.user_id, needed, quota):
            # Raising rolls the transaction back: nothing stored is touched.
            stored = await store.get_stored_bytes(conn, principal.user_id)
            free = max(0, quota - stored)
            raise QuotaExceeded(
                f"this upload needs {_mib(needed)}, and {_mib(free)} of your {_mib(quota)}"
                " of file storage is free",
                quota_bytes=quota,
                stored_bytes=stored,
                needed_bytes=needed,
            )
        await store.add_file(
            conn,
            file_id=fid,
            conversation_id=cid,
            uploader_id=principal.user_id,
            size=size,
            chunks=chunks,
            created_at=now_ms(),
        )
        row = await store.get_file(conn, fid)
    assert row is not None
    return _describe(row)


async def _answer_retry(
    ctx: ServiceContext, principal: Principal, fid: str, cid: str, size: int
) -> dict[str, Any]:
    async with ctx.database.read() as conn:
        existing = await store.get_file(conn, fid)
    if existing is None or (existing["uploader_id"], existing["conversation_id"], existing["size"]) != (
        principal.user_id,
        cid,
        size,
    ):
        raise FileIdReused("this file id is already in use")
    return _describe(existing)


async def _own_upload(ctx: ServiceContext, principal: Principal, file_id: str) -> Any:
    async with ctx.database.read() as conn:
        row = await store.get_file(conn, _file_id(file_id))
    if row is None or row["uploader_id"] != principal.user_id:
        raise NotFound("no such upload")
    return row


async def put_chunk(ctx: ServiceContext, principal: Principal, file_id: str, index: int, data: bytes) -> None:
    # Every chunk sent counts (up to 1 MiB each), before any work on it.
    await ratelimit.hit(
        ctx, "upload", f"user:{principal.user_id}", ctx.settings.upload_mib_per_minute, who="account"
    )
    row = await _own_upload(ctx, principal, file_id)
    if not 0 <= index < row["chunks"]:
        raise BadRequest("chunk index out of range", chunks=row["chunks"])
    expected = chunk_ciphertext_size(row["size"], index)
    if len(data) != expected:
        raise BadRequest("chunk length does not match the file's size", expected=expected)
    digest = hashlib.sha256(data).digest()
    async with ctx.database.read() as conn:
        stored = await store.get_chunk_digest(conn, row["id"], index)
    if stored is not None:
        _same_or_conflict(stored, digest)
        return
    if row["completed_at"] is not None:
        raise ChunkConflict("the upload is complete")
    # Bytes first, then the row that makes them count: a row always has its bytes.
    await ctx.chunks.put(chunk_key(row["file_id"], index, digest), data)
    try:
        async with ctx.database.write() as conn:
            await store.add_chunk(conn, row["id"], index, digest)
    except IntegrityError:
        # A concurrent upload of the same chunk got there first.
        async with ctx.database.read() as conn:
            stored = await store.get_chunk_digest(conn, row["id"], index)
        if stored is None:
            raise
        _same_or_conflict(stored, digest)


def _same_or_conflict(stored: bytes, digest: bytes) -> None:
    if stored != digest:
        raise ChunkConflict("a different chunk is already stored at this index")


async def complete_upload(ctx: ServiceContext, principal: Principal, file_id: str) -> dict[str, Any]:
    row = await _own_upload(ctx, principal, file_id)
    async with ctx.database.write() as conn:
        present = await store.stored_indexes(conn, row["id"])
        missing = [i for i in range(row["chunks"]) if i not in present]
        if missing:
            raise UploadIncomplete(
                f"{len(missing)} of {row['chunks']} chunks are missing", missing=missing[:_MISSING_LISTED]
            )
        await store.mark_complete(conn, row["id"], now_ms())
    return {"file_id": row["file_id"], "chunks": row["chunks"], "size": row["size"], "complete": True}


async def _readable(ctx: ServiceContext, principal: Principal, file_id: str) -> Any:
    """The file, if the caller is a current member of its conversation; else 404."""
    fid = _file_id(file_id)
    async with ctx.database.read() as conn:
        row = await store.get_file(conn, fid)
        if row is None or not await store.is_member(conn, row["conversation_id"], principal.user_id):
            raise NotFound("no such file")
    return row


async def describe_file(ctx: ServiceContext, principal: Principal, file_id: str) -> dict[str, Any]:
    return _describe(await _readable(ctx, principal, file_id))


async def get_chunk(ctx: ServiceContext, principal: Principal, file_id: str, index: int) -> bytes:
    row = await _readable(ctx, principal, file_id)
    if row["completed_at"] is None:
        raise UploadIncomplete("the upload is not complete yet")
    if not 0 <= index < row["chunks"]:
        raise NotFound("no such chunk")
    async with ctx.database.read() as conn:
        digest = await store.get_chunk_digest(conn, row["id"], index)
    data = await ctx.chunks.get(chunk_key(row["file_id"], index, digest)) if digest is not None else None
    if data is None:
        logger.error("stored chunk missing: file %s index %d", row["file_id"], index)
        raise NotFound("chunk not available")
    return data


async def usage(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    """The caller's stored bytes (complete files and reservations of unfinished uploads),
    quota, and how many files and unfinished uploads make them up."""
    async with ctx.database.read() as conn:
        row = await store.get_usage(conn, principal.user_id)
    return {
        "stored_bytes": int(row["stored_bytes"]),
        "quota_bytes": ctx.settings.file_quota_bytes,
        "files": int(row["files"]),
        "pending_uploads": int(row["pending_uploads"]),
    }


async def purge_stale_uploads(ctx: ServiceContext) -> int:
    """Delete uploads never completed within the expiry; returns how many."""
    cutoff = now_ms() - ctx.settings.upload_expiry_seconds * 1000
    async with ctx.database.read() as conn:
        stale = await store.stale_uploads(conn, cutoff, _PURGE_BATCH)
    for item in stale:
        async with ctx.database.write() as conn:
            await store.delete_file(conn, item["id"])
        await ctx.chunks.delete_file(item["file_id"])
    return len(stale)
