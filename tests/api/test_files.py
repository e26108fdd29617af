"""Encrypted file uploads and downloads (PROTOCOL.md 12.4): who may do what, exact
chunk lengths, idempotent retries, conflicts, limits, and both chunk stores."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from securechat.protocol.files import FILE_CHUNK_BYTES, FileDecryptor, FileEncryptor, chunk_plaintext_size
from securechat.server.app import create_app
from securechat.server.settings import Settings
from securechat.server.storage.chunks import DatabaseChunkStore
from securechat.server.storage.tables import file_blobs

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser, registrar

FILES = "/api/v1/files"
OCTETS = {"content-type": "application/octet-stream"}


async def direct(http: httpx.AsyncClient, user: RegisteredUser, peer: str) -> str:
    response = await http.post("/api/v1/conversations/direct", headers=user.headers, json={"peer": peer})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def create(
    http: httpx.AsyncClient, user: RegisteredUser, conversation_id: str, size: int, file_id: str | None = None
) -> httpx.Response:
    body = {"file_id": file_id or str(uuid.uuid4()), "conversation_id": conversation_id, "size": size}
    return await http.post(FILES, headers=user.headers, json=body)


async def put(
    http: httpx.AsyncClient, user: RegisteredUser, file_id: str, index: int, data: bytes
) -> httpx.Response:
    return await http.put(f"{FILES}/{file_id}/chunks/{index}", headers=user.headers | OCTETS, content=data)


async def upload(
    http: httpx.AsyncClient, user: RegisteredUser, conversation_id: str, plaintext: bytes
) -> tuple[FileEncryptor, list[bytes]]:
    """Encrypt and upload a whole file the way a client does; return the chunks sent."""
    encryptor = FileEncryptor(len(plaintext))
    response = await create(http, user, conversation_id, len(plaintext), encryptor.file_id)
    assert response.status_code == 201, response.text
    chunks = []
    for index in range(encryptor.chunks):
        start = index * FILE_CHUNK_BYTES
        chunk = encryptor.encrypt(plaintext[start : start + chunk_plaintext_size(len(plaintext), index)])
        chunks.append(chunk)
        assert (await put(http, user, encryptor.file_id, index, chunk)).status_code == 204
    response = await http.post(f"{FILES}/{encryptor.file_id}/complete", headers=user.headers)
    assert response.status_code == 200, response.text
    return encryptor, chunks


async def download(http: httpx.AsyncClient, user: RegisteredUser, file_id: str, chunks: int) -> list[bytes]:
    out = []
    for index in range(chunks):
        response = await http.get(f"{FILES}/{file_id}/chunks/{index}", headers=user.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        out.append(response.content)
    return out


@pytest.fixture
async def trio(register_user: RegisterUser) -> tuple[RegisteredUser, RegisteredUser, RegisteredUser]:
    return await register_user("alice"), await register_user("bob"), await register_user("mallory")


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


# ---------------------------------------------------------------------------------------
# A whole transfer, on each chunk store.
# ---------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield application, client


@pytest.mark.parametrize("store", ["directory", "database"])
async def test_round_trip_on_sqlite(tmp_path: Path, store: str) -> None:
    settings = Settings(data_dir=tmp_path / "server", file_store=store, **GENEROUS_LIMITS)
    async with serving(settings) as (app, http):
        await round_trip(app, http)


async def test_round_trip_on_postgres(postgres_settings: Settings) -> None:
    async with serving(postgres_settings) as (app, http):
        assert not app.state.context.database.is_sqlite
        await round_trip(app, http)


async def round_trip(app: FastAPI, http: httpx.AsyncClient) -> None:
    register = registrar(http)
    alice, bob = await register("alice"), await register("bob")
    conversation = await direct(http, alice, "bob")
    plaintext = os.urandom(2 * FILE_CHUNK_BYTES + 12345)
    encryptor, sent = await upload(http, alice, conversation, plaintext)

    info = await http.get(f"{FILES}/{encryptor.file_id}", headers=bob.headers)
    assert info.status_code == 200
    assert info.json() | {"created_at": 0} == {
        "file_id": encryptor.file_id,
        "conversation_id": conversation,
        "uploader": "alice",
        "size": len(plaintext),
        "chunks": 3,
        "chunk_bytes": FILE_CHUNK_BYTES,
        "complete": True,
        "created_at": 0,
    }
    received = await download(http, bob, encryptor.file_id, 3)
    assert received == sent
    decryptor = FileDecryptor(encryptor.descriptor("x.bin"))
    assert b"".join(decryptor.decrypt(chunk) for chunk in received) == plaintext
    decryptor.finish()
    # The store holds ciphertext only: no 64-byte window of the plaintext is anywhere.
    data_dir = app.state.context.settings.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    if isinstance(app.state.context.chunks, DatabaseChunkStore):
        async with app.state.context.database.read() as conn:
            rows = await conn.execute(select(file_blobs.c.data))
            stored += b"".join(bytes(row.data) for row in rows)
    assert sent[1] in stored
    for offset in range(0, len(plaintext) - 64, 500_000):
        assert plaintext[offset : offset + 64] not in stored


# ---------------------------------------------------------------------------------------
# Who may read and write.
# ---------------------------------------------------------------------------------------


async def test_non_member_can_neither_describe_nor_download(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice, _bob, mallory = trio
    conversation = await direct(http, alice, "bob")
    encryptor, _ = await upload(http, alice, conversation, b"secret contents")
    unknown = str(uuid.uuid4())
    for file_id in (encryptor.file_id, unknown):
        for path in (f"{FILES}/{file_id}", f"{FILES}/{file_id}/chunks/0"):
            response = await http.get(path, headers=mallory.headers)
            # The same answer for a file that exists and one that does not.
            assert response.status_code == 404, path
            assert error_code(response) == "not_found"
    assert (await http.get(f"{FILES}/{encryptor.file_id}/chunks/0")).status_code == 401


async def test_only_members_may_upload_to_a_conversation(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice, _bob, mallory = trio
    conversation = await direct(http, alice, "bob")
    response = await create(http, mallory, conversation, 10)
    assert response.status_code == 404
    response = await create(http, mallory, "grp-" + "0" * 32, 10)
    assert response.status_code == 404


async def test_only_the_uploader_may_add_chunks_or_complete(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice, bob, _mallory = trio
    conversation = await direct(http, alice, "bob")
    encryptor = FileEncryptor(5)
    assert (await create(http, alice, conversation, 5, encryptor.file_id)).status_code == 201
    chunk = encryptor.encrypt(b"hello")
    assert (await put(http, bob, encryptor.file_id, 0, chunk)).status_code == 404
    assert (await http.post(f"{FILES}/{encryptor.file_id}/complete", headers=bob.headers)).status_code == 404
    # Bob (a member) cannot read it before it is complete.
    assert (await put(http, alice, encryptor.file_id, 0, chunk)).status_code == 204
    response = await http.get(f"{FILES}/{encryptor.file_id}/chunks/0", headers=bob.headers)
    assert response.status_code == 409 and error_code(response) == "upload_incomplete"


# ---------------------------------------------------------------------------------------
# Chunk rules.
# ---------------------------------------------------------------------------------------


@pytest.fixture
async def pending(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> tuple[RegisteredUser, str]:
    """Alice's fresh upload of a 1 MiB + 10 byte file (two chunks)."""
    alice = trio[0]
    conversation = await direct(http, alice, "bob")
    file_id = str(uuid.uuid4())
    response = await create(http, alice, conversation, FILE_CHUNK_BYTES + 10, file_id)
    assert response.status_code == 201
    assert response.json()["chunks"] == 2
    return alice, file_id


