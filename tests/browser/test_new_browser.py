"""A fresh browser profile (a new device of the account) as a person meets it after
logging in: groups carry their signed names, or a name of who is in them until an admin
has sent one; a group's timeline is in order and the list shows its newest message;
conversations with messages no device of the account has received show them as unread
(issue 16, defects 1 to 3). Names only ever come from an admin's signed group_info."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Locator, expect

from .conftest import DESKTOP, WATCH_SCRIPT, MakeTerminal, Person
from .test_groups import close_details, create_group, group_item, open_details, open_group, send


@contextmanager
def new_browser(person: Person) -> Iterator[Person]:
    """The same account in a new browser profile: nothing of the first one is there."""
    browser = person.context.browser
    assert browser is not None
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(WATCH_SCRIPT)
    other = Person(person.name, context, context.new_page(), person.base_url)
    other.watch(other.page)
    other.page.goto(person.base_url)
    try:
        yield other
        assert not other.problems, other.problems
    finally:
        context.close()


def items(person: Person) -> Locator:
    """Every item of the open conversation (messages and lines), in the order shown."""
    return person.page.locator("#message-list > li:not(.history-more)")


def invite_code(person: Person) -> str:
    dialog = open_details(person)
    dialog.get_by_label("Valid for (hours)").fill("2")
    dialog.get_by_label("Uses").fill("1")
    code_node = dialog.locator("#invite-code")
    shown_before = code_node.inner_text()
    dialog.get_by_role("button", name="Make invite code").click()
    expect(code_node).to_have_text(re.compile(r"\.[0-9a-f]{32}$"))
    expect(code_node).not_to_have_text(shown_before)
    code = code_node.inner_text()
    close_details(person)
    return code


def join(person: Person, code: str) -> None:
    page = person.page
    page.get_by_role("button", name="Join with code").click()
    page.get_by_label("Invite code").fill(code)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.locator("#join-dialog")).to_be_hidden()


def test_a_new_browser_shows_a_groups_timeline_in_order_and_its_newest_message(
    people: dict[str, Person],
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    group_id = create_group(alice, "Beta", ["bob"])
    send(alice, "hello beta")
    bob.page.close()

    with new_browser(bob) as laptop:
        laptop.login()
        page = laptop.page
        item = page.locator(f".conversation-item[data-group='{group_id}']")
        # The list shows the group's newest message, not a membership line.
        expect(item.locator(".conversation-preview")).to_have_text("alice: hello beta")
        # The timeline is in order: the group was created and named before anyone wrote.
        item.click()
        expected = [
            re.compile("^alice created the group with bob"),
            re.compile("^alice named the group “Beta”"),
            re.compile("hello beta"),
        ]
        expect(items(laptop)).to_have_text(expected)
        # After a reload too.
        page.reload()
        laptop.unlock()
        expect(item.locator(".conversation-preview")).to_have_text("alice: hello beta")
        item.click()
        expect(items(laptop)).to_have_text(expected)


def test_a_new_browser_shows_group_names_from_the_history(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    dave = terminal("dave")
    alpha = create_group(alice, "Alpha", ["bob", "dave"])
    create_group(alice, "Beta", ["bob"])
    send(alice, "hello beta")
    # More than a page of history after Alpha's name: a new device looks further back.
    dave.run(dave.messenger.sync_inbox())
    for number in range(55):
        dave.run(dave.messenger.send_text(alpha, f"dave {number}"))
    bob.page.close()

    with new_browser(bob) as laptop:
        laptop.login()
        page = laptop.page
        # The names come from alice's signed group_info messages in the history.
        expect(group_item(page, "Alpha")).to_be_visible()
        expect(group_item(page, "Beta")).to_be_visible()
        expect(page.locator(".conversation-title", has_text="Unnamed group")).to_have_count(0)
        expect(group_item(page, "Alpha").locator(".conversation-preview")).to_have_text("dave: dave 54")
        # Alpha's name was two pages back: the whole history was read for it, in order.
        open_group(laptop, "Alpha")
        expect(items(laptop)).to_have_count(2 + 55)
        expect(items(laptop).first).to_have_text(re.compile("^alice created the group with bob, dave"))
        expect(items(laptop).nth(1)).to_have_text(re.compile("^alice named the group “Alpha”"))
        expect(items(laptop).last).to_contain_text("dave 54")
        # After a reload the names are kept.
        page.reload()
        laptop.unlock()
        expect(group_item(page, "Alpha")).to_be_visible()
        expect(group_item(page, "Beta")).to_be_visible()


def test_a_joiner_tells_groups_apart_until_an_admin_device_sends_the_name(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    alice, carol = people["alice"], people["carol"]
    alice.register()
    carol.register()
    terminal("dave")
    terminal("erin")
    create_group(alice, "Alpha", ["dave"])
    alpha_code = invite_code(alice)
    create_group(alice, "Beta", ["erin"])
    beta_code = invite_code(alice)
    # No client of the group's only admin runs while carol joins.
    alice.page.close()

    join(carol, alpha_code)
    join(carol, beta_code)
    page = carol.page
    # Until an admin names them, the groups are told apart by who is in them.
    titles = page.locator(".conversation-item[data-group] .conversation-title")
    expect(titles).to_have_count(2)
    expect(titles).to_have_text(["Group with alice and erin", "Group with alice and dave"])
    expect(page.locator(".conversation-title", has_text="Unnamed group")).to_have_count(0)
    expect(page.locator("#conversation-title")).to_have_text("Group with alice and erin")

    # Alice logs in on a new browser: it learns the names from the history and, seeing
    # that carol joined after they were sent, tells the group again.
    with new_browser(alice) as laptop:
        laptop.login()
        expect(group_item(laptop.page, "Alpha")).to_be_visible()
        expect(group_item(laptop.page, "Beta")).to_be_visible()
        expect(group_item(page, "Alpha")).to_be_visible()
        expect(group_item(page, "Beta")).to_be_visible()
        expect(page.locator("#conversation-title")).to_have_text("Beta")
        open_group(carol, "Alpha")
        expect(page.locator("#message-list .system-line").last).to_have_text(
            re.compile("^alice named the group “Alpha”")
        )


def test_a_new_browser_shows_what_no_device_received_as_unread(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    dave = terminal("dave")
    create_group(alice, "Seen", ["bob"])
    send(alice, "bob has this")
    # Bob's page has it: its signed receipt follows the acknowledgement.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Delivered"])
    # Bob's only browser is closed (not logged out); then the others write.
    bob.page.close()
    create_group(alice, "Missed", ["bob"])
    send(alice, "one")
    send(alice, "two")
    dave.run(dave.messenger.send_text("bob", "from the terminal"))

    with new_browser(bob) as laptop:
        laptop.login()
        page = laptop.page
        missed = group_item(page, "Missed")
        expect(missed.locator(".unread")).to_have_text("2")
        expect(page.locator(".conversation-item[data-peer='dave'] .unread")).to_have_text("1")
        expect(group_item(page, "Seen")).to_be_visible()
        expect(group_item(page, "Seen").locator(".unread")).to_have_count(0)
        expect(page).to_have_title("(3) SecureChat")
        open_group(laptop, "Missed")
        expect(page.locator(".message .message-text")).to_have_text(["one", "two"])
        expect(missed.locator(".unread")).to_have_count(0)
        # Alice sees that bob has them, and has read them.
        expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read", " · Read"])
