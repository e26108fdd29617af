"""`securechat sessions` with the device of each session (PROTOCOL.md 15.16): the list
shows which device proved itself in each session, and `--revoke SESSION --device DEVICE`
signs a new device list without DEVICE and ends the session, against a real server. The
server's word on a session's device is a hint: the device typed must be the one the server
names for that session when it is revoked (so a server cannot swap it after the listing),
a device the signed list does not have is refused, and so is this home's own device, and
nothing is revoked or ended then."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from securechat.cli import main
from securechat.cli.entry import app
from securechat.client.errors import ApiError
from securechat.client.messenger import Messenger

from ..conftest import LiveServer, server_database
from ..integration.conftest import PASSWORDS
from .test_devices_cli import cli
from .test_output import FORGED, HYPERLINK, HostileSessions, inert


class Alice:
    """Alice's phone (this terminal's home) and tablet, each a listed device that has read
    its inbox in its own session; bob has a device too."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.home = tmp_path / "home-alice"
        self.url = url
        self.phone = Messenger(self.home, url)
        self.tablet = Messenger(tmp_path / "home-alice-tablet", url)
        self.bob = Messenger(tmp_path / "home-bob", url)
        self.phone_device = self.tablet_device = self.bob_device = ""
        self.tablet_session = self.phone_session = ""

    async def start(self) -> None:
        await self.phone.register("alice", PASSWORDS["alice"])
        self.phone_device = await self.phone.enable_v2()
        await self.phone.sync_v2()
        await self.tablet.login("alice", PASSWORDS["alice"])
        self.tablet_device = await self.tablet.enable_v2()
        await self.tablet.sync_v2()
        await self.bob.register("bob", PASSWORDS["bob"])
        self.bob_device = await self.bob.enable_v2()
        (self.tablet_session,) = [s["id"] for s in await self.tablet.session.sessions() if s["current"]]
        (self.phone_session,) = [s["id"] for s in await self.phone.session.sessions() if s["current"]]

    async def close(self) -> None:
        for client in (self.phone, self.tablet, self.bob):
            await client.close()

    def run(self, *args: str) -> tuple[int, str, str]:
        done = cli(self.home, self.url, "sessions", *args, password=PASSWORDS["alice"])
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
async def alice(tmp_path: Path, live_server: LiveServer) -> AsyncIterator[Alice]:
    made = Alice(tmp_path, live_server.url)
    await made.start()
    yield made
    await made.close()


async def listed(client: Messenger) -> set[str]:
    return {entry.device_id for entry in await client.v2.devices()}


async def live_sessions(client: Messenger) -> set[str]:
    return {session["id"] for session in await client.session.sessions()}


def set_session_device(live_server: LiveServer, session_id: str, device_id: str | None) -> None:
    database = server_database(live_server)
    try:
        database.execute("UPDATE sessions SET device_id = ? WHERE id = ?", (device_id, session_id))
    finally:
        database.close()


