"""Identity-key rotation on the server (PROTOCOL.md 15.11, 15.16): an account stores a
transition signed by its current key and the new one together with its first device list
under the new key, and anyone logged in fetches the chain from a key they pinned. Every
bad input is a 4xx with a stable code, never a 500; the stored list always verifies under
the stored key; v1's key directory is left as it was."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from securechat.client.core.v2 import IdentityPin, TransitionAccepted, accept_identity_transition
from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import certify_device, check_device_list, sign_device_list
from securechat.protocol.v2.primitives import ed25519_raw_public, ed25519_sign_raw
from securechat.protocol.v2.transitions import make_transition
from securechat.server.services import devices as device_service

from .conftest import RegisteredUser, RegisterUser
from .test_devices import DeviceKeys, account_seed, device_list, error, make_device, now_ms, publish, secret

PATH = "/api/v1/account/identity-transition"


def new_seed(name: str, n: int = 1) -> bytes:
    return secret(name, "identity", str(n))


def list_under(seed: bytes, user: RegisteredUser, devices: list[DeviceKeys], version: int) -> dict[str, Any]:
    """The devices re-certified by ``seed`` (same device keys), signed by it."""
    recertified = [
        certify_device(
            seed, user.identity.username, d.device.signing_key, d.device.dh_key, d.device.created_at
        )
        for d in devices
    ]
    return sign_device_list(seed, user.identity.username, version, now_ms(), recertified).to_wire()


def transition(old: bytes, new: bytes, user: RegisteredUser, at: int) -> dict[str, Any]:
    return make_transition(old, new, user.identity.username, at).to_wire()


async def rotate(http: httpx.AsyncClient, user: RegisteredUser, body: object) -> httpx.Response:
    return await http.post(PATH, headers=user.headers, json=body)


async def chain(http: httpx.AsyncClient, viewer: RegisteredUser, name: str, key: bytes) -> httpx.Response:
    return await http.get(
        f"/api/v1/users/{name}/identity-transitions", params={"since_key": key.hex()}, headers=viewer.headers
    )


async def setup(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> tuple[RegisteredUser, RegisteredUser, DeviceKeys]:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop = make_device(alice.identity, "laptop")
    assert (await publish(http, alice, device_list(alice.identity, [laptop], version=1))).status_code == 200
    return alice, bob, laptop


async def test_a_rotation_is_stored_with_its_list_and_contacts_follow_the_chain(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, laptop = await setup(http, register_user)
    k1, k2, k3 = account_seed(alice.identity), new_seed("alice", 1), new_seed("alice", 2)
    v1_keys_before = (await http.get("/api/v1/users/alice/keys", headers=bob.headers)).json()

    answer = await rotate(
        http,
        alice,
        {"transition": transition(k1, k2, alice, 1000), "device_list": list_under(k2, alice, [laptop], 2)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "seq": 1,
        "new_key": b64encode(ed25519_raw_public(k2)),
        "version": 2,
        "devices": [laptop.device_id],
        "added": [],
        "removed": [],
    }
    second = {
        "transition": transition(k2, k3, alice, 2000),
        "device_list": list_under(k3, alice, [laptop], 3),
    }
    assert (await rotate(http, alice, second)).status_code == 200

    # The stored list verifies under the stored key; bob follows the chain from his pin.
    served = (await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json()
    check_device_list(served, Username("alice"), ed25519_raw_public(k3), None)
    fetched = await chain(http, bob, "alice", ed25519_raw_public(k1))
    assert fetched.status_code == 200, fetched.text
    body = fetched.json()
    assert body["current_key"] == served["account_key"] and body["more"] is False
    assert [t["at"] for t in body["transitions"]] == [1000, 2000]
    decision = accept_identity_transition(
        IdentityPin(Username("alice"), ed25519_raw_public(k1), None, True),
        b64decode(served["account_key"]),
        body["transitions"],
    )
    assert isinstance(decision, TransitionAccepted) and decision.pin.key == ed25519_raw_public(k3)
    # From the middle key: one step; from the current key: none.
    assert len((await chain(http, bob, "alice", ed25519_raw_public(k2))).json()["transitions"]) == 1
    assert (await chain(http, bob, "alice", ed25519_raw_public(k3))).json()["transitions"] == []
    # v1's key directory is left as it was (PROTOCOL.md 15.11): the registered keys.
    assert (await http.get("/api/v1/users/alice/keys", headers=bob.headers)).json() == v1_keys_before


async def test_after_a_rotation_lists_under_the_old_key_are_refused(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, _, laptop = await setup(http, register_user)
    k1, k2 = account_seed(alice.identity), new_seed("alice")
    body = {"transition": transition(k1, k2, alice, 1000), "device_list": list_under(k2, alice, [laptop], 2)}
    assert (await rotate(http, alice, body)).status_code == 200
    old = error(
        await publish(http, alice, device_list(alice.identity, [laptop], version=3)),
        400,
        "invalid_device_list",
    )
    assert old["reason"] == "device_list_invalid"
    assert (await publish(http, alice, list_under(k2, alice, [laptop], 3))).status_code == 200


async def test_every_bad_rotation_has_a_stable_code_and_changes_nothing(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, laptop = await setup(http, register_user)
    k1, k2, other = account_seed(alice.identity), new_seed("alice"), new_seed("alice", 9)
    good_list = list_under(k2, alice, [laptop], 2)
    good = transition(k1, k2, alice, 1000)

    def with_change(**change: object) -> dict[str, Any]:
        return {"transition": good | change, "device_list": good_list}

    signed = make_transition(k1, k2, alice.identity.username, 1000).signed_bytes
    missing = dict(good)
    del missing["new_signature"]
    cases: list[tuple[object, int, str, str | None]] = [
        ({"transition": missing, "device_list": good_list}, 400, "invalid_transition", "malformed"),
        (with_change(v=3), 400, "invalid_transition", "unsupported_version"),
        (with_change(new_key=b64encode(bytes(32))), 400, "invalid_transition", "malformed"),
        (with_change(at=-5), 400, "invalid_transition", "malformed"),
        (
            with_change(new_signature=b64encode(ed25519_sign_raw(other, signed))),
            400,
            "invalid_transition",
            "bad_signature",
        ),
        (
            with_change(old_signature=b64encode(ed25519_sign_raw(other, signed))),
            400,
            "invalid_transition",
            "bad_signature",
        ),
        (
            {"transition": transition(k1, k2, bob, 1000), "device_list": good_list},
            400,
            "invalid_transition",
            "transition_invalid",
        ),
        (
            {"transition": good, "device_list": list_under(other, alice, [laptop], 2)},
            400,
            "invalid_device_list",
            "device_list_invalid",
        ),
        (
            {"transition": good, "device_list": device_list(alice.identity, [laptop], version=2)},
            400,
            "invalid_device_list",
            "device_list_invalid",
        ),
        (
            {"transition": good, "device_list": list_under(k2, alice, [laptop], 1)},
            409,
            "device_list_stale",
            None,
        ),
        (
            {"transition": transition(other, k2, alice, 1000), "device_list": good_list},
            409,
            "identity_key_stale",
            None,
        ),
        ({"transition": good}, 422, "invalid_input", None),
        ({"transition": good, "device_list": good_list, "extra": 1}, 422, "invalid_input", None),
        ({"transition": [good], "device_list": good_list}, 422, "invalid_input", None),
        ([good, good_list], 422, "invalid_input", None),
    ]
    for body, status, code, reason in cases:
        refused = error(await rotate(http, alice, body), status, code)
        assert refused.get("reason") == reason, (body, refused)
    assert (await http.post(PATH, json={"transition": good, "device_list": good_list})).status_code == 401
    # Nothing was stored: the chain from the registered key is empty, the list is v1's.
    assert (await chain(http, bob, "alice", ed25519_raw_public(k1))).json()["transitions"] == []
    assert (await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json()["version"] == 1
    assert (await rotate(http, alice, {"transition": good, "device_list": good_list})).status_code == 200


async def test_no_rollback_no_reused_key_and_no_replay(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, _, laptop = await setup(http, register_user)
    k1, k2, k3 = account_seed(alice.identity), new_seed("alice", 1), new_seed("alice", 2)
    first = {"transition": transition(k1, k2, alice, 5000), "device_list": list_under(k2, alice, [laptop], 2)}
    assert (await rotate(http, alice, first)).status_code == 200
    # The same request again: its old key is no longer the account's key.
    stale = error(await rotate(http, alice, first), 409, "identity_key_stale")
    assert stale["current_key"] == b64encode(ed25519_raw_public(k2))
    # Not later than the last transition.
    earlier = {
        "transition": transition(k2, k3, alice, 5000),
        "device_list": list_under(k3, alice, [laptop], 3),
    }
    assert (
        error(await rotate(http, alice, earlier), 400, "invalid_transition")["reason"] == "transition_invalid"
    )
    # Back to a key the account had (the registered one).
    back = {"transition": transition(k2, k1, alice, 6000), "device_list": list_under(k1, alice, [laptop], 3)}
    assert error(await rotate(http, alice, back), 400, "invalid_transition")["reason"] == "transition_invalid"


async def test_fetching_a_chain_refuses_bad_input_with_stable_codes(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await setup(http, register_user)
    url = "/api/v1/users/alice/identity-transitions"
    for params in (
        {},
        {"since_key": "AB" * 32},
        {"since_key": "ab" * 31},
        {"since_key": "zz" * 32},
        {"since_key": "+/" * 32},
    ):
        error(await http.get(url, params=params, headers=bob.headers), 422, "invalid_input")
    error(await chain(http, bob, "alice", ed25519_raw_public(new_seed("x"))), 404, "unknown_key")
    error(await chain(http, bob, "nobody", ed25519_raw_public(new_seed("x"))), 404, "not_found")
    assert (await http.get(url, params={"since_key": "00" * 32})).status_code == 401
    # An account without a rotation: the registered key is current, the chain empty.
    body = (await chain(http, bob, "alice", account_seed_public(alice))).json()
    assert body == {
        "username": "alice",
        "current_key": b64encode(account_seed_public(alice)),
        "transitions": [],
        "more": False,
    }


def account_seed_public(user: RegisteredUser) -> bytes:
    return ed25519_raw_public(account_seed(user.identity))


async def test_more_than_16_steps_come_in_pages(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, laptop = await setup(http, register_user)
    seeds = [account_seed(alice.identity), *(new_seed("alice", n) for n in range(1, 19))]
    for n in range(18):
        body = {
            "transition": transition(seeds[n], seeds[n + 1], alice, 1000 + n),
            "device_list": list_under(seeds[n + 1], alice, [laptop], n + 2),
        }
        assert (await rotate(http, alice, body)).status_code == 200
    page = (await chain(http, bob, "alice", ed25519_raw_public(seeds[0]))).json()
    assert len(page["transitions"]) == 16 and page["more"] is True
    rest = (await chain(http, bob, "alice", b64decode(page["transitions"][-1]["new_key"]))).json()
    assert len(rest["transitions"]) == 2 and rest["more"] is False
    assert rest["current_key"] == b64encode(ed25519_raw_public(seeds[18]))


async def test_concurrent_rotations_and_publications_leave_a_list_that_verifies(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, laptop = await setup(http, register_user)
    k1 = account_seed(alice.identity)
    phone = make_device(alice.identity, "phone")
    requests = [
        rotate(
            http,
            alice,
            {
                "transition": transition(k1, new_seed("alice", n), alice, 1000),
                "device_list": list_under(new_seed("alice", n), alice, [laptop], 5),
            },
        )
        for n in range(3)
    ] + [publish(http, alice, device_list(alice.identity, [laptop, phone], version=4 + n)) for n in range(3)]
    answers = await asyncio.gather(*requests)
    assert all(answer.status_code in (200, 400, 409) for answer in answers), [a.text for a in answers]
    assert sum(answer.status_code == 200 for answer in answers[:3]) == 1
    served = (await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json()
    current = (await chain(http, bob, "alice", ed25519_raw_public(k1))).json()["current_key"]
    check_device_list(served, Username("alice"), b64decode(current), None)


async def test_a_list_checked_under_the_old_key_is_not_stored_after_a_rotation(
    http: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: Any
) -> None:
    """The race the publication path closes: a list checked against the key read before
    a rotation committed, written after it. The key is read again inside the write."""
    alice, bob, laptop = await setup(http, register_user)
    k1, k2 = account_seed(alice.identity), new_seed("alice")
    body = {"transition": transition(k1, k2, alice, 1000), "device_list": list_under(k2, alice, [laptop], 2)}
    assert (await rotate(http, alice, body)).status_code == 200
    old_key = ed25519_raw_public(k1)

    async def key_read_before_the_rotation(*_: object) -> bytes:
        return old_key

    monkeypatch.setattr(device_service, "_account_key", key_read_before_the_rotation)
    late = device_list(alice.identity, [laptop], version=3)
    error(await publish(http, alice, late), 409, "device_list_stale")
    served = (await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json()
    assert served["version"] == 2
    check_device_list(served, Username("alice"), ed25519_raw_public(k2), None)
