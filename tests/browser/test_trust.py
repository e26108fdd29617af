"""What a malicious server can try against a browser user, and what the page shows:
substituted keys (banner, sending refused until accepted), forged, tampered and
replayed messages (shown as unverifiable, never dropped, never shown as valid)."""

from __future__ import annotations

import base64
import json
import sqlite3

from playwright.sync_api import expect

from securechat.protocol.envelope import seal_message
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person


def database(server: LiveServer) -> sqlite3.Connection:
    connection = sqlite3.connect(server.data_dir / "securechat.db", timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def substitute_keys(server: LiveServer, username: str) -> PrivateIdentity:
    """Publish fresh, validly bound keys for ``username``: what a compromised server can do."""
    fake = PrivateIdentity.generate(Username(username))
    with database(server) as connection:
        connection.execute(
            "UPDATE users SET signing_key = ?, encryption_key = ?, encryption_key_signature = ? WHERE username = ?",
            (
                fake.public.signing_key,
                fake.public.encryption_key,
                fake.public.encryption_key_signature,
                username,
            ),
        )
    return fake


def deliver_raw(server: LiveServer, sender: str, recipient: str, message_id: str, envelope: str) -> None:
    """Store an envelope as the server would and append it to the recipient's inbox."""
    connection = database(server)
    (sender_id,) = connection.execute("SELECT id FROM users WHERE username = ?", (sender,)).fetchone()
    (recipient_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = ?",
        (recipient,),
    ).fetchone()
    conversation = direct_conversation_id(Username(sender), Username(recipient))
    cursor = connection.execute(
        "INSERT INTO messages (message_id, conversation_id, sender_id, client_ts, server_ts, size,"
        " envelope_sha256, envelope) VALUES (?, ?, ?, 0, 0, 0, ?, ?)",
        (message_id, conversation, sender_id, b"\0" * 32, envelope),
    )
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at) VALUES (?, ?, 'message', ?, 0)",
        (recipient_id, head + 1, cursor.lastrowid),
    )
    connection.close()


def count_messages_from(server: LiveServer, username: str) -> int:
    """Messages stored from ``username`` in either protocol (v1 and v2 are stored apart)."""
    total = 0
    with database(server) as connection:
        for table in ("messages", "v2_messages"):
            (count,) = connection.execute(
                f"SELECT count(*) FROM {table} JOIN users ON users.id = {table}.sender_id WHERE username = ?",
                (username,),
            ).fetchone()
            total += int(count)
    return total


