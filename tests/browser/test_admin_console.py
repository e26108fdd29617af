"""The admin console in the browser: offered only to administrators, shows the message
log without plaintext, disables a user (whose open page is told at once), lifts a
block, and lists it all in the audit log."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import expect

from ..conftest import LiveServer
from .conftest import DESKTOP, PHONE, SCREENSHOTS, Person

pytestmark = pytest.mark.quick_session_check


def test_admin_console(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.register(remember=True)
    bob.register(remember=True)
    carol.register()
    bob.start_chat("carol")
    secrets = ["admin console plaintext one", "admin console plaintext two"]
    for text in secrets:
        bob.send(text)

    # Not an admin yet: nothing offered (and the server would refuse anyway).
    page = alice.page
    page.get_by_role("button", name="Account and sessions").click()
    expect(page.locator("#admin-entry")).to_be_hidden()
    page.locator("#account-close").click()

    made = subprocess.run(
        [sys.executable, "-m", "securechat", "admin", "create", "alice", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    page.reload()
    alice.wait_chat()
    page.get_by_role("button", name="Account and sessions").click()
    page.get_by_role("button", name="Open the admin console").click()
    dialog = page.locator("#admin-dialog")
    rows = page.locator("#admin-message-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").nth(1)).to_have_text("bob")
    expect(rows.first.locator("td").nth(2)).to_have_text("carol")
    console_text = dialog.inner_text()
    for text in secrets:
        assert text not in console_text
    page.locator("#admin-sender").fill("carol")
    page.locator("#admin-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(0)
    page.locator("#admin-sender").fill("bob")
    page.locator("#admin-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"admin-{label}.png"))
    page.set_viewport_size(DESKTOP)

    # Users: disabling bob ends his open page's session.
    page.get_by_role("tab", name="Users").click()
    page.get_by_role("button", name="Disable bob").click()
    expect(page.locator("#admin-user-rows tr[data-user='bob'] td").nth(3)).to_have_text("Disabled")
    expect(bob.page.locator("#auth-error")).to_contain_text("Your session has ended")
    page.get_by_role("button", name="Enable bob").click()
    expect(page.locator("#admin-user-rows tr[data-user='bob'] td").nth(3)).to_have_text("Active")

    # Audit: everything above is on record.
    page.get_by_role("tab", name="Audit").click()
    actions = page.locator("#admin-audit-rows tr td:nth-child(3)")
    expect(actions).to_contain_text(["enable_user", "disable_user", "view_messages"])
    assert "grant_admin" in actions.all_inner_texts()
    bob.problems[:] = [p for p in bob.problems if "401" not in p and "403" not in p]
