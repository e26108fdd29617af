"""The terminal client with protocol v2 against a real server: `securechat devices`
(add, list with this one marked, revoke) and `securechat chat` showing v2 messages live
and a contact's new device as a notice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pexpect
import pytest

from securechat.client.errors import ApiError
from securechat.client.messenger import Messenger

from ..conftest import LiveServer
from ..integration.conftest import PASSWORDS


@pytest.fixture
async def clients(tmp_path: Path, live_server: LiveServer) -> AsyncIterator[dict[str, Messenger]]:
    made: dict[str, Messenger] = {}
    for name in ("alice", "bob"):
        made[name] = Messenger(tmp_path / f"home-{name}", live_server.url)
        await made[name].register(name, PASSWORDS[name])
    yield made
    for client in made.values():
        await client.close()


def cli(home: Path, server: str, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "securechat", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_devices_lists_adds_and_revokes(
    clients: dict[str, Messenger], live_server: LiveServer, tmp_path: Path
) -> None:
    home, url, password = tmp_path / "home-alice", live_server.url, PASSWORDS["alice"]
    # v2 is the default: the first command that unlocks the keys lists this home.
    first = cli(home, url, "devices", password=password)
    assert first.returncode == 0, first.stderr
    assert "this device" in first.stdout and "no devices yet" not in first.stdout
    added = cli(home, url, "devices", "add", password=password)
    assert added.returncode == 0, added.stderr
    mine = added.stdout.split("this device: ")[1].split()[0]
    assert mine in first.stdout

    tablet = Messenger(tmp_path / "home-alice-tablet", url)
    try:
        await tablet.login("alice", password)
        other = await tablet.enable_v2()
    finally:
        await tablet.close()
    listed = cli(home, url, "devices", password=password)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if mine in line or other in line]
    assert len(rows) == 2
    assert [row for row in rows if "this device" in row] == [next(r for r in rows if mine in r)]

    revoked = cli(home, url, "devices", "revoke", other, password=password)
    assert revoked.returncode == 0, revoked.stderr
    after = cli(home, url, "devices", password=password).stdout
    assert mine in after and other not in after
    unknown = cli(home, url, "devices", "revoke", "0" * 32, password=password)
    assert unknown.returncode == 1 and "no device" in unknown.stderr


async def test_a_login_is_a_new_device_and_says_where_earlier_v2_messages_are(
    clients: dict[str, Messenger], live_server: LiveServer, tmp_path: Path
) -> None:
    url = live_server.url
    # The first home of the account: no other device, nothing to say.
    first = cli(tmp_path / "home-carol", url, "register", "carol", password=PASSWORDS["alice"])
    assert first.returncode == 0, first.stderr
    assert "new device" not in first.stdout
    listed = cli(tmp_path / "home-carol", url, "devices", password=PASSWORDS["alice"])
    assert "this device" in listed.stdout
    # A second home logs in: it is listed at once, and told how to bring the history.
    second = cli(tmp_path / "home-carol-2", url, "login", "carol", password=PASSWORDS["alice"])
    assert second.returncode == 0, second.stderr
    assert "new device of your account" in second.stdout
    assert "securechat devices link-code" in second.stdout
    both = cli(tmp_path / "home-carol", url, "devices", password=PASSWORDS["alice"]).stdout
    assert sum(1 for line in both.splitlines() if "20" in line and "│" in line) == 2


async def expect(child: pexpect.spawn, pattern: str, timeout: float = 30) -> None:
    await asyncio.to_thread(child.expect, pattern, timeout=timeout)


async def test_chat_shows_v2_messages_live_and_a_new_device(
    clients: dict[str, Messenger], live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "before the chat opened")
    env = {**os.environ, "SECURECHAT_HOME": str(tmp_path / "home-bob"), "SECURECHAT_SERVER": live_server.url}
    child = pexpect.spawn(
        sys.executable, ["-m", "securechat", "chat", "alice"], env=env, encoding="utf-8", dimensions=(40, 120)
    )
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["bob"])
        await expect(child, "alice: before the chat opened")
        await expect(child, "-- connected")
        await alice.send_text("bob", "live over v2")
        await expect(child, "alice: live over v2")
        child.sendline("typed reply over v2")
        received: list[str | None] = []
        async with asyncio.timeout(30):
            while not received:
                received = [i.text for i in await alice.sync_inbox() if i.kind == "message" and i.verified]
                await asyncio.sleep(0.2)
        assert received == ["typed reply over v2"]
        tablet = Messenger(tmp_path / "home-alice-tablet", live_server.url)
        try:
            await tablet.login("alice", PASSWORDS["alice"])
            await tablet.enable_v2()
        finally:
            await tablet.close()
        await alice.send_text("bob", "from my phone, now with a tablet")
        await expect(child, "-- alice added a new device")
        await expect(child, "alice: from my phone, now with a tablet")
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)


async def test_a_revoked_home_carries_on_in_v1(
    clients: dict[str, Messenger], live_server: LiveServer, tmp_path: Path
) -> None:
    """Revoked from another device, a home still reads and sends (protocol v1) and says
    why v2 is off, rather than failing every command."""
    url, password = live_server.url, PASSWORDS["alice"]
    home = tmp_path / "home-alice"
    bob = clients["bob"]
    await bob.enable_v2()
    assert cli(home, url, "devices", password=password).returncode == 0
    own = clients["alice"]
    mine = own.v2.device()
    assert mine is not None
    laptop = Messenger(tmp_path / "home-alice-laptop", url)
    try:
        await laptop.login("alice", password)
        await laptop.enable_v2()
        await laptop.v2.revoke(mine.device_id)
    finally:
        await laptop.close()
    await bob.send_text("alice", "to alice's devices")

    listed = cli(home, url, "inbox", password=password)
    assert listed.returncode == 0, listed.stderr
    assert "revoked" in listed.stderr
    sent = cli(home, url, "send", "bob", "from the revoked home", password=password)
    assert sent.returncode == 0, sent.stderr
    got = [i for i in await bob.sync_inbox() if i.kind == "message"]
    assert [(i.text, i.verified) for i in got] == [("from the revoked home", True)]


async def test_v2_that_cannot_start_does_not_stop_a_command(
    clients: dict[str, Messenger], live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = clients["alice"]

    async def refused() -> str:
        raise ApiError(503, "unavailable", "the device list cannot be stored now")

    monkeypatch.setattr(alice, "enable_v2", refused)
    said = await alice.start_v2()
    assert said is not None and "protocol v1" in said and "503" in said
