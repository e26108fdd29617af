"""Screenshots of each main screen at desktop and phone width, into build/screenshots/
(ignored), or docs/screenshots/ (linked from the README) when run by
`scripts/screenshots`. The test fails if a screen cannot be reached or a picture is
not written; whether they look right is for a person to judge."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import LiveServer
from .conftest import DESKTOP, PHONE, SCREENSHOTS, MakeTerminal, Person
from .test_trust import deliver_raw, substitute_keys

CONVERSATION = [
    ("alice", "Hi Bob! Did the keys from the onboarding arrive?"),
    ("bob", "Yes, thanks. I compared our safety number on the call this morning."),
    ("alice", "Great. The release notes draft is in the shared folder."),
    ("bob", "Reading it now."),
]


def shoot(page: Page, name: str, taken: list[Path]) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path))
        taken.append(path)
    page.set_viewport_size(DESKTOP)


def test_screenshots_of_each_main_screen(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    alice, bob = people["alice"], people["bob"]
    page = bob.page

    page.locator("#login-form").wait_for()
    shoot(page, "login", taken)
    page.get_by_role("tab", name="Create account").click()
    page.locator("#register-username").fill("bob")
    page.locator("#register-password").fill(bob.password)
    page.locator("#register-confirm").fill(bob.password)
    shoot(page, "register", taken)
    page.locator("#register-form").get_by_role("button", name="Create account").click()
    bob.wait_chat()

    alice.register()
    carol = terminal("carol")
    carol.run(carol.messenger.send_text("bob", "Lunch on Friday?"))
    # One message that a server altered, to show how an unverifiable message looks.
    envelope = carol.run(carol.messenger.seal_text("bob", "altered"))
    wire = envelope.to_wire()
    ciphertext = bytearray(base64.b64decode(wire["ciphertext"]))
    ciphertext[-1] ^= 1
    wire["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    deliver_raw(server, "carol", "bob", envelope.header.message_id, json.dumps(wire))

    alice.start_chat("bob")
    for sender, text in CONVERSATION:
        person = alice if sender == "alice" else bob
        if person is bob and not page.locator("#conversation-title", has_text="alice").is_visible():
            bob.open_chat("alice")
        person.send(text)
    expect(alice.page.locator(".message.mine .status").first).to_have_text(" · Read")
    page.locator("#message-list").click()
    shoot(page, "chat", taken)

    # Phone: the list on its own.
    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="Back to conversations").click()
    path = SCREENSHOTS / "conversations-phone.png"
    page.screenshot(path=str(path))
    taken.append(path)
    page.set_viewport_size(DESKTOP)

    page.reload()
    bob.unlock()
    bob.open_chat("carol")
    expect(page.locator(".message.unverifiable")).to_have_count(1)
    shoot(page, "unverifiable", taken)

    bob.open_chat("alice")
    page.get_by_role("button", name="Safety number").click()
    expect(page.locator("#safety-number")).not_to_be_empty()
    shoot(page, "safety-number", taken)
    page.locator("#contact-dialog").get_by_role("button", name="Close").click()

    page.get_by_role("button", name="Account and sessions").click()
    expect(page.locator("#session-list li")).to_have_count(1)
    shoot(page, "account", taken)
    page.locator("#account-close").click()

    substitute_keys(server, "alice")
    page.get_by_label("Message", exact=True).fill("Are you there?")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator("#key-change-banner")).to_be_visible()
    shoot(page, "key-change", taken)

    assert len(taken) == 15
    for path in taken:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000, path


def test_screenshots_of_a_group(people: dict[str, Person], terminal: MakeTerminal) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    carol, dave = terminal("carol"), terminal("dave")
    page = alice.page
    page.get_by_role("button", name="New group").click()
    page.get_by_label("Group name").fill("Release team")
    page.get_by_label("Members", exact=True).fill("bob, carol")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#conversation-title")).to_have_text("Release team")
    group_id = page.locator(".conversation-item[aria-current='true']").get_attribute("data-group")
    assert group_id is not None
    carol.run(carol.messenger.sync_inbox())
    bob.page.locator(".conversation-item[data-group]").click()
    expect(bob.page.locator("#conversation-title")).to_have_text("Release team")

    alice.send("Welcome to the release team! Version 1.4 ships on Thursday.")
    expect(bob.page.locator(".message.theirs")).to_have_count(1)
    carol.run(carol.messenger.send_text(group_id, "Thanks! The changelog is ready for review."))
    expect(bob.page.locator(".message.theirs")).to_have_count(2)
    bob.send("Great, I will read it this afternoon.")
    page.get_by_role("button", name="Group details").first.click()
    page.get_by_label("Add members (usernames)").fill("dave")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#group-members li")).to_have_count(4)
    page.locator("#group-close").click()
    dave.run(dave.messenger.sync_inbox())
    dave.run(dave.messenger.send_text(group_id, "Build 1.4.0 passed all checks."))
    expect(bob.page.locator(".message.theirs")).to_have_count(3)
    carol.run(carol.messenger.sync_inbox())
    # Delivered (or read): every other member has it (dave joined after it was sent).
    expect(alice.page.locator(".message.mine .status").first).to_have_text(re.compile(" · (Delivered|Read)"))
    bob.page.locator("#message-list").click()
    shoot(bob.page, "group-chat", taken)

    page.get_by_role("button", name="Group details").first.click()
    page.get_by_label("Valid for (hours)").fill("24")
    page.get_by_label("Uses").fill("3")
    page.get_by_role("button", name="Make invite code").click()
    expect(page.locator("#invite-code")).not_to_be_empty()
    page.locator("#group-dialog-result").evaluate("(node) => { node.textContent = ''; }")
    shoot(page, "group-details", taken)

    assert len(taken) == 4
    for path in taken:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000, path
