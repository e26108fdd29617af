"""A malicious server against v2 clients (PROTOCOL.md 15.3, 15.8): it swaps a device
list for one it made, or delivers an old entry again. The client refuses with the
reason, keeps the entry as unverifiable (never dropped, never shown as valid), and
nothing it had stored changes: lists, session sets, seen records, prekeys."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from securechat.client.messenger import Messenger
from securechat.client.v2.directory import ListRefused
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import certify_device, sign_device_list
from securechat.protocol.v2.primitives import ed25519_raw_public, x25519_public

from ..conftest import LiveServer, server_database
from .conftest import MakeClient


def local_records(client: Messenger) -> dict[str, Any]:
    """What a refused entry must leave as it was in the home (sealed records opened)."""
    store = client.v2.store
    with client.state.transaction() as db:
        return {
            "records": {
                name: store.record(db, name) for (name,) in db.execute("SELECT name FROM v2_records")
            },
            "sessions": {
                (user, device): store.session_set(db, user, device)
                for user, device in db.execute("SELECT username, device_id FROM v2_sessions")
            },
            "lists": sorted(tuple(r) for r in db.execute("SELECT * FROM v2_lists")),
            "seen": sorted(tuple(r) for r in db.execute("SELECT * FROM seen_ids")),
        }


def user_id(db: sqlite3.Connection, name: str) -> int:
    return int(db.execute("SELECT id FROM users WHERE username = ?", (name,)).fetchone()[0])


async def test_a_replayed_old_entry_is_refused_and_changes_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    bob_device = await bob.enable_v2()
    await alice.send_text("bob", "pay carol 10 euros")
    db = server_database(live_server)
    try:
        # The server keeps a copy of the stored message and of bob's entry.
        message = db.execute("SELECT * FROM v2_messages").fetchone()
        entry = db.execute("SELECT * FROM device_inbox WHERE device_id = ?", (bob_device,)).fetchone()
    finally:
        db.close()
    first = await bob.sync_inbox()
    assert [(i.text, i.verified) for i in first if i.kind == "message"] == [("pay carol 10 euros", True)]
    before = local_records(bob)

    db = server_database(live_server)
    try:
        # Once acknowledged the row keeps only the header; the server's copy puts the body back.
        (pk,) = db.execute("SELECT id FROM v2_messages WHERE message_id = ?", (message[1],)).fetchone()
        db.execute(
            "UPDATE v2_messages SET envelope = ?, body_deleted_at = NULL WHERE id = ?",
            (message[5], pk),
        )
        head = db.execute("SELECT inbox_head FROM devices WHERE device_id = ?", (bob_device,)).fetchone()[0]
        db.execute(
            "INSERT INTO device_inbox (user_id, device_id, seq, message_pk, slot, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (entry[0], entry[1], head + 1, pk, entry[4], entry[5]),
        )
        db.execute("UPDATE devices SET inbox_head = ? WHERE device_id = ?", (head + 1, bob_device))
    finally:
        db.close()
    again = await bob.sync_inbox()
    assert [(i.kind, i.verified, i.reason, i.sender) for i in again] == [
        ("message", False, "replayed", "alice")
    ]
    assert local_records(bob) == before
    # Kept, as unverifiable, beside the genuine one.
    assert [(r["text"], r["verified"], r["reason"]) for r in bob.stored_messages("alice")] == [
        ("pay carol 10 euros", 1, None),
        (None, 0, "replayed"),
    ]


def forged_list(name: str, version: int) -> dict[str, object]:
    """A list for ``name`` the server signed itself, naming a device whose keys it holds."""
    seed = os.urandom(32)
    device = certify_device(
        seed, Username(name), ed25519_raw_public(os.urandom(32)), x25519_public(os.urandom(32)), 1
    )
    return sign_device_list(seed, Username(name), version, int(time.time() * 1000), [device]).to_wire()


async def test_a_swapped_device_list_is_refused_and_changes_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "hello")
    before = local_records(bob)
    assert not [row for row in before["lists"] if row[0] == "alice"]
    # Before bob fetches alice's list, the server swaps it for one of its own.
    db = server_database(live_server)
    try:
        db.execute(
            "UPDATE device_lists SET document = ?, version = 2 WHERE user_id = ?",
            (json.dumps(forged_list("alice", 2)), user_id(db, "alice")),
        )
    finally:
        db.close()
    items = await bob.sync_inbox()
    assert [(i.kind, i.verified, i.reason, i.sender) for i in items] == [
        ("message", False, "device_not_listed", "alice")
    ]
    assert local_records(bob) == before
    # Sending to alice is refused too, with the reason (no fall back to v1): a list under
    # another account key with no signed transition to it is an unsigned key change (15.11).
    with pytest.raises(ListRefused) as refused:
        await bob.send_text("alice", "to whom?")
    assert refused.value.reason == "key_changed"
    assert local_records(bob) == before

    # A list that names alice's own account key but is signed by another key is invalid.
    forged = forged_list("alice", 3)
    assert alice.identity is not None
    real_key = alice.identity.signing_private.public_key().public_bytes_raw()
    forged["account_key"] = base64.b64encode(real_key).decode()
    db = server_database(live_server)
    try:
        db.execute(
            "UPDATE device_lists SET document = ?, version = 3 WHERE user_id = ?",
            (json.dumps(forged), user_id(db, "alice")),
        )
    finally:
        db.close()
    with pytest.raises(ListRefused) as refused:
        await bob.send_text("alice", "to whom now?")
    assert refused.value.reason == "device_list_invalid"
    assert local_records(bob) == before
