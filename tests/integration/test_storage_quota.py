"""Storage quotas (issue 12, item 5), against real server processes.

Each account may keep ``FILE_QUOTA_BYTES`` of encrypted file chunks on the server; an
upload reserves its whole stored size when it starts (from the declared size), so
uploads started at once, on one instance or two, cannot together pass the quota. Past
it: 413 ``quota_exceeded``, and nothing already stored is touched. Chunks count against
``UPLOAD_MIB_PER_MINUTE`` (429 ``rate_limited``). The account sees its usage
(``GET /account/usage``, ``securechat usage``), and admins see everyone's
(``GET /admin/users``, ``securechat admin users``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from securechat.client.errors import ApiError
from securechat.client.messenger import Messenger
from securechat.protocol.files import FILE_CHUNK_BYTES, chunk_count
from securechat.protocol.identifiers import direct_conversation_id

from ..conftest import LiveServer, postgres_instances, start_server
from .conftest import PASSWORDS
from .test_admin_cli import cli

MIB = 1024 * 1024
TAG = 16  # AES-GCM tag: each stored chunk is its plaintext and 16 bytes


def stored_size(size: int) -> int:
    """What a file of ``size`` bytes occupies on the server: its chunks' ciphertext."""
    return size + TAG * chunk_count(size)


async def request(
    client: Messenger, method: str, path: str, url: str | None = None, **kwargs: Any
) -> httpx.Response:
    await client.ensure_token()
    headers = {"authorization": f"Bearer {client.api.access_token}"}
    if "content" in kwargs:
        headers["content-type"] = "application/octet-stream"
    async with httpx.AsyncClient(base_url=url or client.api.base_url, timeout=60) as http:
        return await http.request(method, path, headers=headers, **kwargs)


async def start_upload(
    client: Messenger, conversation_id: str, size: int, url: str | None = None
) -> tuple[str, httpx.Response]:
    file_id = str(uuid.uuid4())
    body = {"file_id": file_id, "conversation_id": conversation_id, "size": size}
    return file_id, await request(client, "POST", "/api/v1/files", url, json=body)


async def put_chunk(client: Messenger, file_id: str, index: int, size: int) -> httpx.Response:
    """Upload chunk ``index`` of a file of ``size`` bytes (random bytes of the right length)."""
    last = size - (chunk_count(size) - 1) * FILE_CHUNK_BYTES
    length = (FILE_CHUNK_BYTES if index < chunk_count(size) - 1 else last) + TAG
    return await request(
        client,
        "PUT",
        f"/api/v1/files/{file_id}/chunks/{index}",
        content=os.urandom(length),
    )


async def upload(client: Messenger, conversation_id: str, size: int) -> str:
    """A whole upload, completed; its file id."""
    file_id, created = await start_upload(client, conversation_id, size)
    assert created.status_code == 201, created.text
    for index in range(chunk_count(size)):
        answer = await put_chunk(client, file_id, index, size)
        assert answer.status_code == 204, answer.text
    done = await request(client, "POST", f"/api/v1/files/{file_id}/complete")
    assert done.status_code == 200, done.text
    return file_id


async def usage(client: Messenger) -> dict[str, Any]:
    answer = await request(client, "GET", "/api/v1/account/usage")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
async def quota_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    # An unfinished upload expires at once here (the next upload started clears it), so
    # the test sees a reservation released without waiting.
    env = {"SECURECHAT_FILE_QUOTA_BYTES": str(5 * MIB), "SECURECHAT_UPLOAD_EXPIRY_SECONDS": "0"}
    server = start_server(tmp_path / "quota-data", tmp_path / "quota.log", extra_env=env)
    yield server
    server.stop()


async def pair(tmp_path: Path, url: str, second_url: str | None = None) -> tuple[Messenger, Messenger]:
    alice = Messenger(tmp_path / "home-alice", url)
    bob = Messenger(tmp_path / "home-bob", second_url or url)
    await alice.register("alice", PASSWORDS["alice"])
    await bob.register("bob", PASSWORDS["bob"])
    return alice, bob


