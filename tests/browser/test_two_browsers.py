"""Two people in two browser profiles: register, chat in real time both ways, offline
delivery in order, equal safety numbers, and a reload that keeps the conversation."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import Person


def test_register_chat_offline_delivery_safety_numbers_and_reload(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()

    alice.start_chat("bob")
    alice.send("hello bob")
    # Bob is online: the conversation appears, with one unread message, without a reload.
    bob_item = bob.page.locator(".conversation-item[data-peer='alice']")
    expect(bob_item.locator(".unread")).to_have_text("1")
    expect(bob_item.locator(".conversation-preview")).to_have_text("hello bob")
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["hello bob"])
    assert bob.texts() == ["hello bob"]
    expect(bob_item.locator(".unread")).to_have_count(0)

    bob.send("hi alice")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["hi alice"])
    # Bob has alice's message on screen, so it shows as read.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read"])
    assert all(m["verified"] for m in alice.messages() + bob.messages())

    # Both see the same safety number, and it is 60 digits.
    alice_number, bob_number = alice.safety_number(), bob.safety_number()
    assert alice_number == bob_number
    assert len(alice_number.replace(" ", "")) == 60 and alice_number.replace(" ", "").isdigit()

    # Bob closes his page; alice sends three messages; bob logs in again and sees them in order.
    bob.page.close()
    for text in ("one", "two", "three"):
        alice.send(text)
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read"] + [" · Sent"] * 3)
    page = bob.new_page()
    # Not remembered: the keys went with the page, the session did not; the password unlocks.
    expect(page.locator("#unlock-username")).to_have_text("bob")
    bob.unlock()
    item = page.locator(".conversation-item[data-peer='alice']")
    expect(item.locator(".unread")).to_have_text("3")
    bob.open_chat("alice")
    expect(page.locator(".message .message-text")).to_have_text(
        ["hello bob", "hi alice", "one", "two", "three"]
    )
    assert all(m["verified"] for m in bob.messages())
    # Opening the conversation showed them: alice sees all four read.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read"] * 4)

    # Real time still works after coming back.
    alice.send("welcome back")
    expect(page.locator(".message.theirs .message-text").last).to_have_text("welcome back")

    # Bob on a second device (a new profile) logs in with his password. It is a new v2
    # device: the messages before it existed were sealed for his other device only
    # (forward secrecy, PROTOCOL.md 15.10), so it has none of them and says where they are;
    # what alice sends from now on reaches both.
    laptop = Person("bob", bob.context.browser.new_context(), page, bob.base_url)  # type: ignore[union-attr]
    try:
        laptop.new_page()
        laptop.login()
        laptop.open_chat("alice")
        expect(laptop.page.locator(".system-line", has_text="new device of your account")).to_have_count(1)
        assert laptop.texts() == []
        alice.send("to both of bob's devices")
        expect(laptop.page.locator(".message .message-text")).to_have_text(["to both of bob's devices"])
        expect(page.locator(".message.theirs .message-text").last).to_have_text("to both of bob's devices")
        assert all(m["verified"] for m in laptop.messages())
        assert not laptop.problems, laptop.problems
    finally:
        laptop.context.close()


def test_reload_keeps_the_conversation(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register(remember=True)
    bob.register()
    alice.start_chat("bob")
    alice.send("before the reload")
    bob.open_chat("alice")
    bob.send("reply before the reload")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["reply before the reload"])

    # Remembered device: a reload goes straight back to the chat, no password.
    alice.page.reload()
    alice.wait_chat()
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(
        ["before the reload", "reply before the reload"]
    )
    assert all(m["verified"] for m in alice.messages())
    bob.send("after alice reloaded")
    expect(alice.page.locator(".message.theirs .message-text").last).to_have_text("after alice reloaded")

    # Not remembered: the session survives a reload, the keys do not; the password unlocks them.
    bob.page.reload()
    expect(bob.page.locator("#unlock-form")).to_be_visible()
    expect(bob.page.locator("#unlock-username")).to_have_text("bob")
    bob.unlock()
    bob.open_chat("alice")
    expect(bob.page.locator(".message .message-text")).to_have_text(
        ["before the reload", "reply before the reload", "after alice reloaded"]
    )
