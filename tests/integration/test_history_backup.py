"""`securechat backup enable` / `restore` against a real server process (PROTOCOL.md
15.10.1): the history of one home comes back in a new home with the recovery key; a typo
is caught by the checksum, a wrong key by the AEAD, and neither changes the new home; an
older backup handed back later is refused; the server's files hold neither the texts
nor the recovery key."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from securechat.client.history_backup import HistoryBackups
from securechat.client.messenger import Messenger
from securechat.protocol.v2.backup import (
    ALPHABET,
    Archive,
    BackupRefused,
    format_recovery_key,
    parse_recovery_key,
    seal_backup,
)

from .conftest import PASSWORDS

PW = PASSWORDS["alice"] + "\n"
KEY_LINE = re.compile(r"^\s+((?:[0-9A-Z]{4} ){15}[0-9A-Z]{4})$", re.MULTILINE)


def cli(home: Path, server: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "securechat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def texts(client: Messenger) -> list[str]:
    return sorted(str(m["text"]) for m in client.stored_messages() if m["verified"])


def typo(shown: str) -> str:
    compact = shown.replace(" ", "")
    wrong = ALPHABET[(ALPHABET.index(compact[10]) + 1) % 32]
    return compact[:10] + wrong + compact[11:]


async def test_backup_enable_then_restore_in_a_new_home(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    await make_client("bob")
    sent = [f"secret history line {i} — ünïcode ✓" for i in range(5)]
    for text in sent:
        await alice.send_text("bob", text)
    assert texts(alice) == sorted(sent)

    # Without the password the key cannot be kept sealed: refused, nothing uploaded.
    locked = cli(
        tmp_path / "home-alice", live_server.url, "backup", "enable", "--password-stdin", stdin="wrong\n"
    )
    assert locked.returncode == 1
    enabled = cli(
        tmp_path / "home-alice",
        live_server.url,
        "backup",
        "enable",
        "--password-stdin",
        stdin=PASSWORDS["alice"] + "\n",
    )
    assert enabled.returncode == 0, enabled.stderr
    (shown,) = KEY_LINE.findall(enabled.stdout)
    key = parse_recovery_key(shown)
    assert "backup 1 uploaded: 5 messages" in enabled.stdout

    # A new home of the same account, logged in with the password: no history yet.
    fresh = Messenger(tmp_path / "home-alice-2", live_server.url)
    await fresh.login("alice", PASSWORDS["alice"])
    assert texts(fresh) == []
    home2 = tmp_path / "home-alice-2"

    # A typo: caught by the checksum, nothing changes.
    mistyped = cli(
        home2,
        live_server.url,
        "backup",
        "restore",
        "--key-stdin",
        "--password-stdin",
        stdin=PW + typo(shown) + "\n",
    )
    assert mistyped.returncode == 1
    assert "typo" in mistyped.stderr
    # Another well-formed key (right checksum): refused by the AEAD, never garbage.
    other = cli(
        home2,
        live_server.url,
        "backup",
        "restore",
        "--key-stdin",
        "--password-stdin",
        stdin=PW + format_recovery_key(os.urandom(32)) + "\n",
    )
    assert other.returncode == 1
    assert "does not open" in other.stderr
    assert texts(fresh) == []

    restored = cli(
        home2,
        live_server.url,
        "backup",
        "restore",
        "--key-stdin",
        "--password-stdin",
        stdin=PW + shown.lower() + "\n",
    )
    assert restored.returncode == 0, restored.stderr
    assert "5 messages, 5 new" in restored.stdout
    reopened = Messenger(home2, live_server.url)
    try:
        assert texts(reopened) == sorted(sent)
        # Restoring again adds nothing.
        again = cli(
            home2,
            live_server.url,
            "backup",
            "restore",
            "--key-stdin",
            "--password-stdin",
            stdin=PW + shown + "\n",
        )
        assert "5 messages, 0 new" in again.stdout
        # The new home can upload the next version with the key it now holds.
        assert cli(home2, live_server.url, "backup", "now", "--password-stdin", stdin=PW).returncode == 0
    finally:
        await reopened.close()
        await fresh.close()

    # The homes keep the key only sealed (under a key derived from the account key, which
    # needs the password): a copy of a home's files cannot open later backups.
    for home in (tmp_path / "home-alice", home2):
        for path in (p for p in home.rglob("*") if p.is_file()):
            data = path.read_bytes()
            for needle in (key, key.hex().encode(), base64.b64encode(key), shown.encode()):
                assert needle not in data, path

    # Whatever the server keeps on disk: no text of the history, no form of the key.
    needles = [text.encode() for text in sent] + [key, key.hex().encode(), base64.b64encode(key)]
    needles.append(shown.encode())
    for path in (p for p in live_server.data_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, path


class StubApi:
    """A server that hands back whatever backup it is given to hand back."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, **_: Any) -> AsyncIterator[httpx.Response]:
        assert (method, path) == ("GET", "/api/v1/account/history-backup")
        yield httpx.Response(200, json=self.answer)


