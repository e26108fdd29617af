"""The account screens: remembered keys are non-extractable, sessions can be listed and
ended (the other page notices at once), the password changes, logout forgets the keys."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import Person

pytestmark = pytest.mark.quick_session_check


READ_DEVICE_KEYS = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("securechat");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const all = await new Promise((resolve) => {
    const request = db.transaction("device").objectStore("device").getAll();
    request.onsuccess = () => resolve(request.result);
  });
  db.close();
  const out = [];
  for (const record of all) {
    const keys = [record.signingPrivate, record.encryptionPrivate];
    const exports = await Promise.all(keys.map((key) =>
      crypto.subtle.exportKey("pkcs8", key).then(() => "exported", (error) => error.name)));
    out.push({
      username: record.username,
      fields: Object.keys(record).sort(),
      types: keys.map((key) => key.type),
      extractable: keys.map((key) => key.extractable),
      algorithms: keys.map((key) => key.algorithm.name),
      exports,
      byteFields: Object.values(record).filter((v) => v instanceof Uint8Array || v instanceof ArrayBuffer).length,
    });
  }
  return out;
}"""


def device_keys(page: Page) -> list[dict[str, object]]:
    result: list[dict[str, object]] = page.evaluate(READ_DEVICE_KEYS)
    return result


def test_remembered_keys_are_non_extractable_and_logout_forgets_them(people: dict[str, Person]) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    assert device_keys(alice.page) == [
        {
            "username": "alice",
            "fields": ["encryptionPrivate", "public", "signingPrivate", "username"],
            "types": ["private", "private"],
            "extractable": [False, False],
            "algorithms": ["Ed25519", "RSA-OAEP"],
            "exports": ["InvalidAccessError", "InvalidAccessError"],
            "byteFields": 0,
        }
    ]
    alice.page.get_by_role("button", name="Account and sessions").click()
    # Logout ends in a navigation to a fresh page: read the keys only once it has loaded,
    # not while the old page's script context is being torn down.
    with alice.page.expect_navigation():
        alice.page.get_by_role("button", name="Log out", exact=True).click()
    expect(alice.page.locator("#login-form")).to_be_visible()
    assert device_keys(alice.page) == []
    # The refresh cookie went too: a reload does not offer to unlock.
    alice.page.reload()
    expect(alice.page.locator("#login-form")).to_be_visible()
    expect(alice.page.locator("#unlock-form")).to_be_hidden()


TOKENS_IN_REACH_OF_SCRIPTS = """async () => {
  const found = [];
  if (document.cookie.includes("securechat_refresh")) found.push("document.cookie");
  for (const storage of [localStorage, sessionStorage]) {
    for (let i = 0; i < storage.length; i++) found.push(`web storage: ${storage.key(i)}`);
  }
  const db = await new Promise((resolve) => { const r = indexedDB.open("securechat"); r.onsuccess = () => resolve(r.result); });
  for (const name of db.objectStoreNames) {
    const values = await new Promise((resolve) => {
      const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => resolve(r.result); });
    const text = JSON.stringify(values);
    if (text.includes("eyJ") || text.includes("rt_")) found.push(`indexedDB ${name}`);
  }
  db.close();
  return found;
}"""


def test_tokens_stay_out_of_script_reachable_storage(people: dict[str, Person]) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    alice.page.reload()
    alice.wait_chat()
    # The refresh cookie exists (the reload used it) but scripts cannot see it.
    cookies = {c["name"]: c for c in alice.context.cookies()}
    assert cookies["securechat_refresh"]["httpOnly"] is True
    assert cookies["securechat_refresh"]["sameSite"] == "Strict"
    assert cookies["securechat_refresh"]["path"] == "/api/v1/auth"
    assert alice.page.evaluate(TOKENS_IN_REACH_OF_SCRIPTS) == []


def test_sessions_revoke_others_and_password_change(people: dict[str, Person], browser) -> None:  # type: ignore[no-untyped-def]
    alice = people["alice"]
    alice.register(remember=True)
    phone = Person("alice", browser.new_context(), alice.page, alice.base_url)
    try:
        phone.new_page()
        phone.login()

        page = alice.page
        page.get_by_role("button", name="Account and sessions").click()
        sessions = page.locator("#session-list li")
        expect(sessions).to_have_count(2)
        expect(page.locator("#session-list li.current")).to_have_count(1)
        expect(page.locator("#session-list li.current")).to_contain_text("This session")
        page.get_by_role("button", name="Log out other sessions").click()
        expect(page.locator("#sessions-result")).to_have_text("1 other session(s) logged out.")
        expect(sessions).to_have_count(1)
        # The other device's open page is told at once and asks for a new login.
        expect(phone.page.locator("#auth-error")).to_contain_text("Your session has ended")
        expect(phone.page.locator("#login-form")).to_be_visible()
        assert not phone.problems, phone.problems

        # Password change: refused for a wrong current password, then done.
        new_password = "a brand new passphrase 2026"
        page.locator("#password-current").fill("not the password at all")
        page.locator("#password-new").fill(new_password)
        page.locator("#password-repeat").fill(new_password)
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#password-result")).to_have_text("The current password is not right.")
        phone.login()  # a second session, which the change must end
        page.locator("#password-current").fill(alice.password)
        page.locator("#password-new").fill(new_password)
        page.locator("#password-repeat").fill(new_password)
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#password-result")).to_have_text(
            "Password changed. 1 other session(s) were logged out."
        )
        expect(phone.page.locator("#auth-error")).to_contain_text("Your session has ended")

        # The old password no longer works anywhere; the new one does, and opens the same keys.
        phone.page.locator("#login-username").fill("alice")
        phone.page.locator("#login-password").fill(alice.password)
        phone.page.locator("#login-form").get_by_role("button", name="Log in").click()
        expect(phone.page.locator("#auth-error")).to_have_text("The username or password is not right.")
        phone.login(password=new_password)
        page.locator("#account-close").click()
        # The refused login is an expected 401, which the watcher already ignores.
        assert not phone.problems, phone.problems
    finally:
        phone.context.close()
