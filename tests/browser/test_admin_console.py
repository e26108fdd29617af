"""The admin console in the browser: offered only to administrators, shows the message
log without plaintext and file uploads without names, disables a user (whose open page
is told at once), lifts a block, and lists it all in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..conftest import LiveServer
from .conftest import DESKTOP, PHONE, SCREENSHOTS, MakeTerminal, Person
from .terminal import TerminalUser
from .v2_support import wait_for_own_device

pytestmark = pytest.mark.quick_session_check


def test_admin_console(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal, tmp_path: Path
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.register(remember=True)
    bob.register(remember=True)
    carol.register()
    # v2 is on by default: once both are listed devices, bob's messages go in v2.
    wait_for_own_device(bob)
    wait_for_own_device(carol)
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
    # Both browsers are v2 devices (the default), so the messages are in the v2 log,
    # with the device that sent them; the v1 log has none. carol's delivered and read
    # receipts are v2 messages too, which the server cannot tell from others (15.17).
    expect(page.locator("#admin-messages-status")).to_contain_text("message(s) shown")
    page.locator("#admin-sender").fill("bob")
    page.locator("#admin-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").nth(1)).to_have_text("bob")
    expect(rows.first.locator("td").nth(2)).to_have_text("carol")
    expect(rows.first.locator("td").nth(5)).to_contain_text("to 1 device(s)")
    # carol's device had them: the ciphertext is gone from the server, the metadata stays.
    expect(rows.first.locator("td").nth(4)).to_have_text("(deleted once every device had it)")
    page.locator("#admin-protocol").select_option("1")
    expect(rows).to_have_count(0)
    page.locator("#admin-protocol").select_option("2")
    expect(rows).to_have_count(2)
    console_text = dialog.inner_text()
    for text in secrets:
        assert text not in console_text
    page.locator("#admin-sender").fill("alice")
    page.locator("#admin-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(0)
    page.locator("#admin-sender").fill("bob")
    page.locator("#admin-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"admin-{label}.png"))
    page.set_viewport_size(DESKTOP)

    # Files: dave (the terminal client) shares a file with erin; the console shows who,
    # to whom, how large and when, and nothing of its name (the server never had it).
    erin = TerminalUser(tmp_path / "erin-home", server.url)
    try:
        erin.run(erin.messenger.register("erin", "walks the long harbour wall at dusk 42"))
    finally:
        erin.close()
    dave = terminal("dave")
    secret_file = tmp_path / "Operation Nightjar floor plans.pdf"
    secret_file.write_bytes(os.urandom(3 * 1024 * 1024 + 100))
    sent = dave.run(dave.messenger.send_file("erin", secret_file, caption="admin console file caption"))
    page.get_by_role("tab", name="Files").click()
    file_rows = page.locator("#admin-file-rows tr")
    expect(file_rows).to_have_count(1)
    cells = file_rows.first.locator("td")
    expect(cells.nth(1)).to_have_text("dave")
    expect(cells.nth(2)).to_have_text("erin")
    expect(cells.nth(3)).to_have_text("3.0 MiB")
    expect(cells.nth(3)).to_have_attribute("title", f"{3 * 1024 * 1024 + 100} bytes")
    expect(cells.nth(4)).not_to_have_text("Incomplete")
    expect(cells.nth(5)).to_have_text(sent["file_id"])
    expect(page.locator("#admin-files-status")).to_have_text("1 file(s) shown")
    console_text = dialog.inner_text()
    for secret in ("Operation Nightjar", "floor plans", "admin console file caption"):
        assert secret not in console_text
    page.locator("#admin-file-sender").fill("bob")
    page.locator("#admin-file-filter").get_by_role("button", name="Filter").click()
    expect(file_rows).to_have_count(0)
    page.locator("#admin-file-sender").fill("dave")
    page.locator("#admin-file-filter").get_by_role("button", name="Filter").click()
    expect(file_rows).to_have_count(1)

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
    expect(actions).to_contain_text(["enable_user", "disable_user", "view_files", "view_messages"])
    assert "grant_admin" in actions.all_inner_texts()
    bob.problems[:] = [p for p in bob.problems if "401" not in p and "403" not in p]
