"""A restore reads the server's answer with a bound (PROTOCOL.md 15.10.1): no backup is
larger than 256 MiB sealed, so an answer longer than that in base64 (and its few other
members) is refused as ``backup_too_large`` as it streams, or before a byte of it is
read when its length is declared, not after a malicious server made the client take in
all of it."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from securechat.client import history_backup
from securechat.client.api import ApiClient
from securechat.client.errors import ApiError
from securechat.client.history_backup import HistoryBackups
from securechat.client.state import StateStore
from securechat.protocol.v2.backup import (
    MAX_SEALED_BYTES,
    Archive,
    BackupRefused,
    format_recovery_key,
    seal_backup,
)

CHUNK = 64 * 1024
BOUND = 256 * 1024


class StubSession:
    username = "alice"


class Endless(httpx.AsyncByteStream):
    """A body the server never stops sending; counts what was read of it."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < 64 * 1024 * 1024:
            self.sent += CHUNK
            yield b"7" * CHUNK


def home(tmp_path: Path, handler: httpx.MockTransport) -> HistoryBackups:
    api = ApiClient("http://server", transport=handler)
    api.access_token = "token"
    return HistoryBackups(
        StateStore(tmp_path / "home"),
        api,
        StubSession(),  # type: ignore[arg-type]
        sealing_key=lambda: bytes(range(32)),
    )


def test_the_bound_holds_the_largest_backup() -> None:
    sealed_b64 = 4 * ((MAX_SEALED_BYTES + 2) // 3)
    assert sealed_b64 < history_backup.MAX_ANSWER_BYTES < sealed_b64 + 64 * 1024


async def test_an_endless_answer_is_cut_off_as_it_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_backup, "MAX_ANSWER_BYTES", BOUND)
    body = Endless()
    backups = home(tmp_path, httpx.MockTransport(lambda _: httpx.Response(200, stream=body)))
    with pytest.raises(BackupRefused) as refused:
        await backups.restore(format_recovery_key(os.urandom(32)))
    assert refused.value.reason == "backup_too_large"
    assert body.sent <= BOUND + CHUNK
    assert backups.highest_seen() == 0


async def test_a_declared_length_past_the_bound_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_backup, "MAX_ANSWER_BYTES", BOUND)
    body = Endless()
    headers = {"content-length": str(BOUND + 1)}
    backups = home(tmp_path, httpx.MockTransport(lambda _: httpx.Response(200, headers=headers, stream=body)))
    with pytest.raises(BackupRefused) as refused:
        await backups.restore(format_recovery_key(os.urandom(32)))
    assert refused.value.reason == "backup_too_large"
    assert body.sent == 0


async def test_an_answer_within_the_bound_restores_and_errors_are_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_backup, "MAX_ANSWER_BYTES", BOUND)
    key = os.urandom(32)
    sealed = seal_backup(key, Archive("alice", 3, 1, ()), os.urandom(12))
    answer = {"version": 3, "sealed": base64.b64encode(sealed).decode(), "size": len(sealed), "updated_at": 1}
    backups = home(tmp_path, httpx.MockTransport(lambda _: httpx.Response(200, json=answer)))
    assert (await backups.restore(format_recovery_key(key))).version == 3

    missing = {"error": {"code": "no_history_backup", "message": "this account has no history backup"}}
    backups = home(tmp_path / "2", httpx.MockTransport(lambda _: httpx.Response(404, json=missing)))
    with pytest.raises(ApiError) as error:
        await backups.restore(format_recovery_key(key))
    assert (error.value.status, error.value.code) == (404, "no_history_backup")
