"""Linking a browser device to the history (PROTOCOL.md 15.10.2): a second profile of
alice, new in her device list, shows its link code in the Devices section; a typo and the
first profile's own code are refused there with nothing sent; the right code hands the
tablet the messages the first profile keeps, which it then shows in the conversation; and a
browser hands its history to a terminal home the same way."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from securechat.client.v2.client import now_ms
from securechat.client.v2.link import own_link_code

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
