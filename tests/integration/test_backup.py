"""`securechat admin backup` and `restore` (issue 13, item 8): a backup taken while the
server serves and a client keeps sending, restored into a fresh data dir, gives a fresh
server that hands back every message acknowledged before the backup started, the stored
envelopes byte-identical, and the files and groups with them; the backup holds no
plaintext and not the server secret; a restore never overwrites data."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from securechat.client.messenger import Messenger

from ..conftest import LiveServer, start_server, throwaway_postgres
from .conftest import PASSWORDS


def admin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "securechat", "admin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
        check=False,
    )


def stored_envelopes(database: Path) -> dict[str, str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return dict(connection.execute("SELECT message_id, envelope FROM messages").fetchall())
    finally:
        connection.close()


class Traffic:
    """What the clients sent, and when the server acknowledged each message."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.acked_at: dict[str, float] = {}  # message id -> time of the acknowledgement
        self.to: dict[str, str] = {}  # message id -> a member who must receive it

    async def send(self, sender: Messenger, target: str, text: str, member: str) -> str:
        self.texts.append(text)
        answer = await sender.send_text(target, text)
        self.acked_at[answer["message_id"]] = time.monotonic()
        self.to[answer["message_id"]] = member
        return str(answer["message_id"])


async def make_history(alice: Messenger, bob: Messenger, carol: Messenger, tmp_path: Path, traffic: Traffic):  # type: ignore[no-untyped-def]
    group_id = await alice.groups.create("Backups", ["bob", "carol"])
    await carol.sync_inbox()  # carol's device learns the group
    for i in range(5):
        await traffic.send(alice, "bob", f"backup plaintext alice to bob {i}", "bob")
    for i in range(3):
        await traffic.send(bob, "alice", f"backup plaintext bob to alice {i}", "alice")
    for i in range(3):
        await traffic.send(carol, group_id, f"backup plaintext in the group {i}", "alice")
    secret_file = tmp_path / "holiday-plans-plaintext-name.txt"
    contents = b"FILE PLAINTEXT MARKER " * 20_000
    secret_file.write_bytes(contents)
    shared = await alice.send_file("bob", secret_file, caption="backup plaintext caption")
    traffic.texts += ["backup plaintext caption", secret_file.name, "FILE PLAINTEXT MARKER"]
    traffic.acked_at[shared["message_id"]] = time.monotonic()
    traffic.to[shared["message_id"]] = "bob"
    return group_id, shared["file_id"], contents


