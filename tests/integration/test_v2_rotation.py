"""Identity-key rotation end to end in the terminal client (PROTOCOL.md 15.11): alice
rotates; bob follows the signed hand-over with a notice and keeps messaging in v2; alice's
second device keeps receiving and loads the new key at its next unlock. A server that
forges, rolls back or withholds the chain moves no pin: negative cases first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.v2.directory import ListRefused
from securechat.client.v2.rotation import StaleAccountKey, rotated_notice
from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import certify_device, sign_device_list
from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.protocol.v2.transitions import make_transition

from ..conftest import LiveServer
from .conftest import PASSWORDS, MakeClient

ROTATED = rotated_notice("alice")


def texts(items: list[InboxItem]) -> list[str | None]:
    return [item.text for item in items if item.kind == "message" and item.verified]


def notices(items: list[InboxItem]) -> list[str | None]:
    return [item.text for item in items if item.kind == "notice"]


def sent_notices(result: dict[str, Any]) -> list[str]:
    return [n["text"] for n in result.get("notices", [])]


async def pair(make_client: MakeClient) -> tuple[Messenger, Messenger]:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "before the rotation")
    assert texts(await bob.sync_inbox()) == ["before the rotation"]
    bob.contacts.mark_verified("alice")
    return alice, bob


def pinned_key(client: Messenger, username: str) -> bytes:
    pin = client.v2.directory.pins.rotated(username)
    if pin is not None:
        return pin.key
    identity = client.pinned_identity(username)
    assert identity is not None
    return identity.signing_key[-32:]


def serve(client: Messenger, *, device_list: Any = None, transitions: Any = None) -> None:
    """Make the server, as bob's client sees it, answer these instead (a hostile server)."""
    api = client.v2.api
    if device_list is not None:

        async def fake_list(username: str) -> Any:
            return device_list

        api.device_list = fake_list  # type: ignore[method-assign]
    if transitions is not None:

        async def fake_chain(username: str, since_key: bytes) -> dict[str, Any]:
            return {"username": username, "transitions": transitions, "more": False}

        api.identity_transitions = fake_chain  # type: ignore[method-assign]


