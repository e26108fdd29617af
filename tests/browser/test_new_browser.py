"""A fresh browser profile (a new device of the account) as a person meets it after
logging in: a group's timeline is in order and the list shows its newest message
(issue 16, defect 2)."""

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