class StubSession:
    username = "alice"


def home_with_backups(tmp_path: Path, answer: dict[str, Any]) -> HistoryBackups:
    from securechat.client.state import StateStore

    return HistoryBackups(
        StateStore(tmp_path / "home"),
        StubApi(answer),  # type: ignore[arg-type]
        StubSession(),  # type: ignore[arg-type]
        sealing_key=lambda: bytes(range(32)),
    )


def sealed_answer(key: bytes, version: int) -> dict[str, Any]:
    sealed = seal_backup(key, Archive("alice", version, 1, ()), os.urandom(12))
    return {"version": version, "sealed": base64.b64encode(sealed).decode()}


async def test_a_rollback_to_an_older_backup_is_refused(tmp_path: Path) -> None:
    key = os.urandom(32)
    shown = format_recovery_key(key)
    backups = home_with_backups(tmp_path, sealed_answer(key, 3))
    assert (await backups.restore(shown)).version == 3
    assert backups.highest_seen() == 3
    # Later the server hands back version 2 (kept from before, genuine and well sealed).
    backups.api = StubApi(sealed_answer(key, 2))  # type: ignore[assignment]
    with pytest.raises(BackupRefused) as refused:
        await backups.restore(shown)
    assert refused.value.reason == "backup_rollback"
    # A blob of version 2 presented as version 4: the AEAD refuses it.
    relabelled = sealed_answer(key, 2) | {"version": 4}
    backups.api = StubApi(relabelled)  # type: ignore[assignment]
    with pytest.raises(BackupRefused) as failed:
        await backups.restore(shown)
    assert failed.value.reason == "backup_failed"
    assert backups.highest_seen() == 3


class StaleOnceApi:
    """A server where another home of the account has already uploaded version 7."""

    def __init__(self) -> None:
        self.puts: list[int] = []

    async def request(self, method: str, path: str, *, json: Any = None, **_: Any) -> Any:
        from securechat.client.errors import ApiError

        assert (method, path) == ("PUT", "/api/v1/account/history-backup")
        self.puts.append(json["version"])
        if json["version"] <= 7:
            raise ApiError(
                409, "backup_version_stale", "stale", {"code": "backup_version_stale", "version": 7}
            )
        return {"version": json["version"], "size": 1}


async def test_an_upload_goes_above_another_homes_later_version_once(tmp_path: Path) -> None:
    backups = home_with_backups(tmp_path, {})
    api = StaleOnceApi()
    backups.api = api  # type: ignore[assignment]
    # A key kept unsealed by an earlier release is used, then kept sealed only.
    key = os.urandom(32)
    backups.state.put("history_backup.recovery_key", base64.b64encode(key).decode())
    uploaded = await backups.upload()
    assert api.puts == [1, 8]
    assert (uploaded.version, backups.highest_seen()) == (8, 8)
    assert backups.state.get("history_backup.recovery_key") is None
    sealed = backups.state.get("history_backup.recovery_key.sealed")
    assert sealed is not None and base64.b64encode(key).decode() not in sealed
    for path in (p for p in (tmp_path / "home").rglob("*") if p.is_file()):
        assert key not in path.read_bytes()
