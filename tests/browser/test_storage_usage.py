"""Storage quotas in the browser (issue 12, item 5): the account dialog says what the
account's files take of its quota, an upload past the quota is refused with words for
people (and nothing stored is lost), and the admin console lists every account's usage."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..conftest import LiveServer, start_server
from .conftest import Person
from .test_files import SENT, attach, file_card

MIB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        tmp_path / "server-data",
        tmp_path / "server.log",
        extra_env={"SECURECHAT_FILE_QUOTA_BYTES": str(3 * MIB)},
    )
    yield live
    live.stop()


def test_usage_line_quota_refusal_and_admin_column(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register(remember=True)
    bob.register()
    page = alice.page
    page.get_by_role("button", name="Account and sessions").click()
    usage = page.locator("#storage-usage")
    expect(usage).to_have_text("Your files take 0 B of your 3.0 MiB on the server (0%): 0 files.")
    page.locator("#account-close").click()

    alice.start_chat("bob")
    attach(alice, "first.bin", "application/octet-stream", os.urandom(MIB + 200_000))
    expect(file_card(page, "first.bin")).to_be_visible()
    expect(page.locator(".message.mine .status").last).to_have_text(SENT, timeout=30_000)

    page.get_by_role("button", name="Account and sessions").click()
    expect(usage).to_have_text("Your files take 1.2 MiB of your 3.0 MiB on the server (39%): 1 file.")
    page.locator("#account-close").click()

    # 2 MiB more does not fit: refused before a byte is sent, with words for people.
    alice.expected_statuses.add(413)
    attach(alice, "second.bin", "application/octet-stream", os.urandom(2 * MIB))
    expect(page.locator("#composer-error")).to_contain_text("reached your storage quota")
    page.get_by_role("button", name="Account and sessions").click()
    expect(usage).to_contain_text("1.2 MiB of your 3.0 MiB")
    page.locator("#account-close").click()

    # The first file is still whole for bob.
    bob.open_chat("alice")
    expect(file_card(bob.page, "first.bin")).to_be_visible()

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
    page.get_by_role("tab", name="Users").click()
    expect(page.locator("#admin-users-stored")).to_have_text("Stored (of 3.0 MiB)")
    expect(page.locator("#admin-user-rows tr[data-user='alice'] td").nth(4)).to_have_text("1.2 MiB")
    expect(page.locator("#admin-user-rows tr[data-user='bob'] td").nth(4)).to_have_text("0 B")