def test_substituted_key_shows_the_banner_and_blocks_sending_until_accepted(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register(remember=True)
    bob.register()
    alice.start_chat("bob")
    alice.send("before the substitution")
    expect(bob.page.locator(".conversation-item[data-peer='alice']")).to_be_visible()
    original_number = alice.safety_number()
    # Alice compared the number with bob and marks him verified.
    alice.page.get_by_role("button", name="Safety number").click()
    alice.page.get_by_role("button", name="Mark as verified").click()
    expect(alice.page.locator("#contact-status")).to_have_text("You have verified this contact.")
    alice.page.locator("#contact-dialog").get_by_role("button", name="Close").click()
    expect(alice.page.locator("#conversation-verified")).to_be_visible()

    substitute_keys(server, "bob")
    # Under a key change the verified badge no longer shows.
    stored_before = count_messages_from(server, "alice")
    page = alice.page
    box = page.get_by_label("Message", exact=True)
    box.fill("this must not be sent")
    box.press("Enter")
    banner = page.locator("#key-change-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("bob")
    expect(page.locator("#composer-error")).to_contain_text("keys have changed")
    expect(box).to_be_disabled()
    expect(page.locator("#composer-send")).to_be_disabled()
    assert count_messages_from(server, "alice") == stored_before, "a message left for the substituted key"
    assert "this must not be sent" not in alice.texts()

    # The contact panel shows both numbers; the pinned one is unchanged.
    page.get_by_role("button", name="Compare safety number").click()
    expect(page.locator("#pending-safety")).to_be_visible()
    assert page.locator("#safety-number").inner_text() == original_number
    assert page.locator("#pending-safety-number").inner_text() != original_number
    expect(page.locator("#contact-verify")).to_be_disabled()
    page.locator("#contact-dialog").get_by_role("button", name="Close").click()

    # The change survives a reload: the banner is back at once and sending stays blocked.
    page.reload()
    alice.wait_chat()
    alice.open_chat("bob")
    expect(banner).to_be_visible()
    expect(box).to_be_disabled()

    # Accepting is explicit; afterwards sending works again, to the new key.
    page.get_by_role("button", name="Accept new keys").click()
    expect(banner).to_be_hidden()
    expect(box).to_be_enabled()
    # The verified mark belonged to the old keys: it is gone.
    expect(page.locator("#conversation-verified")).to_be_hidden()
    alice.send("after accepting")
    expect(page.locator(".message.mine .status").last).to_have_text(" · Sent")
    assert count_messages_from(server, "alice") == stored_before + 1


def test_forged_tampered_and_replayed_messages_show_as_unverifiable(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    bob = terminal("bob")
    good = bob.run(bob.messenger.send_text("alice", "genuine message"))
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(["genuine message"])

    # Tampered: a ciphertext bit flipped in transit.
    envelope = bob.run(bob.messenger.seal_text("alice", "tampered secret"))
    wire = envelope.to_wire()
    ciphertext = bytearray(base64.b64decode(wire["ciphertext"]))
    ciphertext[0] ^= 1
    wire["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    deliver_raw(server, "bob", "alice", envelope.header.message_id, json.dumps(wire))

    # Replayed: the genuine message delivered again under a new sequence number.
    connection = database(server)
    (alice_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = 'alice'"
    ).fetchone()
    (message_pk,) = connection.execute(
        "SELECT id FROM messages WHERE message_id = ?", (good["message_id"],)
    ).fetchone()
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at) VALUES (?, ?, 'message', ?, 0)",
        (alice_id, head + 1, message_pk),
    )
    connection.close()

    # Forged: the server swaps bob's keys and signs a message "from bob" with them.
    fake = substitute_keys(server, "bob")
    me = bob.messenger.identity
    assert me is not None
    alice_public = bob.run(bob.messenger.fetch_identity("alice"))
    forged = seal_message(
        fake,
        direct_conversation_id(Username("alice"), Username("bob")),
        {Username("alice"): alice_public, Username("bob"): fake.public},
        {"type": "text", "text": "forged secret"},
    )
    deliver_raw(server, "bob", "alice", forged.header.message_id, json.dumps(forged.to_wire()))

    # The inbox entries were written behind the server's back: a new connection picks them up.
    alice.page.reload()
    alice.wait_chat()
    alice.open_chat("bob")
    items = alice.page.locator("#message-list .message")
    expect(items).to_have_count(4)
    messages = alice.messages()
    assert [m["verified"] for m in messages] == [True, False, False, False]
    page_text = alice.page.locator("#message-list").inner_text()
    for secret in ("tampered secret", "forged secret"):
        assert secret not in page_text
    # Each with the core's reason (PROTOCOL.md 14.1), in words: the tampered one fails the
    # signature check against bob's pinned key (the signature covers the ciphertext); so
    # does the forged one, or, once the page has seen the directory's new key for bob,
    # it verifies only with that unaccepted key; the replay is a replay.
    reasons = alice.page.locator(".message.unverifiable").evaluate_all(
        "items => items.map(i => i.dataset.reason)"
    )
    assert sorted(reasons) in (
        ["bad_signature", "bad_signature", "replayed"],
        ["bad_signature", "key_changed", "replayed"],
    ), reasons
    texts = " ".join(alice.page.locator(".message.unverifiable .message-reason").all_inner_texts())
    assert "its signature does not verify with the sender's keys: it may be forged" in texts, texts
    assert "replayed: this message was delivered before" in texts, texts
