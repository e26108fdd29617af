"""Backup versions and starting again (PROTOCOL.md 15.10.1), through the command line
against a real server: each upload is the stored version plus one, so someone with the
password cannot stop backups by jumping to a version near 2^53; `securechat backup
delete` deletes the server's copy and forgets this home's recovery key, and turning
backups on again starts from version 1 under a new key. A home that saw a later version
under its key than the server now holds (the backup was deleted or rolled back) uploads
nothing and says so, and still refuses that key's older backups; it can restore a backup
made under another key (its versions are counted apart)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from securechat.client.errors import ApiError
from securechat.client.history_backup import PATH, HistoryBackups
from securechat.client.messenger import Messenger
from securechat.protocol.v2.backup import BackupRefused, format_recovery_key

from ..conftest import LiveServer, start_server
from .conftest import PASSWORDS
from .test_history_backup import StubApi, cli, home_with_backups, sealed_answer

PW = PASSWORDS["alice"] + "\n"
KEY_LINE = re.compile(r"^\s+((?:[0-9A-Z]{4} ){15}[0-9A-Z]{4})$", re.MULTILINE)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The live server, taking more than the default 2 uploads a minute (this test makes 6)."""
    server = start_server(
        tmp_path / "server-data",
        tmp_path / "server.log",
        extra_env={"SECURECHAT_HISTORY_BACKUP_UPLOADS_PER_MINUTE": "100"},
    )
    yield server
    server.stop()


async def test_delete_then_start_again_and_a_home_behind_is_told(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    await make_client("bob")
    await alice.send_text("bob", "before the delete")
    home_a = tmp_path / "home-alice"
    enabled = cli(home_a, live_server.url, "backup", "enable", "--password-stdin", stdin=PW)
    assert enabled.returncode == 0, enabled.stderr
    (first_key,) = KEY_LINE.findall(enabled.stdout)
    assert cli(home_a, live_server.url, "backup", "now", "--password-stdin", stdin=PW).returncode == 0

    # A second home restores the backup (version 2) and so holds the first key.
    home_b = tmp_path / "home-alice-2"
    second = Messenger(home_b, live_server.url)
    await second.login("alice", PASSWORDS["alice"])
    await second.close()
    restored = cli(
        home_b,
        live_server.url,
        "backup",
        "restore",
        "--key-stdin",
        "--password-stdin",
        stdin=PW + first_key + "\n",
    )
    assert restored.returncode == 0, restored.stderr

    # Someone with the password tries to end backups: no version but the next is taken.
    forger = Messenger(tmp_path / "home-forger", live_server.url)
    try:
        await forger.login("alice", PASSWORDS["alice"])
        junk = base64.b64encode(bytes(5000)).decode()
        with pytest.raises(ApiError) as jumped:
            await forger.api.request("PUT", PATH, json={"version": 2**53 - 1, "sealed": junk})
        assert (jumped.value.code, jumped.value.body.get("version")) == ("backup_version_stale", 2), (
            jumped.value.body
        )
    finally:
        await forger.close()

    # Home A deletes the backup and starts again: a new key, version 1.
    deleted = cli(home_a, live_server.url, "backup", "delete", "--password-stdin", stdin=PW)
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted" in deleted.stdout
    with pytest.raises(ApiError) as gone:
        await alice.api.request("GET", PATH)
    assert gone.value.code == "no_history_backup"
    off = cli(home_a, live_server.url, "backup", "now", "--password-stdin", stdin=PW)
    assert off.returncode == 1 and "backups are off" in off.stderr
    again = cli(home_a, live_server.url, "backup", "enable", "--password-stdin", stdin=PW)
    assert again.returncode == 0, again.stderr
    (second_key,) = KEY_LINE.findall(again.stdout)
    assert second_key != first_key
    assert "backup 1 uploaded" in again.stdout

    # Home B saw version 2 under the first key; the server now holds version 1: nothing
    # is uploaded (that would replace the new backup, and its version 1 could be an old
    # one handed back), and the user is told what to do.
    behind = cli(home_b, live_server.url, "backup", "now", "--password-stdin", stdin=PW)
    assert behind.returncode == 1
    assert "older" in behind.stderr and "version 1" in behind.stderr and "version 2" in behind.stderr
    assert (await alice.api.request("GET", PATH))["version"] == 1
    # It restores the new backup with the new key (counted apart from the first key's).
    joined = cli(
        home_b,
        live_server.url,
        "backup",
        "restore",
        "--key-stdin",
        "--password-stdin",
        stdin=PW + second_key + "\n",
    )
    assert joined.returncode == 0, joined.stderr
    assert "backup 1:" in joined.stdout
    now = cli(home_b, live_server.url, "backup", "now", "--password-stdin", stdin=PW)
    assert now.returncode == 0, now.stderr
    assert "backup 2 uploaded" in now.stdout


async def test_a_home_keeps_refusing_its_keys_older_backups_after_disable_and_rekeying(
    tmp_path: Path,
) -> None:
    first = os.urandom(32)
    backups = home_with_backups(tmp_path, sealed_answer(first, 3))
    assert (await backups.restore(format_recovery_key(first))).version == 3
    backups.disable()
    assert not backups.enabled()
    # The server hands back version 2 of the same key (genuine, kept from before).
    backups.api = StubApi(sealed_answer(first, 2))  # type: ignore[assignment]
    with pytest.raises(BackupRefused) as refused:
        await backups.restore(format_recovery_key(first))
    assert refused.value.reason == "backup_rollback"
    # Another key's backup has its own count: its version 1 opens.
    other = os.urandom(32)
    backups.api = StubApi(sealed_answer(other, 1))  # type: ignore[assignment]
    assert (await backups.restore(format_recovery_key(other))).version == 1
    assert backups.highest_seen() == 1


class BehindApi:
    """A server whose stored backup is older than one the home has seen."""

    def __init__(self, stored: int) -> None:
        self.stored = stored
        self.puts: list[int] = []

    async def request(self, method: str, path: str, *, json: Any = None, **_: Any) -> Any:
        assert (method, path) == ("PUT", PATH)
        self.puts.append(json["version"])
        if json["version"] != self.stored + 1:
            raise ApiError(
                409, "backup_version_stale", "", {"code": "backup_version_stale", "version": self.stored}
            )
        return {"version": json["version"], "size": 1}


async def test_an_upload_never_goes_below_what_the_home_has_seen(tmp_path: Path) -> None:
    key = os.urandom(32)
    backups: HistoryBackups = home_with_backups(tmp_path, sealed_answer(key, 5))
    await backups.restore(format_recovery_key(key))
    for stored in (0, 1, 4):
        api = BehindApi(stored)
        backups.api = api  # type: ignore[assignment]
        with pytest.raises(Exception, match="older") as behind:
            await backups.upload()
        assert api.puts == [6], behind.value
        assert backups.highest_seen() == 5
    # A later version stored by another home of the key: gone above, once.
    api = BehindApi(9)
    backups.api = api  # type: ignore[assignment]
    assert (await backups.upload()).version == 10
    assert api.puts == [6, 10]
    # A server at the end of the versions: told, nothing above 2^53 - 1 tried.
    api = BehindApi(2**53 - 1)
    backups.api = api  # type: ignore[assignment]
    with pytest.raises(Exception, match="delete"):
        await backups.upload()
    assert api.puts == [11]