async def test_sessions_show_their_devices_and_one_is_revoked_with_its_session(
    alice: Alice, live_server: LiveServer
) -> None:
    code, out, err = alice.run()
    assert code == 0, err
    rows = out.splitlines()
    (tablet_row,) = [row for row in rows if alice.tablet_session in row]
    (phone_row,) = [row for row in rows if alice.phone_session in row]
    assert alice.tablet_device in tablet_row and alice.phone_device not in tablet_row
    assert alice.phone_device in phone_row and "this device" in phone_row

    code, out, err = alice.run("--revoke", alice.tablet_session, "--device", alice.tablet_device)
    assert code == 0, err
    assert f"revoked device {alice.tablet_device}" in out
    assert f"ended session {alice.tablet_session}" in out
    # The signed list no longer has the tablet, and its session is over.
    assert await listed(alice.phone) == {alice.phone_device}
    assert await live_sessions(alice.phone) == {alice.phone_session}
    with pytest.raises(ApiError) as ended:
        await alice.tablet.session.sessions()
    assert ended.value.status == 401, ended.value
    # What alice's phone sends now carries no key for the tablet.
    await alice.phone.sync_v2()
    await alice.phone.send_text("bob", "after the revocation")
    database = server_database(live_server)
    try:
        (envelope,) = database.execute("SELECT envelope FROM v2_messages ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        database.close()
    assert alice.bob_device in envelope and alice.tablet_device not in envelope


async def test_a_device_the_signed_list_lacks_is_refused_and_nothing_ends(
    alice: Alice, live_server: LiveServer
) -> None:
    # A malicious server names bob's device on alice's tablet session.
    set_session_device(live_server, alice.tablet_session, alice.bob_device)
    code, _, err = alice.run("--revoke", alice.tablet_session, "--device", alice.bob_device)
    assert code == 1 and f"no device {alice.bob_device} in your device list" in err
    assert "revoked device" not in err
    assert await listed(alice.phone) == {alice.phone_device, alice.tablet_device}
    assert alice.tablet_session in await live_sessions(alice.phone)


async def test_a_device_swapped_after_the_listing_is_not_revoked(
    alice: Alice, live_server: LiveServer, tmp_path: Path
) -> None:
    # Alice has a laptop too. She reads the tablet's device on its session; then the
    # server names the laptop on that session when she revokes. The device she typed is
    # not the one named now, so nothing happens (before, the laptop was revoked).
    laptop = Messenger(tmp_path / "home-alice-laptop", alice.url)
    try:
        await laptop.login("alice", PASSWORDS["alice"])
        laptop_device = await laptop.enable_v2()
    finally:
        await laptop.close()
    code, out, err = alice.run()
    assert code == 0, err
    (tablet_row,) = [row for row in out.splitlines() if alice.tablet_session in row]
    assert alice.tablet_device in tablet_row
    set_session_device(live_server, alice.tablet_session, laptop_device)
    code, out, err = alice.run("--revoke", alice.tablet_session, "--device", alice.tablet_device)
    assert code == 1, out
    assert f"names device {laptop_device}" in err and "nothing revoked" in err
    assert "revoked device" not in out
    assert await listed(alice.phone) == {alice.phone_device, alice.tablet_device, laptop_device}
    assert alice.tablet_session in await live_sessions(alice.phone)


async def test_a_device_typed_that_the_session_does_not_name_is_refused(
    alice: Alice, live_server: LiveServer
) -> None:
    # A device the session does not name (a typo, or another row misread): refused
    # before the signed list is even consulted.
    code, out, err = alice.run("--revoke", alice.tablet_session, "--device", alice.bob_device)
    assert code == 1 and "nothing revoked" in err, out
    set_session_device(live_server, alice.tablet_session, None)
    code, out, err = alice.run("--revoke", alice.tablet_session, "--device", alice.tablet_device)
    assert code == 1 and "names no device" in err and "nothing revoked" in err, out
    assert await listed(alice.phone) == {alice.phone_device, alice.tablet_device}
    assert await live_sessions(alice.phone) == {alice.phone_session, alice.tablet_session}


async def test_this_homes_device_is_not_revoked_whatever_the_server_says(
    alice: Alice, live_server: LiveServer
) -> None:
    # The server names the phone's device on the tablet's session (and so does not flag
    # it as this session): this home compares with its own device, not the server's flag.
    set_session_device(live_server, alice.tablet_session, alice.phone_device)
    code, out, err = alice.run()
    assert code == 0, err
    (tablet_row,) = [row for row in out.splitlines() if alice.tablet_session in row]
    assert alice.phone_device in tablet_row and "this device" not in tablet_row
    code, out, err = alice.run("--revoke", alice.tablet_session, "--device", alice.phone_device)
    assert code == 1 and "this home's own device" in err, out
    assert await listed(alice.phone) == {alice.phone_device, alice.tablet_device}
    assert await live_sessions(alice.phone) == {alice.phone_session, alice.tablet_session}


async def test_the_device_of_this_session_or_of_none_is_not_revoked(
    alice: Alice, live_server: LiveServer
) -> None:
    code, _, err = alice.run("--revoke", alice.phone_session, "--device", alice.phone_device)
    assert code == 1 and "this home's own device" in err
    code, _, err = alice.run("--revoke", alice.phone_session, "--device", alice.tablet_device)
    assert code == 1 and "this session" in err
    code, _, err = alice.run("--revoke", "0" * 36, "--device", alice.tablet_device)
    assert code == 1 and "no session" in err
    code, _, err = alice.run("--device", alice.tablet_device)
    assert code != 0 and "--revoke" in err
    code, _, err = alice.run("--revoke", alice.tablet_session, "--device")
    assert code != 0 and "--device" in err
    assert await listed(alice.phone) == {alice.phone_device, alice.tablet_device}
    assert await live_sessions(alice.phone) == {alice.phone_session, alice.tablet_session}


class HostileDeviceSessions(HostileSessions):
    """A server that names hostile text as a session's device."""

    async def sessions(self) -> list[dict[str, Any]]:
        listed = await super().sessions()
        listed[1]["device_id"] = HYPERLINK + FORGED
        listed[0]["device_id"] = 7
        return listed


def test_the_servers_device_ids_are_printed_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "messenger", HostileDeviceSessions)
    result = CliRunner().invoke(app, ["sessions"])
    assert result.exit_code == 0, result.output
    inert(result.output)
