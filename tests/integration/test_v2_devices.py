"""Devices of one account in v2 (PROTOCOL.md 15.3, 15.5): alice adds a second device (a
second client home) mid-conversation, then revokes it from the first; a setup without
a one-time prekey left still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.v2.client import Revoked

from ..conftest import LiveServer, server_database
from .conftest import PASSWORDS, MakeClient


def texts(items: list[InboxItem]) -> list[str | None]:
    return [item.text for item in items if item.kind == "message" and item.verified]


def notices(items: list[InboxItem]) -> list[str | None]:
    return [item.text for item in items if item.kind == "notice"]


def sent_notices(result: dict) -> list[str]:  # type: ignore[type-arg]
    return [n["text"] for n in result.get("notices", [])]


async def test_a_second_device_joins_mid_conversation_and_is_revoked(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "before the tablet")
    await bob.send_text("alice", "reply before the tablet")
    assert texts(await bob.sync_inbox()) == ["before the tablet"]
    assert texts(await alice.sync_inbox()) == ["reply before the tablet"]

    tablet = Messenger(tmp_path / "home-alice-tablet", live_server.url)
    try:
        await tablet.login("alice", PASSWORDS["alice"])
        tablet_id = await tablet.enable_v2()
        assert tablet_id != alice.v2.device().device_id  # type: ignore[union-attr]

        # alice's first device learns of it on its next send (409, lists fetched again).
        first = await alice.send_text("bob", "now with a tablet")
        assert sent_notices(first) == ["alice added a new device"]
        items = await bob.sync_inbox()
        assert notices(items) == ["alice added a new device"]
        assert texts(items) == ["now with a tablet"]
        await bob.send_text("alice", "hello both of you")
        # The tablet gets what was sent since it joined, not before: its own account's
        # message and bob's reply, each opened through a session set up for it.
        got = await tablet.sync_inbox()
        assert texts(got) == ["now with a tablet", "hello both of you"]
        assert [i.sender for i in got if i.kind == "message"] == ["alice", "bob"]
        assert texts(await alice.sync_inbox()) == ["hello both of you"]
        assert [d.this_device for d in await tablet.v2.devices()].count(True) == 1

        # Revoked from the first device: the tablet receives nothing afterwards.
        await alice.v2.revoke(tablet_id)
        reply = await bob.send_text("alice", "after the revocation")
        assert sent_notices(reply) == ["alice removed a device"]
        assert texts(await alice.sync_inbox()) == ["after the revocation"]
        # The tablet is told once (it goes on in v1) rather than failing.
        told = [i for i in await tablet.sync_inbox() if i.kind == "notice"]
        assert len(told) == 1 and "revoked" in (told[0].text or "")
        with pytest.raises(Revoked):
            await tablet.enable_v2()  # it does not put itself back
        assert tablet_id not in [d.device_id for d in await alice.v2.devices()]
        with server_database(live_server) as db:
            assert db.execute(
                "SELECT count(*) FROM device_inbox WHERE device_id = ?", (tablet_id,)
            ).fetchone() == (0,)
    finally:
        await tablet.close()


async def test_a_first_message_without_a_one_time_prekey_left(
    make_client: MakeClient, live_server: LiveServer
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    bob_id = await bob.enable_v2()
    db = server_database(live_server)
    try:
        db.execute("DELETE FROM one_time_prekeys WHERE device_id = ?", (bob_id,))
    finally:
        db.close()
    await alice.send_text("bob", "set up from the signed prekey alone")
    assert texts(await bob.sync_inbox()) == ["set up from the signed prekey alone"]
    await bob.send_text("alice", "and answered")
    assert texts(await alice.sync_inbox()) == ["and answered"]
    # Replenished: bob's device uploads a new batch once fewer than 20 are left.
    assert await bob.v2.api.one_time_prekey_count(bob_id) == 100
