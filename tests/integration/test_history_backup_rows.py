"""Restoring a history backup checks every row (PROTOCOL.md 15.10.1): the archive is
sealed under the recovery key, so anyone who held that key once (a former device, a
leaked key) or a faulty client can upload one. A row is added as a verified message only
if it passes the hand-over's row check (15.10.2): a 3.2 id, a direct conversation of this
account and the row's peer, a sender who is one of the two, a well-formed text no longer
than a message carries. Group rows (terminal backups hold them) are skipped and counted,
not refused; a message this home already holds keeps its own copy; a repeated id is
taken once; what the user is told counts each."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from securechat.client.history_backup import PATH, HistoryBackups
from securechat.client.messenger import Messenger
from securechat.protocol.encoding import u64
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.primitives import aes_gcm_encrypt
from securechat.protocol.v2.backup import (
    ARCHIVE_FORMAT,
    BackupMessage,
    backup_aad,
    backup_key,
    padded_length,
    parse_recovery_key,
)

from .conftest import PASSWORDS

PW = PASSWORDS["alice"] + "\n"
ALICE, BOB, CAROL = Username("alice"), Username("bob"), Username("carol")
WITH_BOB = direct_conversation_id(ALICE, BOB)
GROUP = "grp-" + "7" * 32


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


def row(sender: str, text: str, **changes: Any) -> BackupMessage:
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "conversation_id": WITH_BOB,
        "sender": sender,
        "peer": "bob",
        "sent_at": 1_790_000_000_000,
        "server_ts": 1_790_000_000_001,
        "text": text,
    }
    return BackupMessage(**(values | changes))


def verified(client: Messenger) -> list[dict[str, Any]]:
    return [m for m in client.stored_messages() if m["verified"] and m["message_id"]]


def seal_crafted(key: bytes, version: int, rows: tuple[BackupMessage, ...]) -> bytes:
    """An archive as 15.10.1 writes it, but with JSON escapes (so a lone surrogate, which
    no UTF-8 encoder writes, can be in a text), padded and sealed under the recovery key."""
    document = {
        "format": ARCHIVE_FORMAT,
        "username": "alice",
        "version": version,
        "created_at": 1,
        "messages": [m.to_json() for m in rows],
    }
    data = json.dumps(document, separators=(",", ":")).encode()
    padded = u64(len(data)) + data + bytes(padded_length(8 + len(data)) - 8 - len(data))
    iv = os.urandom(12)
    return iv + aes_gcm_encrypt(backup_key(key, "alice", version), iv, padded, backup_aad("alice", version))


async def upload_crafted(
    forger: Messenger, key: bytes, version: int, rows: tuple[BackupMessage, ...]
) -> None:
    """What someone who held the recovery key (and can log in) can do: seal any archive
    of the account under it and upload it as the next version."""
    sealed = seal_crafted(key, version, rows)
    await forger.api.request(
        "PUT", PATH, json={"version": version, "sealed": base64.b64encode(sealed).decode()}
    )


async def test_a_crafted_backup_adds_only_rows_that_fit_and_says_what_it_skipped(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    await make_client("carol")
    await alice.send_text("bob", "alice to bob, genuine")
    genuine = await bob.send_text("alice", "bob to alice, genuine")
    await alice.sync_inbox()
    backups = HistoryBackups(alice.state, alice.api, alice.session)
    shown, first = await backups.enable()
    key = parse_recovery_key(shown)
    assert first.messages == 2
    held = {m["message_id"]: m["text"] for m in verified(alice)}
    assert held[genuine["message_id"]] == "bob to alice, genuine"

    fits = row("bob", "planted, but well-formed: a recovery key holder can write this")
    own_without_peer = row("alice", "an own row kept without its peer", peer="alice")
    crafted = (
        row("carol", "carol's words in alice and bob's conversation"),
        row(
            "bob",
            "bob and carol's conversation",
            conversation_id=direct_conversation_id(BOB, CAROL),
            peer="carol",
        ),
        row("bob", "an id that is no message id", message_id="not-a-message-id"),
        row("bob", "a lone \udc00 surrogate"),
        row("bob", "x" * (128 * 1024 + 1)),
        row("bob", "a group row", conversation_id=GROUP, peer=GROUP),
        fits,
        row("bob", "the same id again, other words", message_id=fits.message_id),
        row("bob", "bob never said this", message_id=genuine["message_id"], sent_at=1),
        own_without_peer,
    )
    forger = Messenger(tmp_path / "home-former-device", live_server.url)
    try:
        await forger.login("alice", PASSWORDS["alice"])
        await upload_crafted(forger, key, 2, crafted)
    finally:
        await forger.close()

    # The home that holds the genuine history restores it: only fitting rows are added.
    restored = await backups.restore(shown)
    assert (restored.version, restored.messages, restored.added) == (2, 10, 2)
    assert (restored.group, restored.unfit, restored.repeated) == (1, 5, 1)
    assert (restored.present, restored.differing) == (1, 1)
    rows = verified(alice)
    by_id = {m["message_id"]: m for m in rows}
    assert len(rows) == len(by_id) == 4  # no id twice
    assert by_id[genuine["message_id"]]["text"] == "bob to alice, genuine"  # the copy here wins
    assert by_id[fits.message_id]["text"] == fits.text  # the first row of an id
    assert by_id[own_without_peer.message_id]["peer"] == "bob"  # its peer taken from its conversation
    assert {m["conversation_id"] for m in rows} == {WITH_BOB}
    assert {m["sender"] for m in rows} <= {"alice", "bob"}
    assert all(len(m["text"]) < 128 * 1024 and "\udc00" not in m["text"] for m in rows)
    assert set(held) <= set(by_id)

    # A new home, through the command line: what was skipped is said, nothing else added.
    home = tmp_path / "home-alice-new"
    fresh = Messenger(home, live_server.url)
    await fresh.login("alice", PASSWORDS["alice"])
    await fresh.close()
    done = cli(
        home, live_server.url, "backup", "restore", "--key-stdin", "--password-stdin", stdin=PW + shown + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert "backup 2: 10 messages, 3 new to this home" in done.stdout
    assert "1 group message not restored" in done.stdout
    assert "5 messages not restored" in done.stdout
    assert "1 message not restored: its message id came earlier in the backup" in done.stdout
    reopened = Messenger(home, live_server.url)
    try:
        texts = sorted(str(m["text"]) for m in verified(reopened))
        assert texts == sorted([fits.text, own_without_peer.text, "bob never said this"])
        assert all(m["conversation_id"] == WITH_BOB for m in verified(reopened))
    finally:
        await reopened.close()


async def test_a_terminal_backup_with_group_messages_restores_its_direct_ones(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    await make_client("bob")
    group_id = await alice.groups.create("Backed up", ["bob"])
    await alice.send_text(group_id, "said in the group")
    await alice.send_text("bob", "said to bob")
    backups = HistoryBackups(alice.state, alice.api, alice.session)
    archive = backups.local_archive(1)
    in_group = [m for m in archive.messages if m.conversation_id == group_id]
    assert in_group and any(m.text == "said in the group" for m in in_group)
    shown, uploaded = await backups.enable()
    assert uploaded.messages == len(archive.messages)

    home = tmp_path / "home-alice-new"
    fresh = Messenger(home, live_server.url)
    await fresh.login("alice", PASSWORDS["alice"])
    await fresh.close()
    done = cli(
        home, live_server.url, "backup", "restore", "--key-stdin", "--password-stdin", stdin=PW + shown + "\n"
    )
    assert done.returncode == 0, done.stderr
    direct = len(archive.messages) - len(in_group)
    assert f"backup 1: {len(archive.messages)} messages, {direct} new to this home" in done.stdout
    noun = "message" if len(in_group) == 1 else "messages"
    assert f"{len(in_group)} group {noun} not restored" in done.stdout
    assert "not a direct message" not in done.stdout
    reopened = Messenger(home, live_server.url)
    try:
        assert [m["text"] for m in verified(reopened)] == ["said to bob"]
    finally:
        await reopened.close()
