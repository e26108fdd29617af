"""Encrypted file chunks: upload, complete, describe, download (PROTOCOL.md 12.4), and
the caller's storage usage."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from ..errors import UnsupportedMediaType
from ..services import files
from .deps import Context, CurrentUser
from .identifiers import FileId
from .models import FileUploadBody

router = APIRouter(prefix="/api/v1", tags=["files"])

# The one route whose body may exceed the general limit (a chunk is 1 MiB + 16).
CHUNK_PATH = re.compile(r"/api/v1/files/[^/]+/chunks/[0-9]+")
ChunkIndex = Annotated[int, Path(ge=0, le=2**31 - 1)]
OCTETS = "application/octet-stream"
_BINARY_BODY = {
    "requestBody": {"required": True, "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}}}
}


@router.post("/files", status_code=201)
async def create_upload(body: FileUploadBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await files.create_upload(ctx, principal, body.file_id, body.conversation_id, body.size)


@router.put("/files/{file_id}/chunks/{index}", status_code=204, openapi_extra=_BINARY_BODY)
async def put_chunk(
    file_id: FileId, index: ChunkIndex, request: Request, principal: CurrentUser, ctx: Context
) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != OCTETS:
        raise UnsupportedMediaType(f"a chunk is sent as {OCTETS}")
    await files.put_chunk(ctx, principal, file_id, index, await request.body())
    return Response(status_code=204)


@router.post("/files/{file_id}/complete")
async def complete_upload(file_id: FileId, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await files.complete_upload(ctx, principal, file_id)


@router.get("/account/usage")
async def usage(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """The caller's stored file bytes against the quota (with unfinished uploads' reservations)."""
    return await files.usage(ctx, principal)


@router.get("/files/{file_id}")
async def describe(file_id: FileId, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await files.describe_file(ctx, principal, file_id)


@router.get(
    "/files/{file_id}/chunks/{index}",
    response_class=Response,
    responses={200: {"content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def get_chunk(file_id: FileId, index: ChunkIndex, principal: CurrentUser, ctx: Context) -> Response:
    return Response(await files.get_chunk(ctx, principal, file_id, index), media_type=OCTETS)
