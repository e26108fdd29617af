"""Typing indicators and read receipts in the browser: shown live in a direct chat and in
a group (also to and from a terminal-client user), and each switch in the account panel
really stops what it says."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import MakeTerminal, Person


def set_switch(person: Person, label: str, on: bool) -> None:
    page = person.page
    page.get_by_role("button", name="Account and sessions").click()
    box = page.get_by_label(label)
    if box.is_checked() != on:
        box.click()
    expect(box).to_be_checked(checked=on)
    page.locator("#account-dialog").get_by_role("button", name="Close").click()


def type_without_sending(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).press_sequentially(text, delay=20)


def test_typing_and_read_receipts_in_a_direct_chat(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    alice.start_chat("bob")
    alice.send("are you there?")
    bob.open_chat("alice")

    # Bob has the message on screen: alice's copy turns to Read.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read"], timeout=15_000)
    # Bob types: alice sees it, and it goes when his message arrives.
    type_without_sending(bob.page, "yes, one m")
    indicator = alice.page.locator("#typing-indicator")
    expect(indicator).to_have_text("bob is typing…", timeout=10_000)
    bob.page.get_by_label("Message", exact=True).press("Enter")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["yes, one m"])
    expect(indicator).to_have_text("")

    # Bob turns both off: alice's next message stays Delivered, and his typing is not shown.
    set_switch(bob, "Tell senders when I have read their messages", False)
    set_switch(bob, "Show others when I am typing", False)
    alice.send("and now?")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["are you there?", "and now?"])
    expect(alice.page.locator(".message.mine .status").last).to_have_text(" · Delivered")
    type_without_sending(bob.page, "quiet")
    alice.page.wait_for_timeout(2000)
    expect(indicator).to_have_text("")
    expect(alice.page.locator(".message.mine .status").last).to_have_text(" · Delivered")
    # The switches are kept on this device.
    bob.page.reload()
    bob.unlock()
    bob.page.get_by_role("button", name="Account and sessions").click()
    expect(bob.page.get_by_label("Tell senders when I have read their messages")).not_to_be_checked()
    expect(bob.page.get_by_label("Show others when I am typing")).not_to_be_checked()


def test_typing_in_a_group_reaches_browsers_and_the_terminal(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    dave = terminal("dave")
    group_id = dave.run(dave.messenger.groups.create("Typists", ["alice", "bob"]))
    alice.page.locator(f".conversation-item[data-group='{group_id}']").click()
    bob.page.locator(f".conversation-item[data-group='{group_id}']").click()

    from securechat.client.realtime import InboxSocket

    socket = InboxSocket(dave.messenger)
    dave.run(socket.connect())
    try:
        type_without_sending(alice.page, "hello every")
        expect(bob.page.locator("#typing-indicator")).to_have_text("alice is typing…", timeout=10_000)

        async def typing_item():  # type: ignore[no-untyped-def]
            async for item in socket.items():
                if item.kind == "typing":
                    return item
            return None

        item = dave.run(typing_item())
        assert (item.sender, item.conversation_id) == ("alice", group_id)
        dave.run(socket.typing(group_id))
        expect(alice.page.locator("#typing-indicator")).to_have_text("dave is typing…", timeout=10_000)
    finally:
        dave.run(socket.close())
