"""Restoring a history backup in the browser checks every row (PROTOCOL.md 15.10.1): a
backup is sealed under the recovery key alone, so a former device or anyone the key
leaked to can upload one. Only rows that pass the hand-over's row check (15.10.2) are
kept and shown as verified; a group row, a row in another conversation or in a third
account's name, a malformed text and a repeated id are skipped and counted; a message the
profile already keeps keeps its own copy; the dialog says what was left out."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import BackupMessage, parse_recovery_key

from ..conftest import LiveServer
from ..integration.test_history_backup_rows import seal_crafted
from .conftest import PASSWORDS, Person
from .terminal import TerminalUser
from .test_v2_backup import open_backups, restore, stored_backup, turn_on
from .v2_support import two_in_a_v2_chat

WITH_BOB = direct_conversation_id(Username("alice"), Username("bob"))


def test_a_crafted_backup_shows_only_rows_that_fit(
    people: dict[str, Person], server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = two_in_a_v2_chat(people, "genuine, from alice")
    bob.open_chat("alice")
    bob.send("genuine, from bob")
    theirs = alice.page.locator(".message.theirs")
    expect(theirs.locator(".message-text")).to_have_text(["genuine, from bob"], timeout=20_000)
    genuine_id = theirs.first.get_attribute("data-message-id")
    assert genuine_id
    open_backups(alice)
    shown = turn_on(alice)
    alice.page.locator("#account-close").click()

    later = int(time.time() * 1000) + 60_000

    def row(sender: str, text: str, **changes: Any) -> BackupMessage:
        values: dict[str, Any] = {
            "message_id": str(uuid.uuid4()),
            "conversation_id": WITH_BOB,
            "sender": sender,
            "peer": "bob",
            "sent_at": later,
            "server_ts": later,
            "text": text,
        }
        return BackupMessage(**(values | changes))

    fits = row("bob", "planted but well-formed")
    own = row("alice", "own row kept without its peer", peer="alice", sent_at=later + 1)
    group = "grp-" + "9" * 32
    crafted = (
        row("carol", "carol in alice and bob's chat"),
        row(
            "bob",
            "bob to carol",
            conversation_id=direct_conversation_id(Username("bob"), Username("carol")),
            peer="carol",
        ),
        row("bob", "a lone \udc00 surrogate"),
        row("bob", "in a group", conversation_id=group, peer=group),
        fits,
        row("bob", "the same id again", message_id=fits.message_id, sent_at=later + 5),
        row("bob", "bob never said this", message_id=genuine_id, sent_at=later + 7),
        own,
    )
    forger = TerminalUser(tmp_path / "alice-former-device", server.url)
    try:
        forger.run(forger.messenger.login("alice", PASSWORDS["alice"]))
        sealed = seal_crafted(parse_recovery_key(shown), 2, crafted)
        body = {"version": 2, "sealed": base64.b64encode(sealed).decode()}
        forger.run(forger.messenger.api.request("PUT", "/api/v1/account/history-backup", json=body))
    finally:
        forger.close()
    assert stored_backup(server, "alice") == (2, sealed)

    open_backups(alice)
    answer = restore(alice, shown)
    assert "version 2 restored: 2 of its 8 messages were new here." in answer
    assert "1 message already here, with other content than in the backup: the copy here was kept." in answer
    assert "1 group message was not restored" in answer
    assert "3 messages were not restored: not direct messages of this account" in answer
    assert "1 message was not restored: its message id came earlier in the backup" in answer
    alice.page.locator("#account-close").click()

    alice.open_chat("bob")
    texts = alice.page.locator("#message-list .message .message-text")
    expect(texts).to_have_text(
        [
            "genuine, from alice",
            "genuine, from bob",
            "planted but well-formed",
            "own row kept without its peer",
        ],
        timeout=20_000,
    )
    expect(alice.page.locator(f".message[data-message-id='{genuine_id}']")).to_have_count(1)
    expect(alice.page.locator(".conversation-item[data-peer='carol']")).to_have_count(0)

    # After a reload, from what the profile keeps: the same.
    alice.page.reload()
    alice.unlock()
    alice.open_chat("bob")
    expect(alice.page.locator("#message-list .message .message-text")).to_have_text(
        [
            "genuine, from alice",
            "genuine, from bob",
            "planted but well-formed",
            "own row kept without its peer",
        ],
        timeout=20_000,
    )
    expect(alice.page.locator(".conversation-item[data-peer='carol']")).to_have_count(0)
