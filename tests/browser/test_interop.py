"""A browser user and a terminal-client user chat both ways; each side verifies the
other's messages, and both compute the same safety number."""

from __future__ import annotations

from playwright.sync_api import expect

from securechat.protocol.keys import format_safety_number, safety_number

from .conftest import MakeTerminal, Person


def test_browser_and_terminal_client_chat_both_ways(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    carol = people["carol"]
    carol.register()
    dave = terminal("dave")

    # Terminal -> browser.
    dave.run(dave.messenger.send_text("carol", "from the terminal: ünïcödé ✓"))
    carol.open_chat("dave")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["from the terminal: ünïcödé ✓"])
    assert carol.messages()[0]["verified"]

    # Browser -> terminal.
    carol.send("from the browser\nwith two lines")
    items = [i for i in dave.run(dave.messenger.sync_inbox()) if i.kind == "message" and i.sender != "dave"]
    assert [(i.sender, i.text, i.verified) for i in items] == [
        ("carol", "from the browser\nwith two lines", True)
    ]

    # The terminal's acknowledgement reaches the browser as a receipt.
    expect(carol.page.locator(".message.mine .status")).to_have_text([" · Delivered"])

    # Same safety number on both sides.
    me = dave.messenger.identity
    assert me is not None
    pinned = dave.call(dave.messenger.pinned_identity, "carol")
    assert pinned is not None
    expected = format_safety_number(safety_number(me.public, pinned))
    assert carol.safety_number() == expected
