"""The account key sealed under the password (PROTOCOL.md 15.11, 15.16): stored with a
rotation, served only to its own account, replaced after a password change; a seal of
another key is refused with a stable code, never stored, never a 500."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import seal_key_bundle
from securechat.protocol.v2.account_key_seal import open_account_key, seal_account_key
from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.server.storage import identity_transitions as store

from .conftest import RegisteredUser, RegisterUser
from .support import bearer, material
from .test_devices import account_seed
from .test_identity_transitions import chain, list_under, new_seed, rotate, setup, transition

SEAL = "/api/v1/account/identity-key-seal"
PASSWORD = "/api/v1/account/password"
WRAP = bytes(range(32))
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


def change_body(user: RegisteredUser, generation: int, seal: dict[str, Any] | None) -> dict[str, Any]:
    new = material(user.name, generation)
    body: dict[str, Any] = {
        "current_auth_key": user.auth_key,
        "new_auth_key": new.auth_key,
        "kdf": new.kdf.to_wire(),
        "key_bundle": seal_key_bundle(new.identity, new.derived.wrap_key),
    }
    return body if seal is None else {**body, "account_key_seal": seal}


async def change_password(
    http: httpx.AsyncClient, user: RegisteredUser, generation: int, seal: dict[str, Any] | None
) -> httpx.Response:
    return await http.post(PASSWORD, headers=user.headers, json=change_body(user, generation, seal))


async def test_a_seal_is_stored_with_the_rotation_and_served_to_its_account_only(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, laptop = await setup(http, register_user)
    k1, k2 = account_seed(alice.identity), new_seed("alice")
    missing = await http.get(SEAL, headers=alice.headers)
    assert (missing.status_code, missing.json()) == (200, {"account_key_seal": None})

    # A seal of another key than the new one: refused, and nothing of the rotation stored.
    wrong = seal_account_key(WRAP, Username("alice"), new_seed("alice", 9)).to_wire()
    body = {"transition": transition(k1, k2, alice, 10), "device_list": list_under(k2, alice, [laptop], 2)}
    refused = await rotate(http, alice, {**body, "account_key_seal": wrong})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_input"
    assert (await http.get(SEAL, headers=alice.headers)).json() == {"account_key_seal": None}
    for malformed in ({"v": 2}, {**wrong, "v": 3}, {**wrong, "ciphertext": "AAAA"}):
        answer = await rotate(http, alice, {**body, "account_key_seal": malformed})
        assert answer.status_code == 422, answer.text

    sealed = seal_account_key(WRAP, Username("alice"), k2).to_wire()
    assert (await rotate(http, alice, {**body, "account_key_seal": sealed})).status_code == 200
    served = (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"]
    assert served == sealed
    assert open_account_key(WRAP, Username("alice"), served) == k2
    # bob's own seal is not alice's: he has none.
    assert (await http.get(SEAL, headers=bob.headers)).json() == {"account_key_seal": None}

    # Sealed again by a password change, in the same request: only the current key.
    other = bytes(reversed(WRAP))
    stale = seal_account_key(other, Username("alice"), k1).to_wire()
    answer = await change_password(http, alice, 1, stale)
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "identity_key_stale")
    again = seal_account_key(other, Username("alice"), k2).to_wire()
    assert (await change_password(http, alice, 1, again)).status_code == 200
    served = (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"]
    assert open_account_key(other, Username("alice"), served) == k2
    assert ed25519_raw_public(k2) != ed25519_raw_public(k1)


async def test_a_seal_cannot_be_sent_before_any_rotation(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice, _, _ = await setup(http, register_user)
    sealed = seal_account_key(WRAP, Username("alice"), account_seed(alice.identity)).to_wire()
    answer = await change_password(http, alice, 1, sealed)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "no_account_key_seal")
    await login("alice", alice.auth_key)  # the password did not change
    assert (await change_password(http, alice, 1, None)).status_code == 200


async def test_a_session_alone_cannot_replace_the_seal(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    """A stolen access token (no password) must not overwrite the seal with garbage: the
    seal changes only with a rotation or inside a password change that proves the current
    password (counted as a login for intrusion detection)."""
    alice, _, laptop = await setup(http, register_user)
    k1, k2 = account_seed(alice.identity), new_seed("alice")
    sealed = seal_account_key(WRAP, Username("alice"), k2).to_wire()
    body = {"transition": transition(k1, k2, alice, 10), "device_list": list_under(k2, alice, [laptop], 2)}
    assert (await rotate(http, alice, {**body, "account_key_seal": sealed})).status_code == 200
    stolen = bearer((await login("alice", alice.auth_key))["access_token"])
    garbage = {**sealed, "iv": b64encode(os.urandom(12)), "ciphertext": b64encode(os.urandom(48))}
    put = await http.put(SEAL, headers=stolen, json={"account_key_seal": garbage})
    assert put.status_code == 405 and put.json()["error"]["code"]
    thief = RegisteredUser(alice.tokens, alice.identity, b64encode(os.urandom(32)), alice.kdf)
    wrong = await http.post(PASSWORD, headers=stolen, json=change_body(thief, 1, garbage))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_credentials")
    # A password change that leaves the rotated key's seal behind is refused as a whole.
    missing = await change_password(http, alice, 1, None)
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "account_key_seal")
    assert (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"] == sealed
    await login("alice", alice.auth_key)


async def reseal_racing_rotation(
    http: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password change re-seals K2 and is slowed down between reading the current key
    and writing; a rotation K2 -> K3 is sent meanwhile. Whatever order they take, the
    seal left is of the account's current key (the review's race left K2's)."""
    alice, _, laptop = await setup(http, register_user)
    k1, k2, k3 = account_seed(alice.identity), new_seed("alice", 1), new_seed("alice", 2)
    first = {"transition": transition(k1, k2, alice, 10), "device_list": list_under(k2, alice, [laptop], 2)}
    sealed = seal_account_key(WRAP, Username("alice"), k2).to_wire()
    assert (await rotate(http, alice, {**first, "account_key_seal": sealed})).status_code == 200
    original = store.put_account_key_seal
    k2_public = ed25519_raw_public(k2)
    writing = asyncio.Event()

    async def slow(conn: AsyncConnection, user_id: int, account_key: bytes, document: str, now: int) -> None:
        if account_key == k2_public:
            writing.set()
            await asyncio.sleep(0.3)
        await original(conn, user_id, account_key, document, now)

    monkeypatch.setattr(store, "put_account_key_seal", slow)
    new_wrap = bytes(reversed(WRAP))
    reseal = seal_account_key(new_wrap, Username("alice"), k2).to_wire()
    second = {
        "transition": transition(k2, k3, alice, 20),
        "device_list": list_under(k3, alice, [laptop], 3),
        "account_key_seal": seal_account_key(new_wrap, Username("alice"), k3).to_wire(),
    }

    async def rotate_while_writing() -> httpx.Response:
        await writing.wait()
        return await rotate(http, alice, second)

    changed, rotated = await asyncio.gather(change_password(http, alice, 1, reseal), rotate_while_writing())
    assert (changed.status_code, rotated.status_code) == (200, 200), (changed.text, rotated.text)
    served = (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"]
    current = (await chain(http, alice, "alice", ed25519_raw_public(k1))).json()["current_key"]
    assert served["account_key"] == current == b64encode(ed25519_raw_public(k3))
    assert open_account_key(new_wrap, Username("alice"), served) == k3


async def test_a_reseal_racing_a_rotation_leaves_the_current_key_sealed(
    http: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reseal_racing_rotation(http, register_user, monkeypatch)
