"""Identity-key rotation between the terminal client and the browser app (PROTOCOL.md
15.11): terminal dave rotates his key; browser carol follows the signed hand-over, is
told in the conversation, loses her verified mark for dave (the safety number changes)
and keeps messaging him in v2 both ways. A hand-over the server withholds moves nothing:
carol's pin and verified mark stay (negative case first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from securechat.client.v2.rotation import rotated_notice

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person
from .terminal import TerminalUser
from .v2_support import switch_on_v2


def start(people: dict[str, Person], terminal: MakeTerminal) -> tuple[Person, Any]:
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    dave = terminal("dave")
    dave.run(dave.messenger.enable_v2())
    dave.run(dave.messenger.send_text("carol", "before the rotation"))
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["before the rotation"])
    carol.page.get_by_role("button", name="Safety number").click()
    carol.page.get_by_role("button", name="Mark as verified").click()
    expect(carol.page.locator("#contact-status")).to_have_text("You have verified this contact.")
    carol.page.locator("#contact-dialog").get_by_role("button", name="Close").click()
    expect(carol.page.locator("#conversation-verified")).to_be_visible()
    return carol, dave


def test_a_withheld_hand_over_moves_nothing_in_the_browser(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    carol, dave = start(people, terminal)
    number = carol.safety_number()
    # The server answers carol with no chain from her pin: an unsigned change.
    carol.page.route(
        "**/identity-transitions?*",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body='{"username": "dave", "current_key": null, "transitions": [], "more": false}',
        ),
    )
    dave.run(dave.messenger.v2.rotate_identity())
    dave.run(dave.messenger.send_text("carol", "after the rotation, unseen"))
    expect(carol.page.locator(".system-line", has_text="failed a security check")).to_have_count(
        1, timeout=20_000
    )
    expect(carol.page.locator(".system-line", has_text=rotated_notice("dave"))).to_have_count(0)
    expect(carol.page.locator("#conversation-verified")).to_be_visible()
    assert carol.safety_number() == number
    # dave's message under the key carol did not accept is not shown as verified.
    assert "after the rotation, unseen" not in carol.texts()


def test_browser_follows_a_terminal_rotation_and_both_keep_messaging(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    carol, dave = start(people, terminal)
    number = carol.safety_number()
    done = dave.run(dave.messenger.v2.rotate_identity())
    assert done.new_key != done.old_key

    dave.run(dave.messenger.send_text("carol", "after the rotation"))
    theirs = carol.page.locator(".message.theirs .message-text")
    expect(theirs.last).to_have_text("after the rotation", timeout=20_000)
    assert carol.messages()[-1]["verified"]
    expect(carol.page.locator(".system-line", has_text=rotated_notice("dave"))).to_have_count(1)
    # The verified mark belonged to the old key: gone, and the safety number changed.
    expect(carol.page.locator("#conversation-verified")).to_be_hidden()
    assert carol.safety_number() != number

    carol.send("to dave's new key")
    expect(carol.page.locator(".message.mine .status").last).to_have_text(" · Sent", timeout=20_000)
    items = [i for i in dave.run(dave.messenger.sync_v2()) if i.kind == "message"]
    assert [(i.sender, i.text, i.verified) for i in items][-1:] == [("carol", "to dave's new key", True)]


def test_browser_rotates_and_the_terminal_follows(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer, tmp_path: Path
) -> None:
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    dave = terminal("dave")
    dave.run(dave.messenger.enable_v2())
    dave.run(dave.messenger.send_text("carol", "hello carol"))
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["hello carol"])

    page = carol.page
    page.locator("#open-account").click()
    page.locator("#rotate-password").fill("not my password at all")
    page.locator("#rotate-identity").click()
    expect(page.locator("#rotate-result")).to_have_text("The password is not right.", timeout=30_000)
    page.locator("#rotate-password").fill(carol.password)
    page.locator("#rotate-identity").click()
    expect(page.locator("#rotate-result")).to_contain_text("Identity key replaced", timeout=30_000)
    page.locator("#account-close").click()

    sent = dave.run(dave.messenger.send_text("carol", "after your rotation"))
    assert [n["text"] for n in sent.get("notices", [])] == [rotated_notice("carol")]
    expect(page.locator(".message.theirs .message-text").last).to_have_text(
        "after your rotation", timeout=20_000
    )
    assert carol.messages()[-1]["verified"]
    carol.send("from my new key")
    expect(page.locator(".message.mine .status").last).to_have_text(" · Sent", timeout=20_000)
    items = [i for i in dave.run(dave.messenger.sync_v2()) if i.kind == "message"]
    assert [(i.sender, i.text, i.verified) for i in items][-1:] == [("carol", "from my new key", True)]

    # A password change in the browser seals the rotated key again under the new one; a
    # terminal login of carol then opens it and certifies its own device with it.
    new_password = "a fresh passphrase, eleven 31"
    page.locator("#open-account").click()
    page.locator("#password-current").fill(carol.password)
    page.locator("#password-new").fill(new_password)
    page.locator("#password-repeat").fill(new_password)
    page.locator("#password-form").get_by_role("button", name="Change password").click()
    expect(page.locator("#password-result")).to_contain_text("Password changed.", timeout=30_000)
    page.locator("#account-close").click()
    home = TerminalUser(tmp_path / "carol-terminal", server.url)
    try:
        home.run(home.messenger.login("carol", new_password))
        home.run(home.messenger.enable_v2())
        listed = home.call(lambda: home.messenger.v2.directory.accepted("carol"))
        assert listed is not None and len(listed.devices) == 2
        v1_key = home.call(
            lambda: home.messenger.v2.directory.contacts.pinned_identity("carol").signing_key[-32:]
        )
        assert listed.account_key != v1_key
    finally:
        home.close()