@pytest.mark.parametrize(
    ("index", "length", "status"),
    [
        (0, FILE_CHUNK_BYTES + 16, 204),
        (0, FILE_CHUNK_BYTES + 15, 400),
        (0, FILE_CHUNK_BYTES + 17, 413),
        (1, 26, 204),
        (1, 25, 400),
        (1, FILE_CHUNK_BYTES + 16, 400),
        (2, 26, 400),
        (0, FILE_CHUNK_BYTES + 1024, 413),
    ],
)
async def test_chunk_lengths_are_exact(
    http: httpx.AsyncClient, pending: tuple[RegisteredUser, str], index: int, length: int, status: int
) -> None:
    alice, file_id = pending
    response = await put(http, alice, file_id, index, bytes(length))
    assert response.status_code == status, response.text


async def test_retry_is_accepted_and_a_different_chunk_is_a_conflict(
    http: httpx.AsyncClient, pending: tuple[RegisteredUser, str]
) -> None:
    alice, file_id = pending
    first = os.urandom(26)
    assert (await put(http, alice, file_id, 1, first)).status_code == 204
    assert (await put(http, alice, file_id, 1, first)).status_code == 204
    response = await put(http, alice, file_id, 1, os.urandom(26))
    assert response.status_code == 409 and error_code(response) == "chunk_conflict"


