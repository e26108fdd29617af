"""Two tabs of one profile share one refresh cookie; refreshing in both at once must not
log the user out (issue 12, item 15).

- With Web Locks, tabs take turns: the tab that waited sends the cookie the other tab
  just received, and callers within a tab share one refresh in flight.
- Without Web Locks (a page served over plain http from a non-local address is not a
  secure context, and browsers then withhold ``navigator.locks``), two tabs that spend
  the same cookie at the same moment get the same new pair from the server's grace.
- A refresh whose answer was lost (the connection broke after the server rotated) is
  answered again with the same pair when the page retries within the grace.

Every test ends with both tabs reloaded into the chat: the session outlived it all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from ..api.support import registration_body
from ..conftest import LiveServer, server_database, start_server
from .conftest import Person

REFRESH_PATH = "**/api/v1/auth/refresh"
COOKIE = "securechat_refresh"

# Browsers give pages that are not a secure context no navigator.locks.
WITHOUT_WEB_LOCKS = """
Object.defineProperty(Navigator.prototype, "locks", {get: () => undefined, configurable: true});
"""

# Three callers in this tab ask for a refresh when the test says "go" (on a
# BroadcastChannel, so two tabs start together), through the app's own Api module.
ARM_REFRESHES = """async () => {
  const { Api } = await import("/static/app/api.js");
  const api = new Api();
  const channel = new BroadcastChannel("test-go");
  window.__refreshed = new Promise((resolve) => {
    channel.onmessage = async () => {
      try {
        await Promise.all([api.refresh(), api.refresh(), api.refresh()]);
        resolve({ ok: true, token: api.accessToken });
      } catch (error) {
        resolve({ ok: false, error: String(error && error.code) });
      }
    };
  });
}"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    # A grace long enough that a slow machine's reload still falls inside it.
    live = start_server(
        tmp_path / "server-data",
        tmp_path / "server.log",
        extra_env={"SECURECHAT_REFRESH_REUSE_GRACE_SECONDS": "30"},
    )
    yield live
    live.stop()


def refresh_cookie(person: Person) -> str:
    values = [c["value"] for c in person.context.cookies() if c["name"] == COOKIE]
    assert len(values) == 1, values
    return values[0]


def in_chat(page: Page) -> None:
    page.locator("#chat-screen").wait_for(state="visible", timeout=30_000)
    page.locator("#connection[data-state=online]").wait_for(timeout=15_000)


def both_still_logged_in(first: Page, second: Page) -> None:
    for page in (first, second):
        page.reload()
        in_chat(page)
        expect(page.locator("#login-form")).to_be_hidden()


def test_two_tabs_take_turns_and_the_second_sends_the_fresh_cookie(people: dict[str, Person]) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    first = alice.page
    second = alice.new_page()
    in_chat(second)
    sent: list[str] = []

    def record(route: Route) -> None:
        cookie = route.request.header_value("cookie") or ""
        sent.append(cookie)
        route.continue_()

    alice.context.route(REFRESH_PATH, record)
    for page in (first, second):
        page.evaluate(ARM_REFRESHES)
    first.evaluate("() => new BroadcastChannel('test-go').postMessage('go')")
    results: list[dict[str, Any]] = [page.evaluate("window.__refreshed") for page in (first, second)]
    alice.context.unroute(REFRESH_PATH)

    assert [r["ok"] for r in results] == [True, True], results
    # One refresh per tab (three callers each shared theirs), one after the other: the
    # tab that waited carried the cookie the first one received, not the spent one.
    assert len(sent) == 2, sent
    assert sent[0] != sent[1]
    assert f"{COOKIE}=" in sent[0] and f"{COOKIE}=" in sent[1]
    both_still_logged_in(first, second)


def test_two_tabs_without_web_locks_refreshing_at_once_stay_logged_in(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    first = alice.page
    alice.context.add_init_script(WITHOUT_WEB_LOCKS)
    spent = refresh_cookie(alice)
    held: list[Route] = []

    def hold_until_both(route: Route) -> None:
        # Both tabs' refreshes reach the server together, with the same cookie.
        held.append(route)
        if len(held) == 2:
            for waiting in held:
                waiting.continue_()

    alice.context.route(REFRESH_PATH, hold_until_both)
    first.reload(wait_until="commit")
    second = alice.new_page()
    in_chat(first)
    in_chat(second)
    alice.context.unroute(REFRESH_PATH)

    assert len(held) == 2
    assert all(f"{COOKIE}={spent}" in (route.request.header_value("cookie") or "") for route in held)
    assert first.evaluate("() => navigator.locks") is None
    assert refresh_cookie(alice) != spent
    both_still_logged_in(first, second)


def test_a_refresh_whose_answer_was_lost_is_answered_again(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    first = alice.page
    token = refresh_cookie(alice)
    lost: list[int] = []

    def lose_the_answer(route: Route) -> None:
        if lost:
            route.continue_()
            return
        # The request reaches the server, which rotates the token; the answer never
        # comes back to the browser (the connection broke at the wrong moment).
        lost.append(
            httpx.post(f"{server.url}/api/v1/auth/refresh", json={"refresh_token": token}).status_code
        )
        route.abort("connectionreset")

    alice.context.route(REFRESH_PATH, lose_the_answer)
    second = alice.new_page()
    # The app could not refresh: it offers the login form. The person reloads.
    second.locator("#login-form").wait_for(state="visible", timeout=30_000)
    second.reload()
    in_chat(second)
    alice.context.unroute(REFRESH_PATH)

    assert lost == [200]
    alice.problems[:] = [p for p in alice.problems if "ERR_CONNECTION_RESET" not in p]
    both_still_logged_in(first, second)


def test_token_reuse_shows_in_the_admin_console(people: dict[str, Person], server: LiveServer) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    made = subprocess.run(
        [sys.executable, "-m", "securechat", "admin", "create", "alice", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    # Bob's refresh token is stolen; bob rotates it; a minute later the thief uses it.
    bob = httpx.post(f"{server.url}/api/v1/auth/register", json=registration_body("bob")).json()
    stolen = bob["refresh_token"]
    assert httpx.post(f"{server.url}/api/v1/auth/refresh", json={"refresh_token": stolen}).status_code == 200
    database = server_database(server)
    try:
        database.execute(
            "UPDATE refresh_tokens SET used_at = used_at - 60000 WHERE session_id = ? AND used_at IS NOT NULL",
            (bob["session_id"],),
        )
    finally:
        database.close()
    reuse = httpx.post(f"{server.url}/api/v1/auth/refresh", json={"refresh_token": stolen})
    assert reuse.json()["error"]["reason"] == "token_reuse"

    page = alice.page
    page.reload()
    in_chat(page)
    page.get_by_role("button", name="Account and sessions").click()
    page.get_by_role("button", name="Open the admin console").click()
    page.locator("#admin-tab-blocks").click()
    expect(page.locator("#admin-token-reuse")).to_contain_text(
        "1 session(s) ended by refresh-token reuse in the last day (latest: bob, from 127.0.0.1"
    )
    page.locator("#admin-tab-audit").click()
    row = page.locator("#admin-audit-rows tr", has_text="refresh_token_reuse")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("(server)")
    expect(row.locator("td").nth(3)).to_have_text("bob")
