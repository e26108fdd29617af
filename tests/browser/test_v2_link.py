"""Linking a browser device to the history (PROTOCOL.md 15.10.2): a second profile of
alice, new in her device list, shows its link code in the Devices section; a typo and the
first profile's own code are refused there with nothing sent; the right code hands the
tablet the messages the first profile keeps, which it then shows in the conversation."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ..conftest import LiveServer
from .conftest import Person
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