async def test_quota_refuses_with_413_and_keeps_what_is_stored(
    quota_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await pair(tmp_path, quota_server.url)
    try:
        conversation = (await alice.api.open_direct("bob"))["id"]
        first_size = 2 * MIB + 1000
        first = await upload(alice, conversation, first_size)

        # 3 MiB more would pass the quota: refused before a byte is sent.
        _, refused = await start_upload(alice, conversation, 3 * MIB)
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "quota_exceeded"
        assert (error["quota_bytes"], error["stored_bytes"], error["needed_bytes"]) == (
            5 * MIB,
            stored_size(first_size),
            stored_size(3 * MIB),
        )
        # Nothing already stored is lost: bob still downloads the first file whole.
        described = await request(bob, "GET", f"/api/v1/files/{first}")
        assert described.json()["complete"] is True
        for index in range(chunk_count(first_size)):
            chunk = await request(bob, "GET", f"/api/v1/files/{first}/chunks/{index}")
            assert chunk.status_code == 200
        assert await usage(alice) == {
            "stored_bytes": stored_size(first_size),
            "quota_bytes": 5 * MIB,
            "files": 1,
            "pending_uploads": 0,
        }

        # The quota is alice's own: bob still has all of his.
        await upload(bob, conversation, 3 * MIB)

        # An upload reserves its size when it starts; when it expires unfinished, the
        # reservation goes with it.
        _, pending = await start_upload(alice, conversation, 2 * MIB)
        assert pending.status_code == 201
        assert (await usage(alice))["stored_bytes"] == stored_size(first_size) + stored_size(2 * MIB)
        assert (await usage(alice))["pending_uploads"] == 1
        _, second = await start_upload(alice, conversation, 2 * MIB + 5000)  # clears the expired one
        assert second.status_code == 201, second.text
        assert (await usage(alice))["stored_bytes"] == stored_size(first_size) + stored_size(2 * MIB + 5000)

        # The terminal client shows the same.
        shown = cli("usage", home=alice.state.home, server=quota_server.url)
        assert shown.returncode == 0, shown.stderr
        assert "4.0 MiB of 5.0 MiB" in shown.stdout, shown.stdout
        assert "1 file, 1 upload in progress" in shown.stdout, shown.stdout

        # And the terminal client's own upload says why it was refused (the unfinished
        # upload above has expired by now: the first file and this one would not fit).
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(3 * MIB))
        with pytest.raises(ApiError) as raised:
            await alice.send_file("bob", big)
        assert raised.value.code == "quota_exceeded"
        assert "Traceback" not in quota_server.log()
    finally:
        await alice.close()
        await bob.close()


async def test_admins_see_every_account_s_usage(quota_server: LiveServer, tmp_path: Path) -> None:
    alice, bob = await pair(tmp_path, quota_server.url)
    try:
        conversation = (await alice.api.open_direct("bob"))["id"]
        await upload(bob, conversation, MIB + 1)
        made = cli("admin", "create", "alice", "--data-dir", str(quota_server.data_dir))
        assert made.returncode == 0, made.stderr

        answer = await request(alice, "GET", "/api/v1/admin/users")
        assert answer.status_code == 200
        page = answer.json()
        assert page["quota_bytes"] == 5 * MIB
        assert {u["username"]: u["stored_bytes"] for u in page["users"]} == {
            "alice": 0,
            "bob": stored_size(MIB + 1),
        }

        listed = cli("admin", "users", home=alice.state.home, server=quota_server.url)
        assert listed.returncode == 0, listed.stderr
        assert "stored" in listed.stdout
        (bob_line,) = [line for line in listed.stdout.splitlines() if "bob" in line]
        assert "1.0 MiB" in bob_line, listed.stdout
    finally:
        await alice.close()
        await bob.close()


@pytest.fixture
async def rate_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    env = {"SECURECHAT_UPLOAD_MIB_PER_MINUTE": "3"}
    server = start_server(tmp_path / "rate-data", tmp_path / "rate.log", extra_env=env)
    yield server
    server.stop()


async def test_chunk_uploads_are_rate_limited_per_account(rate_server: LiveServer, tmp_path: Path) -> None:
    alice, bob = await pair(tmp_path, rate_server.url)
    try:
        conversation = (await alice.api.open_direct("bob"))["id"]
        size = 4 * MIB + 1
        file_id, created = await start_upload(alice, conversation, size)
        assert created.status_code == 201
        for index in range(3):
            assert (await put_chunk(alice, file_id, index, size)).status_code == 204
        refused = await put_chunk(alice, file_id, 3, size)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        # What was stored stays stored; bob is not held back by alice's limit.
        missing = await request(alice, "POST", f"/api/v1/files/{file_id}/complete")
        assert missing.json()["error"]["missing"] == [3, 4]
        await upload(bob, conversation, MIB)
    finally:
        await alice.close()
        await bob.close()


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    quota = {"SECURECHAT_FILE_QUOTA_BYTES": str(5 * MIB)}
    async with postgres_instances(tmp_path, "securechat_quota", quota) as instances:
        yield instances


async def test_parallel_uploads_cannot_pass_the_quota_across_two_instances(
    two_instances: tuple[LiveServer, LiveServer], tmp_path: Path
) -> None:
    first, second = two_instances
    alice, bob = await pair(tmp_path, first.url, second.url)
    try:
        conversation = direct_conversation_id(alice.username, bob.username)
        await alice.api.open_direct("bob")
        # Eight uploads of 2 MiB at once, half through each instance: two fit in 5 MiB.
        answers = await asyncio.gather(
            *(start_upload(alice, conversation, 2 * MIB, (first, second)[i % 2].url) for i in range(8))
        )
        statuses = sorted(answer.status_code for _, answer in answers)
        assert statuses == [201, 201] + [413] * 6, [a.text for _, a in answers]
        assert {a.json()["error"]["code"] for _, a in answers if a.status_code == 413} == {"quota_exceeded"}
        assert (await usage(alice))["stored_bytes"] == 2 * stored_size(2 * MIB)
        for server in (first, second):
            assert "Traceback" not in server.log()
    finally:
        await alice.close()
        await bob.close()
