"""Protocol v2 between the browser app and the terminal client library (both with a v2
device): each opens what the other sealed, both ways, through the per-device inboxes,
and the server keeps no plaintext."""

from __future__ import annotations

from playwright.sync_api import expect

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person
from .test_v2_browsers import server_bytes, switch_on_v2, v2_posts


def test_browser_and_terminal_client_exchange_v2_messages(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    posts = v2_posts(carol.page)
    dave = terminal("dave")
    dave.run(dave.messenger.enable_v2())

    # Terminal -> browser, in v2: the browser's device opens it (a setup from its bundle).
    sent = dave.run(dave.messenger.send_text("carol", "v2 from the terminal: ünïcödé ✓"))
    assert sent["devices"] == 1  # POST /v2/messages's answer: one inbox entry, carol's device
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(
        ["v2 from the terminal: ünïcödé ✓"]
    )
    assert carol.messages()[0]["verified"]

    # Browser -> terminal, in v2, on the session the terminal set up.
    carol.send("v2 from the browser\nwith two lines")
    expect(carol.page.locator(".message.mine .status")).to_have_text([" · Sent"])
    items = [i for i in dave.run(dave.messenger.sync_v2()) if i.kind == "message"]
    assert [(i.sender, i.text, i.verified) for i in items] == [
        ("carol", "v2 from the browser\nwith two lines", True)
    ]

    # A second round both ways on the established sessions.
    assert "devices" in dave.run(dave.messenger.send_text("carol", "second from the terminal"))
    expect(carol.page.locator(".message.theirs .message-text").last).to_have_text("second from the terminal")
    carol.send("second from the browser")
    expect(carol.page.locator(".message.mine .status")).to_have_text([" · Sent", " · Sent"])
    items = [i for i in dave.run(dave.messenger.sync_v2()) if i.kind == "message"]
    assert [(i.sender, i.text, i.verified) for i in items] == [("carol", "second from the browser", True)]

    assert len(posts) == 2
    stored = server_bytes(server)
    for text in (
        "v2 from the terminal",
        "v2 from the browser",
        "second from the terminal",
        "second from the browser",
    ):
        assert text.encode() not in stored
