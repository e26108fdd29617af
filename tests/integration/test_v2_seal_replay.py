"""The account key sealed under the password, as a hostile server or a lost race serves it
(PROTOCOL.md 15.11): a seal of a retired key made under the same password opens, but the
terminal keeps it only if it is the account's current key, never in place of the key it
holds; and a password change obtains the key before anything changes, sending the seal
in the change itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from securechat.client.messenger import Messenger
from securechat.client.v2.rotation import SealNotCurrent, StaleAccountKey
from securechat.protocol.v2.primitives import ed25519_raw_public

from ..conftest import LiveServer
from .conftest import PASSWORDS, MakeClient


def serve_seal(client: Messenger, seal: dict[str, Any]) -> None:
    async def replayed() -> dict[str, Any]:
        return {"account_key_seal": seal}

    client.v2.api.account_key_seal = replayed  # type: ignore[method-assign]


def held_public(client: Messenger) -> bytes:
    seed = client.v2.directory.keys.held()
    assert seed is not None
    return ed25519_raw_public(seed)


async def test_a_replayed_old_seal_does_not_replace_the_held_key(make_client: MakeClient) -> None:
    alice = await make_client("alice")
    await alice.enable_v2()
    await alice.v2.rotate_identity()  # K1 -> K2, sealed under the password
    old_seal = (await alice.v2.api.account_key_seal())["account_key_seal"]
    done = await alice.v2.rotate_identity()  # K2 -> K3
    assert held_public(alice) == done.new_key
    serve_seal(alice, old_seal)  # the server serves K2's seal again: it still opens
    await alice.unlock(PASSWORDS["alice"])
    with pytest.raises(SealNotCurrent, match="not your account's current identity key"):
        await alice.enable_v2()
    assert held_public(alice) == done.new_key
    # ...and a password change refuses it too, before the password changes.
    with pytest.raises(SealNotCurrent):
        await alice.v2.directory.keys.load(
            alice.v2.session.me().username, alice.session.wrap_key, done.new_key
        )
    del alice.v2.api.account_key_seal  # the honest server again
    again = await alice.v2.rotate_identity()  # K3 still signs: the account can rotate
    assert again.old_key == done.new_key


async def test_a_password_change_that_cannot_seal_the_current_key_changes_nothing(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    await alice.enable_v2()
    await alice.v2.rotate_identity()
    old_seal = (await alice.v2.api.account_key_seal())["account_key_seal"]
    tablet = Messenger(tmp_path / "home-alice-tablet", live_server.url)
    try:
        await tablet.login("alice", PASSWORDS["alice"])
        await tablet.enable_v2()
        done = await alice.v2.rotate_identity()  # the tablet holds K2, the account is at K3
        serve_seal(tablet, old_seal)  # and the server gives it K2's seal
        with pytest.raises((SealNotCurrent, StaleAccountKey)):
            await tablet.change_password(PASSWORDS["alice"], "a new passphrase, nineteen")
        # The password did not change: the old one still logs in and opens K3's seal.
        del tablet.v2.api.account_key_seal
        await tablet.login("alice", PASSWORDS["alice"])
        await tablet.enable_v2()
        assert held_public(tablet) == done.new_key
    finally:
        await tablet.close()