async def keep_sending(alice: Messenger, traffic: Traffic, stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        await traffic.send(alice, "bob", f"backup plaintext sent during the backup {i}", "bob")
        i += 1


def scan_for_plaintext(backup: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in backup.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{needle!r} in {path.name}" for needle in needles if needle in data]
    return found


async def read_back(url: str, tmp_path: Path, name: str) -> dict[str, str]:
    """Log in on a fresh device and read the whole inbox: verified message ids -> text."""
    client = Messenger(tmp_path / f"restored-{name}", url)
    try:
        await client.login(name, PASSWORDS[name])
        items = await client.sync_inbox()
        return {
            i.message_id: i.text or "" for i in items if i.kind == "message" and i.verified and i.message_id
        }
    finally:
        await client.close()


async def test_sqlite_backup_while_serving_restores_every_acknowledged_message(
    live_server: LiveServer, make_client, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    carol = await make_client("carol")
    traffic = Traffic()
    _group_id, file_id, contents = await make_history(alice, bob, carol, tmp_path, traffic)

    stop = asyncio.Event()
    sender = asyncio.create_task(keep_sending(alice, traffic, stop))
    await asyncio.sleep(0.3)
    backup_dir = tmp_path / "backup"
    started = time.monotonic()
    result = await asyncio.to_thread(
        admin, "backup", str(backup_dir), "--data-dir", str(live_server.data_dir)
    )
    finished = time.monotonic()
    await asyncio.sleep(0.3)
    stop.set()
    await sender
    assert result.returncode == 0, result.stderr + result.stdout
    before = {mid for mid, at in traffic.acked_at.items() if at < started}
    during = sum(1 for at in traffic.acked_at.values() if started <= at <= finished)
    print(
        f"backup took {finished - started:.2f} s (command); {len(before)} messages acknowledged before it, "
        f"{during} while it ran: {result.stdout.strip()}"
    )
    assert during > 0  # the server kept acknowledging while the backup ran

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"] == "sqlite" and manifest["chunks_missing"] == []
    assert manifest["counts"]["messages"] >= len(before) and manifest["counts"]["files"] == 1
    assert manifest["chunks_copied"] == manifest["counts"]["file_chunks"] >= 1
    assert (backup_dir / "securechat.db").stat().st_mode & 0o077 == 0

    # Ciphertext and metadata only: no text sent, no file contents or name, no password,
    # not the server secret.
    secret = (live_server.data_dir / "server-secret").read_bytes().strip()
    needles = [t.encode() for t in traffic.texts] + [p.encode() for p in PASSWORDS.values()] + [secret]
    assert scan_for_plaintext(backup_dir, needles) == []

    # A restore needs a fresh data dir, and never overwrites one in use.
    refused = admin("restore", str(backup_dir), "--data-dir", str(live_server.data_dir))
    assert refused.returncode == 1 and "exists" in refused.stdout + refused.stderr
    fresh = tmp_path / "fresh-data"
    restored_result = admin("restore", str(backup_dir), "--data-dir", str(fresh))
    assert restored_result.returncode == 0, restored_result.stderr + restored_result.stdout

    original = stored_envelopes(live_server.data_dir / "securechat.db")
    restored_rows = stored_envelopes(fresh / "securechat.db")
    assert before <= restored_rows.keys() <= original.keys()
    assert all(restored_rows[mid] == original[mid] for mid in restored_rows)  # byte-identical

    restored = start_server(fresh, tmp_path / "restored.log")
    try:
        seen: dict[str, str] = {}
        for name in ("alice", "bob", "carol"):
            got = await read_back(restored.url, tmp_path, name)
            missing = {mid for mid in before if traffic.to[mid] == name} - got.keys()
            assert not missing, f"{name} misses {len(missing)} messages"
            seen |= got
        assert sum(1 for text in seen.values() if text.startswith("backup plaintext in the group")) == 3
        # The file comes back whole, and checks out.
        bob_again = Messenger(tmp_path / "restored-bob", restored.url)
        try:
            await bob_again.unlock(PASSWORDS["bob"])
            out = await bob_again.get_file(file_id, tmp_path)
            assert out.read_bytes() == contents
        finally:
            await bob_again.close()
        assert "Traceback" not in restored.log()
    finally:
        restored.stop()


async def test_postgresql_backup_is_pg_dump_and_restores_into_an_empty_database(tmp_path: Path) -> None:
    # PostgreSQL's client programs come with its server, which these tests need anyway.
    assert shutil.which("pg_dump") and shutil.which("pg_restore"), "pg_dump and pg_restore are missing"
    async with throwaway_postgres("securechat_backup_src") as (_, source_url):
        env = {"SECURECHAT_DATABASE_URL": source_url}
        server = start_server(tmp_path / "data", tmp_path / "source.log", extra_env=env)
        try:
            alice = Messenger(tmp_path / "alice", server.url)
            bob = Messenger(tmp_path / "bob", server.url)
            try:
                await alice.register("alice", PASSWORDS["alice"])
                await bob.register("bob", PASSWORDS["bob"])
                sent = [
                    (await alice.send_text("bob", f"pg backup plaintext {i}"))["message_id"] for i in range(5)
                ]
            finally:
                await alice.close()
                await bob.close()
            printed = admin("backup", str(tmp_path / "printed"), "--print-only", env=env)
            assert printed.returncode == 0 and "pg_dump --format=custom" in printed.stdout
            result = admin("backup", str(tmp_path / "pg-backup"), env=env)
            assert result.returncode == 0, result.stderr + result.stdout
        finally:
            server.stop()
    dump = (tmp_path / "pg-backup" / "securechat.pgdump").read_bytes()
    assert b"pg backup plaintext" not in dump
    async with throwaway_postgres("securechat_backup_dst") as (_, target_url):
        env = {"SECURECHAT_DATABASE_URL": target_url}
        restored = admin("restore", str(tmp_path / "pg-backup"), env=env)
        assert restored.returncode == 0, restored.stderr + restored.stdout
        server = start_server(tmp_path / "data", tmp_path / "restored.log", extra_env=env)
        try:
            got = await read_back(server.url, tmp_path, "bob")
            assert set(sent) <= got.keys()
            assert sorted(got.values()) == [f"pg backup plaintext {i}" for i in range(5)]
        finally:
            server.stop()
