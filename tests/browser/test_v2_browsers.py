"""Protocol v2 (PROTOCOL.md 15) in the browser app: two browser profiles switch it on and
exchange direct messages both ways through the device inboxes; a second profile of alice
becomes a second device (bob is told, it gets messages from then on); alice revokes it
from the first profile's devices panel and it receives nothing more. Afterwards no
plaintext and no private key of any device is in the server's files or log."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from playwright.sync_api import Page, expect

from ..conftest import LiveServer, server_database
from .conftest import Person
from .v2_support import POSTED, raw_v2_store, switch_on_v2, two_in_a_v2_chat, v2_posts


def device_secrets(page: Page, username: str) -> dict[str, Any]:
    """This profile's device record, opened with its own sealing key (the test reads
    what only the browser can, to look for it where it must not be)."""
    record: dict[str, Any] = page.evaluate(
        """async (name) => {
            const m = await import('/static/app/device-keys.js');
            const sealer = await m.Sealer.forAccount(name);
            return sealer.read([name, 'device']);
        }""",
        username,
    )
    return record


def private_keys(record: dict[str, Any]) -> list[bytes]:
    keys = [base64.b64decode(record["signingSeed"]), base64.b64decode(record["dhPrivate"])]
    keys += [base64.b64decode(entry["private"]) for entry in record["signed"]]
    keys += [base64.b64decode(value) for value in record["oneTime"].values()]
    return keys


def server_bytes(server: LiveServer) -> bytes:
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in files) + server.log_path.read_bytes()


def test_two_browsers_exchange_v2_messages_both_ways(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    switch_on_v2(alice)
    switch_on_v2(bob)
    alice_posts, bob_posts = v2_posts(alice.page), v2_posts(bob.page)

    alice.start_chat("bob")
    started = time.monotonic()
    alice.send("first v2 message")
    bob_item = bob.page.locator(".conversation-item[data-peer='alice']")
    expect(bob_item.locator(".conversation-preview")).to_have_text("first v2 message", timeout=20_000)
    print(f"first v2 message, send to display: {time.monotonic() - started:.2f} s")
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["first v2 message"])

    started = time.monotonic()
    bob.send("reply in v2")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["reply in v2"], timeout=20_000)
    print(f"reply (session set up by alice's setup), send to display: {time.monotonic() - started:.2f} s")
    alice.send("second from alice")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(
        ["first v2 message", "second from alice"]
    )

    # Each went through POST /v2/messages (as did the receipts, 15.17), and every message
    # shows as verified; each side has read the other's.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read", " · Read"], timeout=20_000)
    expect(bob.page.locator(".message.mine .status")).to_have_text([" · Read"], timeout=20_000)
    assert len(alice_posts) >= 2 and len(bob_posts) >= 1
    assert all(m["verified"] for m in alice.messages() + bob.messages())

    # Invariant 1: nothing of the plaintext and no private key of either device is in
    # the server's database, files or log.
    stored = server_bytes(server)
    for text in ("first v2 message", "reply in v2", "second from alice"):
        assert text.encode() not in stored
    for person in (alice, bob):
        record = device_secrets(person.page, person.name)
        keys = private_keys(record)
        assert len(keys) >= 102  # signing seed, DH key, a signed prekey, 100 one-time
        # The profile keeps them sealed: neither the bytes nor their base64 are readable.
        local = raw_v2_store(person.page)
        assert b'"cryptoKey":false' in local
        for key in keys:
            assert key not in stored
            assert base64.b64encode(key) not in stored
            assert key not in local
            assert base64.b64encode(key) not in local


def test_a_second_alice_device_is_announced_gets_messages_and_stops_once_revoked(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = two_in_a_v2_chat(people, "before the laptop")
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["before the laptop"])

    # A second profile logs in as alice and switches v2 on: a second device in her list.
    laptop = people["alice-laptop"]
    laptop.name = "alice"
    laptop.login()
    switch_on_v2(laptop)

    # Bob's next message is sealed for alice's list of two (after one 409, or after his
    # client saw the new list): he is told, and both of alice's devices get it.
    bob.send("to both of alice's devices")
    expect(bob.page.locator(".system-line", has_text="alice added a new device")).to_have_count(
        1, timeout=20_000
    )
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(
        ["to both of alice's devices"], timeout=20_000
    )
    laptop.open_chat("bob")
    expect(laptop.page.locator(".message.theirs .message-text")).to_have_text(
        ["to both of alice's devices"], timeout=20_000
    )
    # What the laptop sends reaches bob and alice's first device (as her own message).
    laptop.send("from the laptop")
    expect(bob.page.locator(".message.theirs .message-text").last).to_have_text(
        "from the laptop", timeout=20_000
    )
    expect(alice.page.locator(".message.mine .message-text").last).to_have_text(
        "from the laptop", timeout=20_000
    )

    # Alice revokes the laptop from the first profile's devices panel.
    alice.page.once("dialog", lambda dialog: dialog.accept())
    alice.page.locator("#open-account").click()
    devices = alice.page.locator("#device-list li")
    expect(devices).to_have_count(2)
    expect(alice.page.locator("#device-list li.current")).to_have_count(1)
    other = alice.page.locator("#device-list li:not(.current)")
    other.get_by_role("button", name="Revoke").click()
    expect(alice.page.locator("#devices-result")).to_have_text(
        "The device was revoked: it receives no new messages."
    )
    expect(devices).to_have_count(1)
    alice.page.locator("#account-close").click()

    bob.send("after the revocation")
    expect(alice.page.locator(".message.theirs .message-text").last).to_have_text(
        "after the revocation", timeout=20_000
    )
    expect(bob.page.locator(".system-line", has_text="alice removed a device")).to_have_count(
        1, timeout=20_000
    )
    # The laptop gets nothing more: give it time to have shown it, then look.
    laptop.page.wait_for_timeout(3_000)
    expect(laptop.page.locator(".message-text", has_text="after the revocation")).to_have_count(0)
    laptop.page.locator("#open-account").click()
    expect(laptop.page.locator("#devices-state")).to_contain_text("removed from your account", timeout=20_000)
    laptop.page.locator("#account-close").click()
    # ... and says so in the conversation, once.
    expect(
        laptop.page.locator(".system-line", has_text="This device was removed from your account")
    ).to_have_count(1)

    stored = server_bytes(server)
    for text in (
        "before the laptop",
        "to both of alice's devices",
        "from the laptop",
        "after the revocation",
    ):
        assert text.encode() not in stored


def test_an_altered_v2_message_is_shown_unverifiable_with_its_reason_and_the_next_one_opens(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = two_in_a_v2_chat(people, "genuine")
    bob.page.close()

    alice.send("altered on the server")
    expect(alice.page.locator(".message.mine .status")).to_have_text([POSTED, " · Sent"])
    # The server (or anyone with its database) flips one bit of the ratchet ciphertext
    # in bob's waiting entry.
    database = server_database(server)
    try:
        rows = database.execute("SELECT user_id, device_id, seq, slot FROM device_inbox").fetchall()
        assert len(rows) == 1
        user_id, device_id, seq, slot_text = rows[0]
        slot = json.loads(slot_text)
        ciphertext = bytearray(base64.b64decode(slot["message"]["ciphertext"]))
        ciphertext[0] ^= 1
        slot["message"]["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
        database.execute(
            "UPDATE device_inbox SET slot = ? WHERE user_id = ? AND device_id = ? AND seq = ?",
            (json.dumps(slot), user_id, device_id, seq),
        )
    finally:
        database.close()

    page = bob.new_page()
    bob.unlock()
    bob.open_chat("alice")
    # Shown, not dropped, and never as valid: the claimed sender and the reason.
    unverifiable = page.locator(".message.unverifiable")
    expect(unverifiable).to_have_count(1, timeout=20_000)
    expect(unverifiable).to_have_attribute("data-reason", "ratchet_failed")
    expect(unverifiable.locator(".message-reason")).to_contain_text("does not decrypt with the session")
    expect(page.locator(".message-text", has_text="altered on the server")).to_have_count(0)
    # Said once on receipt (a receipt bob's page sends meanwhile may already start the new
    # session, which says so in a line of its own).
    expect(
        page.locator(".system-line", has_text="could not be opened; the next message sent to it starts")
    ).to_have_count(1)

    # Bob's next message starts a new session with alice's device, which opens it.
    bob.send("after the altered one")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(
        ["after the altered one"], timeout=20_000
    )
    alice.send("and back")
    expect(page.locator(".message.theirs[data-verified=true] .message-text").last).to_have_text(
        "and back", timeout=20_000
    )

    # Kept across a reload (v2-history.js): the unverifiable item with its reason, in
    # its place among the messages that opened.
    page.reload()
    bob.unlock()
    bob.open_chat("alice")
    expect(page.locator("#message-list .message")).to_have_count(4, timeout=20_000)
    unverifiable = page.locator(".message.unverifiable")
    expect(unverifiable).to_have_attribute("data-reason", "ratchet_failed")
    expect(page.locator(".message[data-verified=true] .message-text")).to_have_text(
        ["genuine", "after the altered one", "and back"]
    )


def test_two_tabs_of_one_profile_send_at_once_without_reusing_a_message_key(
    people: dict[str, Person],
) -> None:
    alice, bob = two_in_a_v2_chat(people, "from the first tab", remember=True)
    bob.open_chat("alice")

    # A second tab of the same profile: the same device, the same stored sessions.
    first = alice.page
    second = alice.context.new_page()
    alice.watch(second)
    second.goto(alice.base_url)
    second.locator("#connection[data-state=online]").wait_for(timeout=30_000)
    second.locator(".conversation-item[data-peer='bob']").click()
    for round_ in range(3):
        boxes = [page.get_by_label("Message", exact=True) for page in (first, second)]
        boxes[0].fill(f"tab one, round {round_}")
        boxes[1].fill(f"tab two, round {round_}")
        # Both at once: each seals under the profile's lock with the state the other stored.
        boxes[0].press("Enter")
        boxes[1].press("Enter")
    expected = {f"tab {tab}, round {n}" for tab in ("one", "two") for n in range(3)} | {"from the first tab"}
    bob_texts = bob.page.locator(".message.theirs[data-verified=true] .message-text")
    expect(bob_texts).to_have_count(len(expected), timeout=30_000)
    assert set(bob_texts.all_inner_texts()) == expected
    expect(bob.page.locator(".message.unverifiable")).to_have_count(0)


def test_a_forged_device_list_is_refused_said_in_the_conversation_and_not_used(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.register()
    switch_on_v2(bob)
    # The server hands out bob's list with one field changed after bob signed it.
    database = server_database(server)
    try:
        (document,) = database.execute(
            "SELECT document FROM device_lists JOIN users ON users.id = device_lists.user_id"
            " WHERE users.username = 'bob'"
        ).fetchone()
        forged = json.loads(document)
        forged["issued_at"] += 1
        database.execute(
            "UPDATE device_lists SET document = ? WHERE user_id = (SELECT id FROM users WHERE username = 'bob')",
            (json.dumps(forged),),
        )
    finally:
        database.close()

    alice.register()
    switch_on_v2(alice)
    posts = v2_posts(alice.page)
    alice.start_chat("bob")
    notice = alice.page.locator(".system-line", has_text="device list failed a security check")
    expect(notice).to_have_count(1, timeout=20_000)
    expect(notice).to_contain_text("not signed by its pinned key")
    # Not used: the message goes as before (v1), and bob reads it.
    alice.send("sent without the forged list")
    expect(alice.page.locator(".message.mine .status")).not_to_have_text([" · Sending…"])
    bob.page.locator(".conversation-item[data-peer='alice']").wait_for(timeout=20_000)
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs[data-verified=true] .message-text")).to_have_text(
        ["sent without the forged list"]
    )
    assert posts == []
    expect(notice).to_have_count(1)


def test_a_forged_copy_of_a_kept_message_does_not_replace_it(
    people: dict[str, Person], server: LiveServer
) -> None:
    """The server delivers bob's device, again, an envelope claiming the id and time of a
    message he already has, with a signature that does not verify: it is shown
    unverifiable beside the genuine one, which stays kept and verified after a reload
    (the refused item was stored over the genuine one before)."""
    alice, bob = two_in_a_v2_chat(people, "hello")
    bob.page.close()
    alice.send("the genuine message")
    expect(alice.page.locator(".message.mine .status")).to_have_text([POSTED, " · Sent"])
    database = server_database(server)
    try:
        (entry,) = database.execute(
            "SELECT device_inbox.user_id, device_inbox.device_id, message_pk, slot, envelope FROM device_inbox"
            " JOIN v2_messages ON v2_messages.id = device_inbox.message_pk"
        ).fetchall()
    finally:
        database.close()
    bob_id, bob_device, pk, slot, envelope_text = entry
    page = bob.new_page()
    bob.unlock()
    bob.open_chat("alice")
    expect(page.locator(".message.theirs .message-text")).to_have_text(
        ["hello", "the genuine message"], timeout=20_000
    )
    # What a server can make: the same envelope, id and time, with a signature of its own.
    forged = {**json.loads(envelope_text), "signature": base64.b64encode(bytes(64)).decode()}
    database = server_database(server)
    try:
        database.execute(
            "UPDATE v2_messages SET envelope = ?, body_deleted_at = NULL WHERE id = ?",
            (json.dumps(forged), pk),
        )
        (head,) = database.execute(
            "SELECT inbox_head FROM devices WHERE user_id = ? AND device_id = ?", (bob_id, bob_device)
        ).fetchone()
        database.execute(
            "INSERT INTO device_inbox (user_id, device_id, seq, message_pk, slot, created_at) VALUES (?, ?, ?, ?, ?, 0)",
            (bob_id, bob_device, head + 1, pk, slot),
        )
        database.execute(
            "UPDATE devices SET inbox_head = ? WHERE user_id = ? AND device_id = ?",
            (head + 1, bob_id, bob_device),
        )
    finally:
        database.close()
    for _ in range(2):
        page.reload()
        bob.unlock()
        bob.open_chat("alice")
        unverifiable = page.locator(".message.unverifiable")
        expect(unverifiable).to_have_count(1, timeout=20_000)
        expect(unverifiable).to_have_attribute("data-reason", "bad_signature")
        expect(page.locator(".message.theirs:not(.unverifiable) .message-text")).to_have_text(
            ["hello", "the genuine message"]
        )
