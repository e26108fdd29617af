"""Fixtures for the browser client's tests: Debian's Chromium driven by Playwright, a
real server process per test, and helpers that act as a person would (fill the form,
press Enter) and watch for anything a page must never do (run injected script, violate
its CSP, throw an uncaught error).

Chromium is /usr/bin/chromium from Debian (scripts/test installs it where missing);
Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from ..conftest import LiveServer, start_server
from .terminal import TerminalUser

CHROMIUM = os.environ.get("SECURECHAT_CHROMIUM", "/usr/bin/chromium")
PASSWORDS = {
    "alice": "correct horse battery staple",
    "bob": "tr0ub4dor&3-but-longer",
    "carol": "purple monkey dishwasher 9",
    "dave": "grey seal lighthouse 1871",
    "erin": "amber kettle mountain 42",
    "mallory": "not to be trusted 0xDEAD",
}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
# Tests write screenshots to an ignored folder, so the test command leaves the tree as it
# was; `scripts/screenshots` writes the README's (docs/screenshots) instead.
SCREENSHOTS = Path(
    os.environ.get("SECURECHAT_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "build" / "screenshots"
)

# Installed before any page script: records CSP violations and the XSS canary, and
# counts notifications the page shows.
WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({directive: event.violatedDirective, blocked: event.blockedURI, sample: event.sample});
});
window.__xss = 0;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: sync Playwright keeps an event loop running in this
    # thread while it is started, which would stop later asyncio tests from running.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A real server per test; a test marked ``quick_session_check`` gets open sockets
    re-checking their session every half second, so a revocation shows at once."""
    extra = (
        {"SECURECHAT_WS_SESSION_CHECK_SECONDS": "0.5"}
        if request.node.get_closest_marker("quick_session_check")
        else {}
    )
    live = start_server(tmp_path / "server-data", tmp_path / "server.log", extra_env=extra)
    yield live
    live.stop()


MakeTerminal = Callable[[str], TerminalUser]


@pytest.fixture
def terminal(server: LiveServer, tmp_path: Path) -> Iterator[MakeTerminal]:
    """``terminal("dave")``: a registered terminal-client user (the Python library) on
    the test's server, with its own home; closed at the end of the test."""
    made: list[TerminalUser] = []

    def make(name: str) -> TerminalUser:
        user = TerminalUser(tmp_path / f"{name}-home", server.url)
        made.append(user)
        user.run(user.messenger.register(name, PASSWORDS[name]))
        return user

    yield make
    for user in made:
        user.close()


@dataclass
class Person:
    """One browser profile (a context: its own cookies and IndexedDB) and its page."""

    name: str
    context: BrowserContext
    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)
    # Answers the browser logs as failed loads but the app handles: the first refresh of
    # a fresh profile has no cookie (401); with v2 on (the default), a send across a
    # device-list change is answered 409 device_list_stale and sealed again, and a lookup
    # of what is not there yet is 404. A test adds what it provokes on purpose.
    expected_statuses: set[int] = field(default_factory=lambda: {401, 404, 409})

    @property
    def password(self) -> str:
        return PASSWORDS[self.name]

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            status = re.search(r"status of (\d{3})", message.text)
            if status and int(status.group(1)) in self.expected_statuses:
                return
            self.problems.append(f"console: {message.text}")

        page.on("console", on_console)

    def new_page(self) -> Page:
        self.page = self.context.new_page()
        self.watch(self.page)
        self.page.goto(self.base_url)
        return self.page

    # Acting as the person ------------------------------------------------------------
    def register(self, *, remember: bool = False) -> None:
        page = self.page
        page.get_by_role("tab", name="Create account").click()
        page.locator("#register-username").fill(self.name)
        page.locator("#register-password").fill(self.password)
        page.get_by_label("Repeat the password").fill(self.password)
        if remember:
            page.locator("#register-remember").check()
        page.locator("#register-form").get_by_role("button", name="Create account").click()
        self.wait_chat()

    def login(self, *, password: str | None = None, remember: bool = False) -> None:
        page = self.page
        page.locator("#login-username").fill(self.name)
        page.locator("#login-password").fill(password or self.password)
        if remember:
            page.locator("#login-remember").check()
        page.locator("#login-form").get_by_role("button", name="Log in").click()
        self.wait_chat()

    def unlock(self, *, remember: bool = False) -> None:
        page = self.page
        page.locator("#unlock-form").wait_for()
        page.locator("#unlock-password").fill(self.password)
        if remember:
            page.locator("#unlock-remember").check()
        page.locator("#unlock-password").press("Enter")
        self.wait_chat()

    def wait_chat(self) -> None:
        self.page.locator("#chat-screen").wait_for(state="visible", timeout=30_000)
        self.page.locator("#connection[data-state=online]").wait_for(timeout=10_000)

    def start_chat(self, peer: str) -> None:
        self.page.get_by_label("Start a conversation with (username)").fill(peer)
        self.page.keyboard.press("Enter")
        self.page.locator("#conversation-title", has_text=peer).wait_for()

    def open_chat(self, peer: str) -> None:
        self.page.locator(f".conversation-item[data-peer='{peer}']").click()
        self.page.locator("#conversation-title", has_text=peer).wait_for()

    def send(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        box.fill(text)
        box.press("Enter")
        self.page.locator(".message.mine").filter(has_text=text).last.wait_for()

    def messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.page.eval_on_selector_all(
            "#message-list .message",
            """items => items.map(item => ({
                text: item.querySelector('.message-text')?.textContent ?? '',
                mine: item.classList.contains('mine'),
                verified: item.dataset.verified === 'true',
                status: item.querySelector('.status')?.className.replace('status status-', '') ?? null,
            }))""",
        )
        return result

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages() if m["verified"]]

    def safety_number(self) -> str:
        self.page.get_by_role("button", name="Safety number").click()
        number = self.page.locator("#safety-number").inner_text()
        self.page.locator("#contact-dialog").get_by_role("button", name="Close").click()
        return number

    def canary(self) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate("({xss: window.__xss, csp: window.__cspViolations})")
        return result


@pytest.fixture
def people(browser: Browser, server: LiveServer) -> Iterator[dict[str, Person]]:
    """``people["alice"]``: a fresh browser profile for each name, on the test's server."""
    made: dict[str, Person] = {}

    class Factory(dict[str, Person]):
        def __missing__(self, name: str) -> Person:
            context = browser.new_context(viewport=DESKTOP)
            context.add_init_script(WATCH_SCRIPT)
            page = context.new_page()
            person = Person(name, context, page, server.url)
            person.watch(page)
            page.goto(server.url)
            self[name] = person
            made[name] = person
            return person

    yield Factory()
    problems = {name: person.problems for name, person in made.items() if person.problems}
    for person in made.values():
        person.context.close()
    assert not problems, f"pages reported problems: {problems}"
