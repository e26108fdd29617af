"""PUT/GET/DELETE /api/v1/account/history-backup (PROTOCOL.md 15.10.1): the latest sealed
backup per account, versions that only grow, the size cap and the storage quota, stable
error codes for every bad request (never a 500), and what the server's database and the
user's password give of a backup: nothing."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from securechat.protocol.kdf import derive_keys
from securechat.protocol.v2.backup import (
    Archive,
    BackupMessage,
    BackupRefused,
    open_backup,
    seal_backup,
)
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser
from .support import material

PATH = "/api/v1/account/history-backup"
MAX = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "server",
        history_backup_max_bytes=MAX,
        file_quota_bytes=4 * MAX,
        history_backup_uploads_per_minute=1000,
        **GENEROUS_LIMITS,
    )


def blob(size: int = 5000, fill: int = 7) -> str:
    return base64.b64encode(bytes([fill]) * size).decode()


async def put(http: httpx.AsyncClient, user: RegisteredUser, version: Any, sealed: Any) -> httpx.Response:
    return await http.put(PATH, headers=user.headers, json={"version": version, "sealed": sealed})


async def usage(http: httpx.AsyncClient, user: RegisteredUser) -> int:
    answer = await http.get("/api/v1/account/usage", headers=user.headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["stored_bytes"])


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    return body


async def test_the_latest_backup_is_stored_returned_and_deleted(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    error(await http.get(PATH, headers=alice.headers), 404, "no_history_backup")

    stored = await put(http, alice, 1, blob(5000, 1))
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"version": 1, "size": 5000}
    assert (await put(http, alice, 2, blob(6000, 2))).status_code == 200

    got = (await http.get(PATH, headers=alice.headers)).json()
    assert (got["version"], got["size"], got["sealed"]) == (2, 6000, blob(6000, 2))
    assert isinstance(got["updated_at"], int)

    assert (await http.delete(PATH, headers=alice.headers)).json() == {"deleted": True}
    error(await http.get(PATH, headers=alice.headers), 404, "no_history_backup")
    assert (await http.delete(PATH, headers=alice.headers)).json() == {"deleted": False}


async def test_versions_only_grow(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    for version in range(1, 6):
        assert (await put(http, alice, version, blob(5000, version))).status_code == 200
    for version in (5, 4, 1):
        body = error(await put(http, alice, version, blob(5000, 9)), 409, "backup_version_stale")
        assert body["version"] == 5
    got = (await http.get(PATH, headers=alice.headers)).json()
    assert (got["version"], got["sealed"]) == (5, blob(5000, 5))  # the replay changed nothing
    assert (await put(http, alice, 6, blob(5000, 6))).status_code == 200


async def test_each_account_sees_only_its_own(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    assert (await put(http, alice, 1, blob())).status_code == 200
    error(await http.get(PATH, headers=bob.headers), 404, "no_history_backup")
    assert (await http.delete(PATH, headers=bob.headers)).json() == {"deleted": False}
    assert (await http.get(PATH, headers=alice.headers)).status_code == 200
    for method in ("GET", "PUT", "DELETE"):
        answer = await http.request(method, PATH, json={"version": 1, "sealed": blob()})
        error(answer, 401, "unauthorized")


async def test_the_size_cap_and_the_quota(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    body = error(await put(http, alice, 1, blob(MAX + 1)), 413, "too_large")
    assert body["limit"] == MAX
    assert (await put(http, alice, 1, blob(MAX))).status_code == 200
    assert await usage(http, alice) == MAX
    # A replacement counts only its difference.
    assert (await put(http, alice, 2, blob(MAX // 2))).status_code == 200
    assert await usage(http, alice) == MAX // 2
    assert (await http.delete(PATH, headers=alice.headers)).json() == {"deleted": True}
    assert await usage(http, alice) == 0


async def test_a_backup_past_the_storage_quota_is_refused(
    http: httpx.AsyncClient, register_user: RegisterUser, app: FastAPI
) -> None:
    alice = await register_user("alice")
    app.state.context.settings.file_quota_bytes = MAX // 2
    error(await put(http, alice, 1, blob(MAX // 2 + 1)), 413, "quota_exceeded")
    error(await http.get(PATH, headers=alice.headers), 404, "no_history_backup")
    assert await usage(http, alice) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"version": 0, "sealed": blob()},
        {"version": -1, "sealed": blob()},
        {"version": 2**53, "sealed": blob()},
        {"version": "1", "sealed": blob()},
        {"version": True, "sealed": blob()},
        {"version": 1.5, "sealed": blob()},
        {"version": 1, "sealed": "not base64!"},
        {"version": 1, "sealed": blob()[:-1]},
        {"version": 1, "sealed": " " + blob()},
        {"version": 1, "sealed": blob(100)},  # shorter than any backup
        {"version": 1, "sealed": 12},
        {"version": 1},
        {"sealed": blob()},
        {"version": 1, "sealed": blob(), "extra": 1},
        [],
        "text",
    ],
)
async def test_bad_bodies_are_422_and_store_nothing(
    http: httpx.AsyncClient, register_user: RegisterUser, body: Any
) -> None:
    alice = await register_user("alice")
    error(await http.put(PATH, headers=alice.headers, json=body), 422, "invalid_input")
    error(await http.get(PATH, headers=alice.headers), 404, "no_history_backup")


async def test_a_body_beyond_the_backup_limit_is_cut_off(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    answer = await put(http, alice, 1, blob(4 * MAX))
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "too_large"


# The threat model: what the server stores, together with the user's password, opens
# nothing of a backup. A real backup is sealed with the protocol code and uploaded.

SECRET_TEXT = "the meeting moved to the old boathouse at nine"


async def test_the_database_and_the_password_open_nothing(
    http: httpx.AsyncClient, register_user: RegisterUser, settings: Settings
) -> None:
    alice = await register_user("alice")
    recovery_key = os.urandom(32)
    archive = Archive(
        "alice",
        1,
        1,
        tuple(BackupMessage(f"m-{i}", "dm-x", "bob", "bob", i, i, f"{SECRET_TEXT} #{i}") for i in range(50)),
    )
    sealed = seal_backup(recovery_key, archive, os.urandom(12))
    assert (await put(http, alice, 1, base64.b64encode(sealed).decode())).status_code == 200

    # Everything the server keeps on disk: no plaintext, no recovery key.
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert SECRET_TEXT.encode() not in data, path
        assert recovery_key not in data, path
    # The blob is there, so the scan above looked in the right place.
    assert any(sealed[16:80] in p.read_bytes() for p in files)

    # Every key the password gives (the auth key, the bundle wrap key, the PBKDF2 output
    # as a key) tried as a recovery key: refused by the AEAD, never an archive.
    derived = derive_keys(material("alice").password, alice.kdf)
    for candidate in (derived.auth_key, derived.wrap_key, bytes(32)):
        with pytest.raises(BackupRefused) as refused:
            open_backup(candidate, "alice", 1, sealed)
        assert refused.value.reason == "backup_failed"
    assert open_backup(recovery_key, "alice", 1, sealed) == archive


async def test_uploads_are_limited_per_account_and_read_only_after_authentication(
    http: httpx.AsyncClient, register_user: RegisterUser, app: FastAPI
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    # Without a valid token the body is never parsed: 401, not 422 for the junk.
    junk = await http.put(PATH, content=b"{not json" * 1000, headers={"content-type": "application/json"})
    error(junk, 401, "unauthorized")

    app.state.context.settings.history_backup_uploads_per_minute = 2
    assert (await put(http, alice, 1, blob())).status_code == 200
    assert (await put(http, alice, 2, blob())).status_code == 200
    limited = await put(http, alice, 3, blob())
    error(limited, 429, "rate_limited")
    assert "retry-after" in limited.headers
    assert (await http.get(PATH, headers=alice.headers)).json()["version"] == 2
    assert (await put(http, bob, 1, blob())).status_code == 200  # per account
