"""`securechat account rotate-identity` against a real server (PROTOCOL.md 15.11): a wrong
password rotates nothing; the right one replaces the key, and bob's client follows it
with the notice and sees the new safety number in `securechat verify`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from securechat.client.v2.rotation import rotated_notice

from ..conftest import LiveServer
from ..integration.conftest import PASSWORDS
from .test_devices_cli import cli, clients  # noqa: F401


def safety_number(home: Path, server: str) -> list[str]:
    env = {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server, "COLUMNS": "200"}
    shown = subprocess.run(
        [sys.executable, "-m", "securechat", "verify", "alice"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    return [line for line in shown.stdout.splitlines() if line[:1].isdigit()]


async def test_rotate_identity_command(clients, live_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    alice, bob = clients["alice"], clients["bob"]
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "hello")
    await bob.sync_inbox()
    home, url = tmp_path / "home-alice", live_server.url
    await alice.close()
    before = safety_number(tmp_path / "home-bob", url)
    assert before

    wrong = cli(home, url, "account", "rotate-identity", password="not alice's password at all")
    assert wrong.returncode != 0
    assert "Identity key rotated" not in wrong.stdout

    done = cli(home, url, "account", "rotate-identity", password=PASSWORDS["alice"])
    assert done.returncode == 0, done.stderr
    assert "Identity key rotated" in done.stdout and "1 device(s) certified again" in done.stdout

    sent = await bob.send_text("alice", "after the rotation")
    assert [n["text"] for n in sent.get("notices", [])] == [rotated_notice("alice")]
    assert safety_number(tmp_path / "home-bob", url) not in ([], before)