def forged_takeover(alice: Messenger, *, sign_old: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A list under a key the server chose for alice's devices, with a transition whose old
    signature is by the server's own key (sign_old False) or missing the new one."""
    listed = alice.v2.directory.accepted("alice")
    assert listed is not None
    mallory_seed, new_seed = os.urandom(32), os.urandom(32)
    name = Username("alice")
    devices = [certify_device(new_seed, name, d.signing_key, d.dh_key, d.created_at) for d in listed.devices]
    document = sign_device_list(new_seed, name, listed.version + 1, 1, devices).to_wire()
    transition = make_transition(mallory_seed, new_seed, name, 10).to_wire()
    transition["old_key"] = b64encode(listed.account_key)  # claims to start at the pin
    if sign_old:
        transition["new_signature"] = b64encode(bytes(64))
    return document, [transition]


@pytest.mark.parametrize("variant", ["forged_old_signature", "zero_new_signature"])
async def test_a_forged_transition_is_refused_and_bob_keeps_the_pin(
    make_client: MakeClient, variant: str
) -> None:
    alice, bob = await pair(make_client)
    before = pinned_key(bob, "alice")
    document, chain = forged_takeover(alice, sign_old=variant == "zero_new_signature")
    serve(bob, device_list=document, transitions=chain)
    with pytest.raises(ListRefused) as refused:
        await bob.v2.directory.refresh("alice")
    assert refused.value.reason == "bad_signature"
    assert pinned_key(bob, "alice") == before
    assert bob.v2.directory.accepted("alice").account_key == before  # type: ignore[union-attr]
    assert bob.contacts.state.get_contact("alice").verified  # type: ignore[union-attr]
    # Nothing changed for bob: he still writes to alice's real devices under the old pin.
    await bob.send_text("alice", "still to the real alice")
    assert texts(await alice.sync_inbox()) == ["still to the real alice"]


async def test_a_withheld_chain_is_an_unsigned_change_that_blocks_sending(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await pair(make_client)
    before = pinned_key(bob, "alice")
    await alice.v2.rotate_identity()
    serve(bob, transitions=[])  # the real new list, without the hand-over
    with pytest.raises(ListRefused) as refused:
        await bob.send_text("alice", "after the rotation")
    assert refused.value.reason == "key_changed"
    assert "key_changed" in str(refused.value)
    assert pinned_key(bob, "alice") == before

    # A device only the new list names: its message stays unverifiable, device_not_listed.
    phone = Messenger(tmp_path / "home-alice-phone", live_server.url)
    try:
        await phone.login("alice", PASSWORDS["alice"])
        await phone.enable_v2()
        await phone.send_text("bob", "from a device bob cannot check")
        items = [i for i in await bob.sync_inbox() if i.kind == "message"]
        assert [(i.verified, i.reason) for i in items] == [(False, "device_not_listed")]
        assert pinned_key(bob, "alice") == before
    finally:
        await phone.close()


async def test_a_rolled_back_chain_is_refused_after_following(
    make_client: MakeClient, live_server: LiveServer
) -> None:
    alice, bob = await pair(make_client)
    await alice.v2.rotate_identity()
    first_list = alice.v2.directory.accepted("alice").to_wire()  # type: ignore[union-attr]
    first_chain = (await bob.v2.api.identity_transitions("alice", pinned_key(bob, "alice")))["transitions"]
    await alice.v2.rotate_identity()
    sent = await bob.send_text("alice", "after two rotations")
    assert sent_notices(sent)[:1] == [ROTATED]
    followed = pinned_key(bob, "alice")
    assert followed == alice.v2.directory.accepted("alice").account_key  # type: ignore[union-attr]

    # The server replays the first rotation and the list under its key.
    serve(bob, device_list=first_list, transitions=first_chain)
    with pytest.raises(ListRefused) as refused:
        await bob.v2.directory.refresh("alice")
    assert refused.value.reason in ("transition_invalid", "device_list_rollback")
    assert pinned_key(bob, "alice") == followed


async def test_bob_follows_a_rotation_and_both_keep_messaging(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await pair(make_client)
    tablet = Messenger(tmp_path / "home-alice-tablet", live_server.url)
    try:
        await tablet.login("alice", PASSWORDS["alice"])
        await tablet.enable_v2()
        await alice.send_text("bob", "with a tablet")
        await bob.sync_inbox()
        # Online before the rotation: the setups made for it so far bound the old key.
        assert texts(await tablet.sync_inbox()) == ["with a tablet"]
        old_key = pinned_key(bob, "alice")

        done = await alice.v2.rotate_identity()
        assert done.old_key == old_key and done.new_key != old_key

        # bob follows on his next send: the notice, the pin moved, verified mark off.
        sent = await bob.send_text("alice", "after your rotation")
        assert sent_notices(sent) == [ROTATED]
        assert pinned_key(bob, "alice") == done.new_key
        assert not bob.contacts.state.get_contact("alice").verified  # type: ignore[union-attr]
        theirs = bob.v2.directory.pins.safety_identity("alice")
        assert theirs is not None and theirs.signing_key[-32:] == done.new_key
        assert texts(await alice.sync_inbox()) == ["after your rotation"]

        # alice answers from both devices; bob reads them as verified v2 messages.
        await alice.send_text("bob", "from the laptop, new key")
        await tablet.send_text("bob", "from the tablet")
        got = await bob.sync_inbox()
        assert texts(got) == ["from the laptop, new key", "from the tablet"]

        # The tablet kept receiving, followed its own account's rotation...
        assert texts(await tablet.sync_inbox()) == [
            "after your rotation",
            "from the laptop, new key",
        ]
        assert pinned_key(tablet, "alice") == done.new_key
        # ...but holds only the old private key: it must not sign a list with it.
        with pytest.raises(StaleAccountKey):
            await tablet.v2.revoke(alice.v2.device().device_id)  # type: ignore[union-attr]
        # The server refuses a list under the old key too, whatever a client believes.
        listed = alice.v2.directory.accepted("alice")
        assert listed is not None
        seed = tablet.identity.signing_private.private_bytes_raw()  # type: ignore[union-attr]
        assert ed25519_raw_public(seed) == old_key
        stale = sign_device_list(seed, Username("alice"), listed.version + 1, 1, list(listed.devices))
        with pytest.raises(Exception) as refused:
            await tablet.v2.api.publish_device_list(stale.to_wire())
        assert getattr(refused.value, "body", {}).get("reason") == "device_list_invalid"

        # At its next unlock it loads the new key (sealed under the password) and can sign.
        await tablet.unlock(PASSWORDS["alice"])
        await tablet.enable_v2()
        await tablet.v2.revoke(alice.v2.device().device_id)  # type: ignore[union-attr]
        reply = await bob.send_text("alice", "to the tablet alone")
        assert sent_notices(reply) == ["alice removed a device"]
        assert texts(await tablet.sync_inbox()) == ["to the tablet alone"]
    finally:
        await tablet.close()


async def test_a_new_login_after_rotation_and_a_password_change_certifies_itself(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await pair(make_client)
    done = await alice.v2.rotate_identity()
    new_password = "a brand new passphrase 77"
    await alice.change_password(PASSWORDS["alice"], new_password)
    phone = Messenger(tmp_path / "home-alice-phone", live_server.url)
    try:
        await phone.login("alice", new_password)
        await phone.enable_v2()  # certified by the rotated key, opened with the new password
        listed = phone.v2.directory.accepted("alice")
        assert listed is not None and listed.account_key == done.new_key
        assert len(listed.devices) == 2
        sent = await bob.send_text("alice", "hello phone")
        assert sent_notices(sent)[:1] == [ROTATED]
        assert texts(await phone.sync_inbox()) == ["hello phone"]
    finally:
        await phone.close()


async def test_a_password_change_on_a_device_that_did_not_rotate_seals_the_key_again(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, _ = await pair(make_client)
    tablet = Messenger(tmp_path / "home-alice-tablet", live_server.url)
    phone = Messenger(tmp_path / "home-alice-phone", live_server.url)
    try:
        await tablet.login("alice", PASSWORDS["alice"])
        await tablet.enable_v2()
        done = await alice.v2.rotate_identity()
        # The tablet never loaded the new key: it opens the old seal with the old password.
        new_password = "another passphrase, seventeen"
        await tablet.change_password(PASSWORDS["alice"], new_password)
        await phone.login("alice", new_password)
        await phone.enable_v2()
        listed = phone.v2.directory.accepted("alice")
        assert listed is not None and listed.account_key == done.new_key and len(listed.devices) == 3
    finally:
        await tablet.close()
        await phone.close()
