"""A restored row never stands in for a message the browser verifies itself (PROTOCOL.md
15.10.1): a backup is sealed under the recovery key alone, so a former device or anyone
the key leaked to can upload one, with a row reusing the message id of a v1 message the
server still serves (its id is no secret to the server). The chat shows the v1 message,
whose signature this browser checks, and not the row, whatever the row's time, before
and after a reload."""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import expect

from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import BackupMessage, parse_recovery_key

from ..conftest import LiveServer
from ..integration.test_history_backup_rows import seal_crafted
from .conftest import PASSWORDS, Person
from .terminal import TerminalUser
from .test_v2_backup import open_backups, restore, turn_on

WITH_BOB = direct_conversation_id(Username("alice"), Username("bob"))


def test_a_restored_row_never_shows_instead_of_a_v1_message(
    people: dict[str, Person], server: LiveServer, tmp_path: Path
) -> None:
    alice = people["alice"]
    alice.register()
    # Bob's terminal has no v2 device: what it sends is v1, which the server serves again.
    bob = TerminalUser(tmp_path / "bob", server.url)
    try:
        bob.run(bob.messenger.register("bob", PASSWORDS["bob"]))
        alice.start_chat("bob")
        alice.send("hello bob")
        sent = bob.run(bob.messenger.send_text("alice", "what bob really said"))
    finally:
        bob.close()
    theirs = alice.page.locator(".message.theirs")
    expect(theirs.locator(".message-text")).to_have_text(["what bob really said"], timeout=20_000)
    genuine_id = theirs.first.get_attribute("data-message-id")
    assert genuine_id == sent["message_id"]
    open_backups(alice)
    shown = turn_on(alice)
    alice.page.locator("#account-close").click()

    # Earlier than every message, so history order would put it first.
    forged = BackupMessage(genuine_id, WITH_BOB, "bob", "bob", 1, 1, "bob never said this")
    forger = TerminalUser(tmp_path / "alice-former-device", server.url)
    try:
        forger.run(forger.messenger.login("alice", PASSWORDS["alice"]))
        sealed = seal_crafted(parse_recovery_key(shown), 2, (forged,))
        body = {"version": 2, "sealed": base64.b64encode(sealed).decode()}
        forger.run(forger.messenger.api.request("PUT", "/api/v1/account/history-backup", json=body))
    finally:
        forger.close()

    # A fresh page: the chat's history is not loaded when the restore adds the row.
    alice.page.reload()
    alice.unlock()
    open_backups(alice)
    assert "version 2 restored: 1 of its 1 messages were new here." in restore(alice, shown)
    alice.page.locator("#account-close").click()

    texts = alice.page.locator("#message-list .message .message-text")
    alice.open_chat("bob")
    expect(texts).to_have_text(["hello bob", "what bob really said"], timeout=20_000)
    expect(alice.page.locator(f".message[data-message-id='{genuine_id}']")).to_have_count(1)

    alice.page.reload()
    alice.unlock()
    alice.open_chat("bob")
    expect(texts).to_have_text(["hello bob", "what bob really said"], timeout=20_000)
    expect(alice.page.locator(f".message[data-message-id='{genuine_id}']")).to_have_count(1)
    assert alice.problems == []
