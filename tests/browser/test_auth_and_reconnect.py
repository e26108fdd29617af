"""Registration feedback (progress, strength, clear errors) and a page that rides out a
server restart: it reconnects by itself and resumes from its last sequence."""

from __future__ import annotations

from urllib.parse import urlparse

from playwright.sync_api import expect

from ..conftest import LiveServer, start_server
from .conftest import PASSWORDS, MakeTerminal, Person

RECORD_PROGRESS = """() => {
  window.__progress = [];
  const node = document.getElementById('auth-progress-text');
  new MutationObserver(() => window.__progress.push(node.textContent)).observe(node, {childList: true, characterData: true, subtree: true});
}"""


def test_registration_shows_progress_strength_and_clear_errors(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    page = bob.page
    page.get_by_role("tab", name="Create account").click()
    error = page.locator("#auth-error")

    def attempt(username: str, password: str, confirm: str | None = None) -> None:
        page.locator("#register-username").fill(username)
        page.locator("#register-password").fill(password)
        page.locator("#register-confirm").fill(password if confirm is None else confirm)
        page.locator("#register-form").get_by_role("button", name="Create account").click()

    strength = page.locator("#password-strength")
    page.locator("#register-password").fill("abc")
    expect(strength).to_have_text("Strength: Too weak")
    page.locator("#register-password").fill("Tr4nsparent-Gl4ss-Mountain!")
    expect(strength).to_have_text("Strength: Strong")

    attempt("bob", "short")
    expect(error).to_have_text("Use at least 10 characters.")
    attempt("bob", "1234567890")
    expect(error).to_have_text("That is one of the most common passwords. Choose another.")
    attempt("bob", "bob-is-my-password-1")
    expect(error).to_have_text("The password must not contain your username.")
    attempt("bob", PASSWORDS["bob"], "something else entirely")
    expect(error).to_have_text("The two passwords are not the same.")
    attempt("b!", PASSWORDS["bob"])
    expect(error).to_contain_text("username must be 3-32 characters")
    # The server's refusal, in words: the name is taken.
    bob.expected_statuses.add(409)
    attempt("alice", PASSWORDS["bob"])
    expect(error).to_have_text("That username is already taken. Try another.")

    page.evaluate(RECORD_PROGRESS)
    attempt("bob", PASSWORDS["bob"])
    bob.wait_chat()
    steps = page.evaluate("window.__progress")
    for step in ("Deriving keys from your password…", "Generating your key pairs…", "Creating your account…"):
        assert step in steps, steps

    # Login errors are as clear, and the same for an unknown user and a wrong password.
    carol = people["carol"]
    for name, password in (("alice", "not alice's password"), ("nobody-here", "whatever-password")):
        carol.page.locator("#login-username").fill(name)
        carol.page.locator("#login-password").fill(password)
        carol.page.locator("#login-form").get_by_role("button", name="Log in").click()
        expect(carol.page.locator("#auth-error")).to_have_text("The username or password is not right.")


def test_page_reconnects_and_resumes_after_a_server_restart(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    alice.run(alice.messenger.send_text("bob", "before the restart"))
    bob.open_chat("alice")
    expect(bob.page.locator(".message .message-text")).to_have_text(["before the restart"])

    server.stop()
    expect(bob.page.locator("#connection")).to_have_text("Offline: reconnecting")
    port = urlparse(server.url).port
    restarted = start_server(server.data_dir, server.log_path, port=port)
    try:
        # Sent while bob's page is still reconnecting: it must arrive, once, in order.
        alice.run(alice.messenger.send_text("bob", "during the outage"))
        alice.run(alice.messenger.send_text("bob", "after the restart"))
        expect(bob.page.locator("#connection")).to_have_text("Online", timeout=20_000)
        expect(bob.page.locator(".message .message-text")).to_have_text(
            ["before the restart", "during the outage", "after the restart"]
        )
        bob.send("bob is back")
        # The browser logs each refused reconnect attempt during the outage; expected here.
        bob.problems[:] = [p for p in bob.problems if "ERR_CONNECTION_REFUSED" not in p]
        items = [
            i for i in alice.run(alice.messenger.sync_inbox()) if i.kind == "message" and i.sender == "bob"
        ]
        assert [(i.text, i.verified) for i in items] == [("bob is back", True)]
    finally:
        restarted.stop()


def test_a_blocked_address_gets_a_clear_message(people: dict[str, Person]) -> None:
    alice, mallory = people["alice"], people["dave"]
    alice.register()
    mallory.expected_statuses.add(403)
    page = mallory.page
    error = page.locator("#auth-error")
    for attempt in range(6):
        page.locator("#login-username").fill("alice")
        page.locator("#login-password").fill(f"guess number {attempt} for alice")
        page.locator("#login-form").get_by_role("button", name="Log in").click()
        expected = (
            "The username or password is not right."
            if attempt < 5
            else "Too many failed attempts from this network: access is blocked for about 5 minute(s)."
        )
        expect(error).to_have_text(expected)
