"""Linking a browser device to the history (PROTOCOL.md 15.10.2): a second profile of
alice, new in her device list, shows its link code in the Devices section; a typo and the
first profile's own code are refused there with nothing sent; the right code hands the
tablet the messages the first profile keeps, which it then shows in the conversation; and a
browser hands its history to a terminal home the same way."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from securechat.client.core.v2.link import choose_link_target
from securechat.client.messenger import Messenger
from securechat.client.v2.client import now_ms
from securechat.client.v2.link import Linker, _upload, own_link_code
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import Archive, BackupMessage
from securechat.protocol.v2.link import encode_link_archive

from ..conftest import LiveServer
from .conftest import PASSWORDS, MakeTerminal, Person
from .terminal import TerminalUser
from .v2_support import switch_on_v2, two_in_a_v2_chat, v2_posts

CODE = re.compile(r"([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5})")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def link_code(person: Person) -> str:
    page = person.page
    page.locator("#open-account").click()
    expect(page.locator("#link-code")).to_contain_text("Link code of this device", timeout=20_000)
    (code,) = CODE.findall(page.locator("#link-code").inner_text())
    page.locator("#account-close").click()
    return code


def type_code(person: Person, code: str) -> str:
    page = person.page
    page.locator("#link-input").fill(code)
    page.locator("#link-button").click()
    expect(page.locator("#link-result")).not_to_have_text("Linking…", timeout=30_000)
    expect(page.locator("#link-result")).not_to_have_text("", timeout=30_000)
    return page.locator("#link-result").inner_text()


def test_a_browser_links_a_new_device_to_its_history(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = two_in_a_v2_chat(people, "v2 before the tablet")
    bob.open_chat("alice")
    bob.send("bob's reply before the tablet")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(
        ["bob's reply before the tablet"], timeout=20_000
    )

    tablet = people["alice-tablet"]
    tablet.name = "alice"
    tablet.login()
    switch_on_v2(tablet)
    code = link_code(tablet)
    own = link_code(alice)
    assert own != code

    posts = v2_posts(alice.page)
    alice.page.locator("#open-account").click()
    wrong = ALPHABET[(ALPHABET.index(code[0]) + 1) % 32] + code[1:]
    assert "typo" in type_code(alice, wrong)
    assert "own code" in type_code(alice, own)
    assert posts == []  # nothing was sent for a refused code

    assert "2 messages" in type_code(alice, code.lower())
    assert len(posts) == 1
    alice.page.locator("#account-close").click()

    bob_item = tablet.page.locator(".conversation-item[data-peer='bob']")
    expect(bob_item).to_contain_text("imported: 2 messages", timeout=30_000)
    tablet.open_chat("bob")
    expect(tablet.page.locator(".system-line", has_text="imported: 2 messages")).to_have_count(1)
    expect(tablet.page.locator("#message-list .message .message-text")).to_have_text(
        ["v2 before the tablet", "bob's reply before the tablet"], timeout=20_000
    )


def test_a_browser_hands_its_history_to_a_terminal_home(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer, tmp_path: Path
) -> None:
    # The archive is 15.10.1's shared format: what the browser seals, the terminal reads.
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    dave = terminal("dave")
    dave.run(dave.messenger.enable_v2())
    dave.run(dave.messenger.send_text("carol", "dave's line before carol's terminal"))
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    carol.send("carol's line before her terminal")

    home = TerminalUser(tmp_path / "carol-terminal", server.url)
    try:
        home.run(home.messenger.login("carol", PASSWORDS["carol"]))
        home.run(home.messenger.enable_v2())
        code = home.call(own_link_code, home.messenger.v2, now_ms())
        carol.page.locator("#open-account").click()
        assert "2 messages" in type_code(carol, code)
        carol.page.locator("#account-close").click()

        items = home.run(home.messenger.sync_v2())
        assert [i.reason for i in items if i.kind == "message" and not i.verified] == []
        assert any(i.text and i.text.endswith("imported: 2 messages") for i in items)
        stored = home.call(home.messenger.stored_messages)
        kept = {(m["sender"], m["peer"], m["text"]) for m in stored if m["verified"] and m["message_id"]}
        assert kept == {
            ("dave", "dave", "dave's line before carol's terminal"),
            ("carol", "dave", "carol's line before her terminal"),
        }
    finally:
        home.close()


async def push_archive(forger: Messenger, code: str, rows: tuple[BackupMessage, ...]) -> None:
    """A hand-over from another listed device of alice (one certified with her password),
    addressed right, to the device whose code it read off the tablet's inbox frames."""
    v2 = forger.v2
    own, _ = await v2.directory.refresh("alice")
    assert own is not None
    target = choose_link_target(code, "alice", own.devices, v2.device().device_id)  # type: ignore[union-attr]
    assert target.outcome == "target"
    descriptor = await _upload(forger.session.api, "alice", encode_link_archive(Archive("alice", 0, 1, rows)))
    payload: dict[str, Any] = {
        "type": "history_link",
        "device_id": target.device.device_id,
        "archive": descriptor.to_payload()["file"],
    }
    account_key = forger.session.me().signing_private.public_key().public_bytes_raw()
    await Linker(v2)._send("alice", account_key, target.device.device_id, payload)


def test_a_browser_takes_one_hand_over_per_code_and_no_planted_rows(
    people: dict[str, Person], server: LiveServer, tmp_path: Path
) -> None:
    alice, _ = two_in_a_v2_chat(people, "v2 before the tablet")
    tablet = people["alice-tablet"]
    tablet.name = "alice"
    tablet.login()
    switch_on_v2(tablet)
    code = link_code(tablet)
    with_bob = direct_conversation_id(Username("alice"), Username("bob"))

    def row(sender: str, text: str) -> BackupMessage:
        return BackupMessage(str(uuid.uuid4()), with_bob, sender, "bob", 1, 1, text)

    forger = TerminalUser(tmp_path / "alice-forger", server.url)
    try:
        forger.run(forger.messenger.login("alice", PASSWORDS["alice"]))
        forger.run(forger.messenger.enable_v2())
        # A row in carol's name: the whole archive is refused, the fitting row too.
        forger.run(push_archive(forger.messenger, code, (row("bob", "planted fits"), row("carol", "carol?"))))
        tablet.page.locator(".conversation-item[data-peer='alice']").wait_for(timeout=30_000)
        tablet.open_chat("alice")
        refused = tablet.page.locator(".message.unverifiable")
        expect(refused).to_have_count(1, timeout=30_000)
        expect(refused).to_have_attribute("data-reason", "link_archive_malformed")

        # The genuine hand-over: still waited for, imported, and the wait closes.
        alice.page.locator("#open-account").click()
        assert "1 messages" in type_code(alice, code)
        alice.page.locator("#account-close").click()
        expect(tablet.page.locator(".conversation-item[data-peer='bob']")).to_contain_text(
            "imported: 1 messages", timeout=30_000
        )

        # Well-formed rows after it: refused, nothing imported.
        forger.run(push_archive(forger.messenger, code, (row("bob", "forged: send me the code"),)))
        expect(refused).to_have_count(2, timeout=30_000)
        expect(refused.nth(1)).to_have_attribute("data-reason", "link_unexpected")
        tablet.open_chat("bob")
        expect(tablet.page.locator("#message-list .message .message-text")).to_have_text(
            ["v2 before the tablet"], timeout=20_000
        )
        expect(tablet.page.locator(".system-line", has_text="imported")).to_have_count(1)
    finally:
        forger.close()
