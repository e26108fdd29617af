"""Receipts in the browser are signed by their reader (PROTOCOL.md 9.3, 14.7; issue 11,
3.10): the page signs "delivered" when it accepts messages of others and "read" when it
shows them, and moves its own messages forward only on a receipt that the reader signed
with the key the page pinned, about messages it sealed for that reader. A receipt the
server makes up (unsigned, or signed by someone else) moves nothing.
"""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.receipts import make_receipt

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person
from .test_groups import database


def insert_inbox_entry(server: LiveServer, username: str, kind: str, data: dict[str, object]) -> None:
    """What a malicious server does behind its own back: a new entry in a user's inbox."""
    with database(server) as connection:
        (user_id, head) = connection.execute(
            "SELECT u.id, (SELECT max(seq) FROM inbox_entries WHERE user_id = u.id) FROM users u"
            " WHERE username = ?",
            (username,),
        ).fetchone()
        connection.execute(
            "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, data, created_at)"
            " VALUES (?, ?, ?, NULL, ?, ?)",
            (user_id, (head or 0) + 1, kind, json.dumps(data), int(time.time() * 1000)),
        )


def own_message_id(person: Person) -> str:
    message_id: str = person.page.locator(".message.mine").last.get_attribute("data-message-id") or ""
    assert message_id
    return message_id


def test_a_read_receipt_the_server_made_up_does_not_show_as_read(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    bob, mallory = terminal("bob"), terminal("mallory")
    bob.run(bob.messenger.send_text("alice", "hi alice"))
    mallory.run(mallory.messenger.send_text("alice", "mallory here"))
    alice.open_chat("bob")
    alice.send("for bob's eyes")
    status = alice.page.locator(".message.mine .status")
    expect(status).to_have_text([" · Sent"])
    message_id = own_message_id(alice)
    conversation = direct_conversation_id(Username("alice"), Username("bob"))

    # The server says bob read it: once as its own (unsigned) claim, once as a receipt
    # "by bob" that mallory signed (mallory is pinned by alice, bob's key is not hers).
    insert_inbox_entry(
        server,
        "alice",
        "receipt",
        {"message_ids": [message_id], "recipient": "bob", "status": "read", "at": int(time.time() * 1000)},
    )
    identity = mallory.messenger.identity
    assert identity is not None
    forged = make_receipt(identity, conversation, "read", [message_id]).to_wire()
    forged["reader"] = "bob"
    insert_inbox_entry(
        server,
        "alice",
        "receipt",
        {"message_ids": [message_id], "recipient": "bob", "status": "read", "receipt": forged},
    )
    # Something genuine after them, so that the page has taken both in when it shows.
    bob.run(bob.messenger.send_text("alice", "still here"))
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["hi alice", "still here"])
    expect(status).to_have_text([" · Sent"])
    assert [m["status"] for m in alice.messages() if m["mine"]] == ["sent"]
    # Nor after a reload, when the page takes its status from what it stored.
    alice.page.reload()
    alice.wait_chat()
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(
        ["hi alice", "for bob's eyes", "still here"]
    )
    expect(status).to_have_text([" · Sent"])


def test_genuine_receipts_between_the_browser_and_the_terminal_client(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    bob = terminal("bob")

    # Browser -> terminal: bob's acknowledgement and his read receipt, both signed by bob.
    alice.start_chat("bob")
    alice.send("hello bob")
    status = alice.page.locator(".message.mine .status")
    expect(status).to_have_text([" · Sent"])
    items = bob.run(bob.messenger.sync_inbox())
    [message] = [i for i in items if i.kind == "message"]
    assert message.verified and message.text == "hello bob"
    expect(status).to_have_text([" · Delivered"])
    assert message.conversation_id is not None and message.message_id is not None
    assert bob.run(bob.messenger.mark_read(message.conversation_id, [message.message_id])) == 1
    expect(status).to_have_text([" · Read"])

    # Terminal -> browser: the page signs "delivered" when it accepts the message and
    # "read" when it shows it; bob's client checks both against alice's pinned key.
    sent = bob.run(bob.messenger.send_text("alice", "hello alice"))
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["hello alice"])
    # (Alice has it on screen at once, so "read" may come before "delivered".)
    deadline = time.monotonic() + 15
    statuses: set[str] = set()
    while time.monotonic() < deadline and len(statuses) < 2:
        for item in bob.run(bob.messenger.sync_inbox()):
            if item.kind == "receipt":
                assert item.verified, item.reason
                assert item.recipient == "alice" and item.message_ids == [sent["message_id"]]
                statuses.add(str(item.status))
        time.sleep(0.2)
    assert statuses == {"delivered", "read"}
    [row] = [
        r for r in bob.call(bob.messenger.stored_messages, "alice") if r["message_id"] == sent["message_id"]
    ]
    assert row["status"] == "read"

    # After a reload the status is still what bob signed, not what history says.
    alice.page.reload()
    alice.wait_chat()
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(["hello bob", "hello alice"])
    expect(status).to_have_text([" · Read"])
