"""A history backup's version is the stored one plus one, 1 when none is stored
(PROTOCOL.md 15.10.1), compared and set in one transaction: anyone who can log in (the
password is enough) can upload, but no upload jumps ahead (a version near 2^53 stopped
the genuine client's backups for good), and two uploads of one version never both land.
Deleting the backup lets the account start again from 1."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import pytest

from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisterUser

PATH = "/api/v1/account/history-backup"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "server",
        history_backup_max_bytes=64 * 1024,
        history_backup_uploads_per_minute=1000,
        **GENEROUS_LIMITS,
    )


def blob(fill: int) -> str:
    return base64.b64encode(bytes([fill]) * 5000).decode()


def conflict(response: httpx.Response, stored: int) -> None:
    assert response.status_code == 409, response.text
    body = response.json()["error"]
    assert (body["code"], body["version"]) == ("backup_version_stale", stored)


async def test_only_the_next_version_is_taken(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")

    async def put(version: int, fill: int) -> httpx.Response:
        return await http.put(PATH, headers=alice.headers, json={"version": version, "sealed": blob(fill)})

    # Nothing stored: only 1.
    for version in (2, 2**53 - 1):
        conflict(await put(version, 9), 0)
    assert (await put(1, 1)).status_code == 200
    # Then only the stored one plus one: no jump, however far, and no replay.
    for version in (3, 1000, 2**53 - 1, 1):
        conflict(await put(version, 9), 1)
    assert (await put(2, 2)).status_code == 200
    got = (await http.get(PATH, headers=alice.headers)).json()
    assert (got["version"], got["sealed"]) == (2, blob(2))

    # After a delete the account starts again from 1.
    assert (await http.delete(PATH, headers=alice.headers)).json() == {"deleted": True}
    conflict(await put(3, 9), 0)
    assert (await put(1, 3)).status_code == 200
    assert (await http.get(PATH, headers=alice.headers)).json()["version"] == 1


async def test_two_uploads_of_one_version_never_both_land(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    answers = await asyncio.gather(
        *(http.put(PATH, headers=alice.headers, json={"version": 1, "sealed": blob(n)}) for n in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    winner = next(n for n, a in enumerate(answers) if a.status_code == 200)
    got = (await http.get(PATH, headers=alice.headers)).json()
    assert (got["version"], got["sealed"]) == (1, blob(winner))
