"""History paging, keyboard and screen-reader basics, phone width, notifications."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import PHONE, MakeTerminal, Person

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]):not([hidden]), textarea, button, [role=tab]')]
  .filter((node) => {
    const name = node.getAttribute('aria-label') || (node.labels && [...node.labels].map(l => l.textContent).join('').trim())
      || (node.tagName === 'BUTTON' || node.getAttribute('role') === 'tab' ? node.textContent.trim() : '');
    return !name;
  })
  .map((node) => node.outerHTML.slice(0, 80))"""


def test_history_pages_on_scroll(people: dict[str, Person], terminal: MakeTerminal) -> None:
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    for number in range(120):
        alice.run(alice.messenger.send_text("bob", f"message {number:03}"))
    # Bob was online and received them live; a fresh page has to page through history.
    page = bob.page
    page.reload()
    bob.wait_chat()
    bob.open_chat("alice")
    texts = page.locator(".message .message-text")
    expect(texts).to_have_count(50)
    assert texts.first.inner_text() == "message 070" and texts.last.inner_text() == "message 119"
    expect(page.locator(".history-more")).to_be_visible()
    for expected_count, first in ((100, "message 020"), (120, "message 000")):
        page.locator("#message-list").evaluate("(list) => { list.scrollTop = 0; }")
        expect(texts).to_have_count(expected_count)
        assert texts.first.inner_text() == first
    expect(page.locator(".history-more")).to_have_count(0)
    assert [t for t in texts.all_inner_texts()] == [f"message {n:03}" for n in range(120)]


def test_keyboard_only_register_and_send_with_labelled_controls(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.register()
    page = alice.page
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    keyboard = page.keyboard
    # Focus starts in the login form; Shift+Tab reaches the tabs; arrows switch them.
    expect(page.locator("#login-username")).to_be_focused()
    keyboard.press("Shift+Tab")
    expect(page.locator("#tab-login")).to_be_focused()
    keyboard.press("ArrowRight")
    expect(page.locator("#tab-register")).to_be_focused()
    expect(page.locator("#register-form")).to_be_visible()
    keyboard.press("Tab")
    expect(page.locator("#register-username")).to_be_focused()
    keyboard.type("alice")
    keyboard.press("Tab")
    keyboard.type(alice.password)
    keyboard.press("Tab")
    keyboard.type(alice.password)
    keyboard.press("Enter")
    alice.wait_chat()
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.locator("#new-peer").focus()
    keyboard.type("bob")
    keyboard.press("Enter")
    expect(page.locator("#composer-text")).to_be_focused()
    keyboard.type("typed, not clicked")
    keyboard.press("Enter")
    expect(bob.page.locator(".conversation-item[data-peer='alice'] .conversation-preview")).to_have_text(
        "typed, not clicked"
    )
    # Dialogs open from the keyboard and close with Escape, returning to the page.
    page.locator("#open-contact").focus()
    keyboard.press("Enter")
    expect(page.locator("#contact-dialog")).to_be_visible()
    keyboard.press("Escape")
    expect(page.locator("#contact-dialog")).to_be_hidden()


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_phone_width_shows_one_column_without_horizontal_scroll(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.register()
    page = alice.page
    page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(page)
    alice.register()
    assert no_horizontal_scroll(page)
    alice.start_chat("bob")
    # One column: the conversation replaces the list, and Back returns to it.
    expect(page.locator("#sidebar")).to_be_hidden()
    alice.send("a fairly long message that has to wrap on a narrow phone screen " * 3)
    alice.send("https://example.invalid/" + "x" * 120)
    assert no_horizontal_scroll(page)
    page.get_by_role("button", name="Back to conversations").click()
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#conversation")).to_be_hidden()
    alice.open_chat("bob")
    page.get_by_role("button", name="Safety number").click()
    assert no_horizontal_scroll(page)


NOTIFICATION_STUB = """
window.__notifications = [];
window.__hidden = false;
Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
window.Notification = class {
  static permission = "default";
  static async requestPermission() { window.Notification.permission = "granted"; return "granted"; }
  constructor(title, options) { window.__notifications.push({ title, ...options }); }
};
"""


def test_opt_in_notifications_name_the_sender_only_while_hidden(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.context.add_init_script(NOTIFICATION_STUB)
    bob.page.reload()
    alice.register()
    bob.register()
    alice.start_chat("bob")
    alice.send("not notified: no permission yet")
    bob.open_chat("alice")
    page = bob.page
    page.get_by_role("button", name="Account and sessions").click()
    page.get_by_role("button", name="Enable notifications").click()
    expect(page.locator("#notification-state")).to_have_text("Notifications are on.")
    page.locator("#account-close").click()
    alice.send("visible: no notification")
    expect(page.locator(".message.theirs .message-text").last).to_have_text("visible: no notification")
    page.evaluate("window.__hidden = true")
    alice.send("secret text that must not reach the OS")
    # Polled with evaluate: wait_for_function would re-evaluate its predicate with eval
    # in the page, which the app's CSP blocks (and reports) if the first check is early.
    for _ in range(100):
        if page.evaluate("window.__notifications.length") >= 1:
            break
        page.wait_for_timeout(100)
    notes = page.evaluate("window.__notifications")
    assert notes == [{"title": "SecureChat", "body": "New message from alice", "tag": notes[0]["tag"]}]
    # Hidden, so the open conversation counts it as unread, and the title says so.
    expect(page).to_have_title("(1) SecureChat")
