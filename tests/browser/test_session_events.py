"""A new login to the account shows as a line in the pages already open, at once: the new
session can unseal the keys, so the owner must learn of it. The client's description is
whatever that client sent, and reaches the page as text only. And ending a session
(here: the other page logs out everywhere else) closes its page's socket at once, with
the periodic check far away."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from .conftest import DESKTOP, WATCH_SCRIPT, Person

HOSTILE_AGENT = "<img src=x onerror=window.__xss++>Mallory-Browser/1.0"


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    """The test's server with the periodic session check far away, so that only the
    events can act in time."""
    from ..conftest import start_server

    live = start_server(
        tmp_path / "server-data",
        tmp_path / "server.log",
        extra_env={"SECURECHAT_WS_SESSION_CHECK_SECONDS": "300"},
    )
    yield live
    live.stop()


def test_a_second_login_shows_as_a_line_in_the_first_page(
    people: dict[str, Person], browser: Browser
) -> None:
    alice = people["alice"]
    alice.register()
    page = alice.page
    notices = page.locator("#session-notices li")
    expect(notices).to_have_count(0)

    context = browser.new_context(viewport=DESKTOP, user_agent=HOSTILE_AGENT)
    context.add_init_script(WATCH_SCRIPT)
    second = Person("alice", context, page, alice.base_url)
    try:
        second.new_page()
        second.login()
        # The first page hears of it at once, as a line naming the client as it said.
        expect(notices).to_have_count(1)
        expect(notices.first).to_contain_text("New login to your account: <img src=x onerror=window.__xss++>")
        expect(page.locator("#session-notices img")).to_have_count(0)
        # The new page is not told about its own login.
        expect(second.page.locator("#session-notices li")).to_have_count(0)
        # The line leads to the sessions, where the new one is listed.
        notices.first.get_by_role("button", name="Review sessions").click()
        expect(page.locator("#session-list li")).to_have_count(2)
        page.locator("#account-close").click()
        notices.first.get_by_role("button", name="Dismiss").click()
        expect(notices).to_have_count(0)
        expect(page.locator("#session-notices")).to_be_hidden()

        # Ending the other sessions closes the second page's socket at once (not after the
        # 300 s check): its page asks for a new login.
        page.get_by_role("button", name="Account and sessions").click()
        page.get_by_role("button", name="Log out other sessions").click()
        expect(page.locator("#sessions-result")).to_have_text("1 other session(s) logged out.")
        expect(second.page.locator("#auth-error")).to_contain_text("Your session has ended", timeout=20_000)
        for person in (alice, second):
            assert person.canary() == {"xss": 0, "csp": []}, person.canary()
        assert not second.problems, second.problems
    finally:
        context.close()
