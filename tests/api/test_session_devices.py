"""The device of a session (PROTOCOL.md 15.16, device credentials): when a device proves
itself in a session (a credential issued), ``GET /sessions`` names it on that session, so
a client can offer to revoke the device behind a session. A hint for the interface only:
clients offer only devices of the account's signed list.

mallory holds another session of alice's account, or is bob: neither can put a device on
a session that is not the one asking, nor read which device another account's session is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .conftest import RegisterUser
from .device_auth_support import answer, challenge, device_token, sign
from .support import bearer
from .test_devices import device_list, error, make_device, publish

Login = Callable[[str, str], Awaitable[dict[str, Any]]]


async def sessions(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The caller's sessions by id."""
    response = await http.get("/api/v1/sessions", headers=headers)
    assert response.status_code == 200, response.text
    return {session["id"]: session for session in response.json()["sessions"]}


def current(listed: dict[str, Any]) -> dict[str, Any]:
    (mine,) = [session for session in listed.values() if session["current"]]
    return mine


async def test_a_session_names_the_device_that_proved_itself_in_it(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    laptop, phone = make_device(alice.identity, "laptop"), make_device(alice.identity, "phone")
    assert (await publish(http, alice, device_list(alice.identity, [laptop, phone], 1))).status_code == 200
    other = bearer((await login("alice", alice.auth_key))["access_token"])

    # Before any device proved itself, no session has one.
    before = await sessions(http, alice.headers)
    assert len(before) == 2 and all(session["device_id"] is None for session in before.values())

    await device_token(http, alice.headers, laptop)
    mine = current(await sessions(http, alice.headers))
    assert mine["device_id"] == laptop.device_id
    # Only the session that asked got it: the other session still has none.
    assert current(await sessions(http, other))["device_id"] is None

    # A second device proving itself in the same session replaces the first (one client).
    await device_token(http, alice.headers, phone)
    assert current(await sessions(http, alice.headers))["device_id"] == phone.device_id
    await device_token(http, other, laptop)
    listed = await sessions(http, alice.headers)
    assert sorted(session["device_id"] for session in listed.values()) == sorted(
        [phone.device_id, laptop.device_id]
    )


async def test_a_failed_proof_names_no_device(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    laptop, phone = make_device(alice.identity, "laptop"), make_device(alice.identity, "phone")
    assert (await publish(http, alice, device_list(alice.identity, [laptop, phone], 1))).status_code == 200
    # The session holds the laptop's key only: a signature of the laptop offered for the
    # phone does not verify, and records nothing.
    asked = await challenge(http, alice.headers, phone.device_id)
    nonce = asked.json()["nonce"]
    refused = await answer(
        http, alice.headers, phone.device_id, nonce, sign(laptop, nonce, as_device=phone.device_id)
    )
    error(refused, 401, "device_auth_failed")
    assert current(await sessions(http, alice.headers))["device_id"] is None


async def test_another_account_sees_no_device_of_alices_sessions(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop = make_device(alice.identity, "laptop")
    assert (await publish(http, alice, device_list(alice.identity, [laptop], 1))).status_code == 200
    await device_token(http, alice.headers, laptop)
    # bob cannot prove alice's device in his session: it is not in his list.
    error(await challenge(http, bob.headers, laptop.device_id), 404, "device_not_listed")
    bobs = await sessions(http, bob.headers)
    assert [session["device_id"] for session in bobs.values()] == [None]
    assert laptop.device_id not in str(bobs)
    assert current(await sessions(http, alice.headers))["device_id"] == laptop.device_id
