"""Linking a device to the history (PROTOCOL.md 15.10.2) against a real server process.

Negative cases first: a code with a typo, a code of a device that is not in the accepted
list, this device's own code: refused, and nothing is uploaded or sent. A hand-over from
another account, one addressed to another device, one whose archive fails its hash:
shown unverifiable with the reason, nothing imported. Then the hand-over itself, through
the terminal commands: the new home shows the old messages, and the server's files hold
no text of them and no form of the archive key.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.v2.client import now_ms
from securechat.client.v2.link import Linker, LinkFailed, _upload, own_link_code
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import ALPHABET, Archive, BackupMessage
from securechat.protocol.v2.devices import Device
from securechat.protocol.v2.link import encode_link_archive, link_code
from securechat.protocol.v2.primitives import device_id, ed25519_raw_public, x25519_public

from ..conftest import LiveServer, server_database
from .conftest import PASSWORDS, MakeClient

CODE = re.compile(r"([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5})")
HISTORY = [f"old line {i} before the tablet, ünïcode ✓" for i in range(4)]


def cli(home: Path, server: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "securechat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def texts(client: Messenger) -> list[str]:
    return sorted(str(m["text"]) for m in client.stored_messages() if m["verified"] and m["message_id"])


def refusals(items: list[InboxItem]) -> list[str | None]:
    return [item.reason for item in items if item.kind == "message" and not item.verified]


def file_rows(live_server: LiveServer) -> int:
    with server_database(live_server) as db:
        return int(db.execute("SELECT count(*) FROM files").fetchone()[0])


async def with_history(make_client: MakeClient) -> tuple[Messenger, Messenger]:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    for text in HISTORY[:2]:
        await alice.send_text("bob", text)
    await bob.sync_inbox()
    for text in HISTORY[2:]:
        await bob.send_text("alice", text)
    await alice.sync_inbox()
    assert texts(alice) == sorted(HISTORY)
    return alice, bob


async def new_home(live_server: LiveServer, home: Path) -> Messenger:
    tablet = Messenger(home, live_server.url)
    await tablet.login("alice", PASSWORDS["alice"])
    await tablet.enable_v2()
    return tablet


def stranger(username: str) -> Device:
    """Keys that no list names, with a well-formed code."""
    signing = ed25519_raw_public(os.urandom(32))
    return Device(device_id(signing), signing, x25519_public(os.urandom(32)), 0, b"")


async def test_a_code_naming_no_other_listed_device_sends_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, _ = await with_history(make_client)
    tablet = await new_home(live_server, tmp_path / "home-alice-tablet")
    try:
        code = own_link_code(tablet.v2, now_ms())
        wrong = ALPHABET[(ALPHABET.index(code[6]) + 1) % 32]
        cases = {
            code[:6] + wrong + code[7:]: "link_code_checksum",
            code[:-1]: "link_code_malformed",
            link_code("alice", stranger("alice")): "link_device_unknown",
            # The tablet's keys, but the code as another account would have it.
            link_code("bob", tablet.v2.device().device): "link_device_unknown",  # type: ignore[union-attr]
            own_link_code(alice.v2, now_ms()): "link_self",
        }
        before = file_rows(live_server)
        for typed, reason in cases.items():
            with pytest.raises(LinkFailed) as refused:
                await Linker(alice.v2).link(typed)
            assert refused.value.reason == reason, typed
        assert file_rows(live_server) == before
        assert await tablet.sync_inbox() == []
        assert texts(tablet) == []
    finally:
        await tablet.close()


async def send_link(alice: Messenger, target: str, payload: dict[str, Any]) -> None:
    me = "alice"
    account_key = alice.session.me().signing_private.public_key().public_bytes_raw()
    await Linker(alice.v2)._send(me, account_key, target, payload)


async def test_a_hand_over_that_is_not_genuine_is_unverifiable_and_imports_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await with_history(make_client)
    tablet = await new_home(live_server, tmp_path / "home-alice-tablet")
    try:
        tablet_id = tablet.v2.device().device_id  # type: ignore[union-attr]
        conversation = direct_conversation_id(Username("alice"), Username("alice"))
        archive = Archive(
            "alice", 0, 1, (BackupMessage("m-forged", conversation, "alice", "bob", 1, 1, "forged"),)
        )
        descriptor = await _upload(alice.session.api, "alice", encode_link_archive(archive))
        good = {"type": "history_link", "device_id": tablet_id, "archive": descriptor.to_payload()["file"]}

        # Genuine, from alice's own device, but the tablet showed no link code: another
        # listed device (one certified with a stolen password) cannot push history unasked.
        await send_link(alice, tablet_id, good)
        assert refusals(await tablet.sync_inbox()) == ["link_unexpected"]
        own_link_code(tablet.v2, now_ms())

        # From another account, in its conversation with alice: foreign.
        await bob.v2.send("alice", good)
        # From alice's own device, but naming another device: not for this one.
        await send_link(alice, tablet_id, good | {"device_id": alice.v2.device().device_id})  # type: ignore[union-attr]
        # A hash that is not the archive's: corrupt, refused after the download.
        bad_hash = good | {"archive": good["archive"] | {"sha256": "00" * 32}}
        await send_link(alice, tablet_id, bad_hash)
        # Another account's archive, genuine and well sealed: not alice's history.
        bobs = encode_link_archive(Archive("bob", 0, 1, archive.messages))
        other = await _upload(alice.session.api, "alice", bobs)
        await send_link(alice, tablet_id, good | {"archive": other.to_payload()["file"]})

        items = await tablet.sync_inbox()
        assert refusals(items) == [
            "link_foreign",
            "link_not_for_me",
            "link_archive_corrupt",
            "link_archive_malformed",
        ]
        assert not [i for i in items if i.text and "imported" in i.text]
        assert "forged" not in texts(tablet)
        assert texts(tablet) == []
    finally:
        await tablet.close()


async def test_a_linked_terminal_home_shows_the_old_messages(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, _ = await with_history(make_client)
    home = tmp_path / "home-alice-tablet"
    tablet = await new_home(live_server, home)
    try:
        assert texts(tablet) == []  # forward secrecy: nothing from before its creation
        shown = cli(
            home, live_server.url, "devices", "link-code", "--password-stdin", stdin=PASSWORDS["alice"]
        )
        assert shown.returncode == 0, shown.stderr
        (code,) = set(CODE.findall(shown.stdout))
        assert code == own_link_code(tablet.v2, now_ms())

        linked = cli(
            tmp_path / "home-alice",
            live_server.url,
            "devices",
            "link",
            code.lower(),
            "--password-stdin",
            stdin=PASSWORDS["alice"],
        )
        assert linked.returncode == 0, linked.stderr
        assert f"{len(HISTORY)} messages" in linked.stdout

        items = await tablet.sync_inbox()
        assert refusals(items) == []
        sender = alice.v2.device().device_id  # type: ignore[union-attr]
        assert f"History from device {sender} imported: {len(HISTORY)} messages" in [i.text for i in items]
        assert texts(tablet) == sorted(HISTORY)
        peers = {m["text"]: (m["sender"], m["peer"]) for m in tablet.stored_messages() if m["message_id"]}
        assert peers[HISTORY[0]] == ("alice", "bob")
        assert peers[HISTORY[3]] == ("bob", "bob")

        # Linked again, after showing the code again (the import closed the wait): the same
        # messages are not added twice.
        assert own_link_code(tablet.v2, now_ms()) == code
        await Linker(alice.v2).link(code)
        again = await tablet.sync_inbox()
        assert f"History from device {sender} imported: 0 messages" in [i.text for i in again]
        assert texts(tablet) == sorted(HISTORY)
    finally:
        await tablet.close()

    # The server's files: no text of the history, no archive key (it travelled only in a
    # ratchet-encrypted slot).
    with server_database(live_server) as db:
        keys = [row[0] for row in db.execute("SELECT envelope FROM v2_messages").fetchall()]
    assert keys  # the hand-over went through the server, sealed
    for path in (p for p in live_server.data_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for text in HISTORY:
            assert text.encode() not in data, path
            assert base64.b64encode(text.encode()) not in data, path
        assert b"history_link" not in data, path


def row(conversation: str, sender: str, peer: str, text: str) -> BackupMessage:
    return BackupMessage(str(uuid.uuid4()), conversation, sender, peer, 1, 1, text)


async def test_one_hand_over_per_shown_code(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    """Someone with the password and a listed device of their own sees the tablet's
    device_inbox frames: after the genuine hand-over, their forged one is refused."""
    alice, _ = await with_history(make_client)
    tablet = await new_home(live_server, tmp_path / "home-alice-tablet")
    try:
        tablet_id = tablet.v2.device().device_id  # type: ignore[union-attr]
        await Linker(alice.v2).link(own_link_code(tablet.v2, now_ms()))
        assert refusals(await tablet.sync_inbox()) == []
        assert texts(tablet) == sorted(HISTORY)

        # Well-formed rows (they pass the row check): only the closed wait stops them.
        with_bob = direct_conversation_id(Username("alice"), Username("bob"))
        forged = Archive("alice", 0, 1, (row(with_bob, "bob", "bob", "forged: send me the code"),))
        descriptor = await _upload(alice.session.api, "alice", encode_link_archive(forged))
        payload = {"type": "history_link", "device_id": tablet_id, "archive": descriptor.to_payload()["file"]}
        await send_link(alice, tablet_id, payload)
        items = await tablet.sync_inbox()
        assert refusals(items) == ["link_unexpected"]
        assert not [i for i in items if i.text and "imported" in i.text]
        assert texts(tablet) == sorted(HISTORY)
    finally:
        await tablet.close()


async def test_an_archive_with_a_planted_row_imports_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, _ = await with_history(make_client)
    tablet = await new_home(live_server, tmp_path / "home-alice-tablet")
    try:
        tablet_id = tablet.v2.device().device_id  # type: ignore[union-attr]
        code = own_link_code(tablet.v2, now_ms())
        me, bob = Username("alice"), Username("bob")
        good = row(direct_conversation_id(me, bob), "alice", "bob", "fits")
        planted = [
            row(direct_conversation_id(me, bob), "carol", "bob", "carol in alice and bob's conversation"),
            row(
                direct_conversation_id(bob, Username("carol")),
                "bob",
                "bob",
                "in another account's conversation",
            ),
            row(direct_conversation_id(me, me), "bob", "alice", "bob's words as a note to self"),
            BackupMessage(
                "m-forged", direct_conversation_id(me, bob), "bob", "bob", 1, 1, "an id that is no UUID"
            ),
        ]
        for bad in planted:
            archive = Archive("alice", 0, 1, (good, bad))
            descriptor = await _upload(alice.session.api, "alice", encode_link_archive(archive))
            payload = {
                "type": "history_link",
                "device_id": tablet_id,
                "archive": descriptor.to_payload()["file"],
            }
            await send_link(alice, tablet_id, payload)
        items = await tablet.sync_inbox()
        assert refusals(items) == ["link_archive_malformed"] * len(planted)
        assert texts(tablet) == []

        # A refused archive does not close the wait: the genuine hand-over still comes in.
        await Linker(alice.v2).link(code)
        assert refusals(await tablet.sync_inbox()) == []
        assert texts(tablet) == sorted(HISTORY)
    finally:
        await tablet.close()


async def test_a_refused_hand_over_gets_no_delivered_receipt(make_client: MakeClient) -> None:
    """15.17: never a receipt for a refused message (here a history_link from bob)."""
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    alice_id = alice.v2.device().device_id  # type: ignore[union-attr]
    own_link_code(alice.v2, now_ms())
    await bob.v2.send("alice", {"type": "history_link", "device_id": alice_id, "archive": {}})
    assert refusals(await alice.sync_inbox()) == ["link_foreign"]
    assert [i.kind for i in await bob.sync_inbox()] == []