async def test_complete_lists_missing_chunks(
    http: httpx.AsyncClient, pending: tuple[RegisteredUser, str]
) -> None:
    alice, file_id = pending
    assert (await put(http, alice, file_id, 1, os.urandom(26))).status_code == 204
    response = await http.post(f"{FILES}/{file_id}/complete", headers=alice.headers)
    assert response.status_code == 409
    assert response.json()["error"] | {"message": ""} == {
        "code": "upload_incomplete",
        "message": "",
        "missing": [0],
    }
    assert (await put(http, alice, file_id, 0, os.urandom(FILE_CHUNK_BYTES + 16))).status_code == 204
    assert (await http.post(f"{FILES}/{file_id}/complete", headers=alice.headers)).status_code == 200
    # After completion nothing can be changed.
    response = await put(http, alice, file_id, 1, os.urandom(26))
    assert response.status_code == 409 and error_code(response) == "chunk_conflict"


async def test_chunk_needs_octet_stream(http: httpx.AsyncClient, pending: tuple[RegisteredUser, str]) -> None:
    alice, file_id = pending
    response = await http.put(
        f"{FILES}/{file_id}/chunks/1",
        headers=alice.headers | {"content-type": "text/plain"},
        content=bytes(26),
    )
    assert response.status_code == 415


# ---------------------------------------------------------------------------------------
# Creating uploads.
# ---------------------------------------------------------------------------------------


async def test_size_limit(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice = trio[0]
    conversation = await direct(http, alice, "bob")
    limit = 100 * 1024 * 1024
    assert (await create(http, alice, conversation, limit)).status_code == 201
    response = await create(http, alice, conversation, limit + 1)
    assert response.status_code == 413
    assert response.json()["error"]["limit"] == limit


@pytest.mark.parametrize(
    "body",
    [
        {"file_id": "not-a-uuid", "conversation_id": "grp-" + "0" * 32, "size": 1},
        {"file_id": str(uuid.uuid4()).upper(), "conversation_id": "grp-" + "0" * 32, "size": 1},
        {"file_id": str(uuid.uuid4()), "conversation_id": "room", "size": 1},
        {"file_id": str(uuid.uuid4()), "conversation_id": "grp-" + "0" * 32, "size": -1},
        {"file_id": str(uuid.uuid4()), "conversation_id": "grp-" + "0" * 32, "size": "1"},
        {"file_id": str(uuid.uuid4()), "conversation_id": "grp-" + "0" * 32},
        {"file_id": str(uuid.uuid4()), "conversation_id": "grp-" + "0" * 32, "size": 1, "name": "x"},
    ],
)
async def test_bad_upload_requests_get_422(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser], body: dict[str, Any]
) -> None:
    response = await http.post(FILES, headers=trio[0].headers, json=body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"


async def test_file_id_is_idempotent_for_its_uploader_only(
    http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice, bob, _ = trio
    conversation = await direct(http, alice, "bob")
    file_id = str(uuid.uuid4())
    first = await create(http, alice, conversation, 100, file_id)
    again = await create(http, alice, conversation, 100, file_id)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json() == again.json()
    other = await create(http, alice, conversation, 101, file_id)
    assert other.status_code == 409 and error_code(other) == "file_id_reused"
    theirs = await create(http, bob, conversation, 100, file_id)
    assert theirs.status_code == 409


async def test_unfinished_uploads_are_limited_and_expire(
    app: FastAPI, http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice = trio[0]
    settings = app.state.context.settings
    settings.max_pending_uploads = 2
    conversation = await direct(http, alice, "bob")
    old = str(uuid.uuid4())
    assert (await create(http, alice, conversation, 5, old)).status_code == 201
    assert (await put(http, alice, old, 0, bytes(21))).status_code == 204
    assert (await create(http, alice, conversation, 5)).status_code == 201
    response = await create(http, alice, conversation, 5)
    assert response.status_code == 409 and error_code(response) == "too_many_uploads"
    chunk_files = [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()]
    assert len(chunk_files) == 1
    # Once they are older than the expiry, they go (rows and bytes) and make room.
    settings.upload_expiry_seconds = -1
    assert (await create(http, alice, conversation, 5)).status_code == 201
    assert not [p for p in (settings.data_dir / "files").rglob("*") if p.is_file()]
    assert (await http.get(f"{FILES}/{old}", headers=alice.headers)).status_code == 404


async def test_store_holds_only_what_was_uploaded(
    app: FastAPI, http: httpx.AsyncClient, trio: tuple[RegisteredUser, RegisteredUser, RegisteredUser]
) -> None:
    alice = trio[0]
    conversation = await direct(http, alice, "bob")
    _, chunks = await upload(http, alice, conversation, b"tiny")
    files_dir = app.state.context.settings.data_dir / "files"
    stored = [p for p in files_dir.rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == chunks
    assert stored[0].name == f"0.{hashlib.sha256(chunks[0]).hexdigest()}"
    assert oct(stored[0].stat().st_mode & 0o777) == "0o600"
