"""Per-device access to v2 inboxes (PROTOCOL.md 15.16, device credentials): an account's
session token alone reads and acknowledges no device's inbox; a device proves itself by
signing a single-use server nonce with its own signing key and gets a short-lived
credential that is good only for itself, in the session that got it, while it is listed.

mallory here is whoever holds one of alice's session tokens (a browser of a device
revoked since, a token stolen from a log) but not the device's signing key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest

from securechat.protocol.encoding import b64encode
from securechat.server.services import device_auth

from .conftest import RegisterUser
from .device_auth_support import DEVICE_TOKEN_HEADER, answer, challenge, device_headers, device_token, sign
from .support import bearer
from .test_device_inbox import World
from .test_device_inbox import settings as settings  # the v2 limits
from .test_devices import device_list, error, make_device, publish

Login = Callable[[str, str], Awaitable[dict[str, Any]]]

INBOX = "/api/v1/devices/{}/inbox"
ACK = "/api/v1/devices/{}/inbox/ack"


@pytest.fixture
async def world(http: httpx.AsyncClient, register_user: RegisterUser) -> World:
    made = World(http, await register_user("alice"), await register_user("bob"))
    await made.setup()
    await made.session_with(made.phone)
    await made.session_with(made.bob_phone)
    return made


async def second_session(login: Login, world: World) -> dict[str, str]:
    """Another session of alice's account: what mallory holds."""
    answer = await login("alice", world.alice.auth_key)
    return bearer(answer["access_token"])


async def test_the_session_token_alone_neither_reads_nor_acknowledges(world: World, login: Login) -> None:
    assert (await world.send(world.seal("for the phone"))).status_code == 201
    mallory = await second_session(login, world)
    for headers in (mallory, world.alice.headers):
        error(
            await world.http.get(INBOX.format(world.phone.device_id), headers=headers),
            401,
            "device_auth_required",
        )
        error(
            await world.http.post(ACK.format(world.phone.device_id), headers=headers, json={"seq": 1}),
            401,
            "device_auth_required",
        )
    # Nothing was taken from the phone.
    assert [entry["seq"] for entry in (await world.inbox(world.phone))["entries"]] == [1]


async def test_a_credential_is_good_for_its_own_device_and_session_only(world: World, login: Login) -> None:
    assert (await world.send(world.seal("for the phone"))).status_code == 201
    laptop = await world.headers_of(world.laptop)
    # The laptop's credential does not open the phone's inbox, nor acknowledge it.
    error(
        await world.http.get(INBOX.format(world.phone.device_id), headers=laptop), 401, "device_auth_required"
    )
    error(
        await world.http.post(ACK.format(world.phone.device_id), headers=laptop, json={"seq": 1}),
        401,
        "device_auth_required",
    )
    # The phone's credential with another session of the account: refused too.
    phone = await world.headers_of(world.phone)
    mallory = await second_session(login, world)
    stolen = {**mallory, DEVICE_TOKEN_HEADER: phone[DEVICE_TOKEN_HEADER]}
    error(
        await world.http.get(INBOX.format(world.phone.device_id), headers=stolen), 401, "device_auth_required"
    )
    # The credential without the session token is not a session.
    alone = {DEVICE_TOKEN_HEADER: phone[DEVICE_TOKEN_HEADER]}
    error(await world.http.get(INBOX.format(world.phone.device_id), headers=alone), 401, "unauthorized")
    # Another account's device: not listed for alice, whatever she signs with.
    error(
        await challenge(world.http, world.alice.headers, world.bob_phone.device_id), 404, "device_not_listed"
    )
    assert [e["seq"] for e in (await world.inbox(world.phone))["entries"]] == [1]


async def test_a_revoked_device_is_refused_at_once_and_its_old_credential_stays_dead(world: World) -> None:
    credential = await world.headers_of(world.bob_phone)
    tablet = make_device(world.bob.identity, "tablet")
    assert (
        await publish(world.http, world.bob, device_list(world.bob.identity, [tablet], 2))
    ).status_code == 200
    for response in (
        await world.http.get(INBOX.format(world.bob_phone.device_id), headers=credential),
        await world.http.post(ACK.format(world.bob_phone.device_id), headers=credential, json={"seq": 1}),
        await challenge(world.http, world.bob.headers, world.bob_phone.device_id),
    ):
        error(response, 404, "device_not_listed")
    # Listed again: the credential from before the revocation proves nothing; a new one does.
    again = device_list(world.bob.identity, [world.bob_phone, tablet], 3)
    assert (await publish(world.http, world.bob, again)).status_code == 200
    error(
        await world.http.get(INBOX.format(world.bob_phone.device_id), headers=credential),
        401,
        "device_auth_required",
    )
    fresh = await device_headers(world.http, world.bob.headers, world.bob_phone)
    assert (await world.http.get(INBOX.format(world.bob_phone.device_id), headers=fresh)).status_code == 200


async def test_a_nonce_is_good_once_for_its_device_and_session(world: World, login: Login) -> None:
    headers = world.alice.headers
    phone = world.phone.device_id
    nonce = (await challenge(world.http, headers, phone)).json()["nonce"]
    first = await answer(world.http, headers, phone, nonce, sign(world.phone, nonce))
    assert first.status_code == 200, first.text
    # Replayed: spent.
    replay = await answer(world.http, headers, phone, nonce, sign(world.phone, nonce))
    assert error(replay, 401, "device_auth_failed")["reason"] == "challenge_invalid"
    # Made up by the caller.
    forged = b64encode(bytes(32))
    assert (
        error(
            await answer(world.http, headers, phone, forged, sign(world.phone, forged)),
            401,
            "device_auth_failed",
        )["reason"]
        == "challenge_invalid"
    )
    # Asked for the laptop, answered for the phone (by the phone's key): refused.
    laptop_nonce = (await challenge(world.http, headers, world.laptop.device_id)).json()["nonce"]
    moved = await answer(world.http, headers, phone, laptop_nonce, sign(world.phone, laptop_nonce))
    assert error(moved, 401, "device_auth_failed")["reason"] == "challenge_invalid"
    # Asked by one session, answered in another.
    nonce = (await challenge(world.http, headers, phone)).json()["nonce"]
    mallory = await second_session(login, world)
    other = await answer(world.http, mallory, phone, nonce, sign(world.phone, nonce))
    assert error(other, 401, "device_auth_failed")["reason"] == "challenge_invalid"
    # Signed by another device's key (the laptop signing for the phone): refused, and spent.
    nonce = (await challenge(world.http, headers, phone)).json()["nonce"]
    wrong_key = await answer(world.http, headers, phone, nonce, sign(world.laptop, nonce, as_device=phone))
    assert error(wrong_key, 401, "device_auth_failed")["reason"] == "bad_signature"
    right_after = await answer(world.http, headers, phone, nonce, sign(world.phone, nonce))
    assert error(right_after, 401, "device_auth_failed")["reason"] == "challenge_invalid"
    # Signed for another account's name: bad signature.
    nonce = (await challenge(world.http, headers, phone)).json()["nonce"]
    bob_signed = sign(make_device(world.bob.identity, "phone"), nonce, as_device=phone)
    assert error(await answer(world.http, headers, phone, nonce, bob_signed), 401, "device_auth_failed")[
        "reason"
    ] in ("bad_signature",)


async def test_an_expired_nonce_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = world.alice.headers
    phone = world.phone.device_id
    nonce = (await challenge(world.http, headers, phone)).json()["nonce"]
    later = int(time.time() * 1000) + device_auth.CHALLENGE_TTL_MS + 1
    monkeypatch.setattr(device_auth, "now_ms", lambda: later)
    late = await answer(world.http, headers, phone, nonce, sign(world.phone, nonce))
    assert error(late, 401, "device_auth_failed")["reason"] == "challenge_invalid"


def forged_token(claims: dict[str, Any], key: bytes) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


async def test_forged_expired_and_foreign_credentials_are_refused(world: World) -> None:
    phone = world.phone.device_id
    good = (await world.headers_of(world.phone))[DEVICE_TOKEN_HEADER]
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    now = int(time.time())
    candidates: list[str | bytes] = [
        "",
        "x",
        "a.b.c",
        forged_token(claims, b"not the server's key" * 2),
        forged_token({**claims, "iat": now - 7200, "exp": now - 3600}, b"k" * 32),
        # The account's own access token is not a device credential.
        world.alice.tokens["access_token"],
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "é".encode() * 10,
    ]
    for candidate in candidates:
        headers: dict[str, str | bytes] = {**world.alice.headers, DEVICE_TOKEN_HEADER: candidate}
        response = await world.http.get(INBOX.format(phone), headers=headers)
        assert response.status_code in (401, 422), (candidate, response.text)
        assert response.json()["error"]["code"] in ("device_auth_required", "invalid_input")
    # Issued by the server but expired.
    ctx = world_context(world)
    expired = ctx.tokens.issue_device(
        user_id=int(claims["sub"]),
        session_id=claims["sid"],
        device_id=phone,
        device_added_at=claims["dat"],
        now_s=now - 3600,
        ttl_seconds=60,
    )
    response = await world.http.get(
        INBOX.format(phone), headers={**world.alice.headers, DEVICE_TOKEN_HEADER: expired}
    )
    error(response, 401, "device_auth_required")
    # A header too long for any credential is a clear 4xx, not a 500.
    huge = {**world.alice.headers, DEVICE_TOKEN_HEADER: "a" * 5000}
    assert (await world.http.get(INBOX.format(phone), headers=huge)).status_code in (401, 422)


def world_context(made: World) -> Any:
    transport = made.http._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.context  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"nonce": "AAAA"},
        {"nonce": "not base64!", "signature": b64encode(bytes(64))},
        {"nonce": b64encode(bytes(31)), "signature": b64encode(bytes(64))},
        {"nonce": b64encode(bytes(32)), "signature": b64encode(bytes(63))},
        {"nonce": b64encode(bytes(32)), "signature": b64encode(bytes(64)), "extra": 1},
        {"nonce": 5, "signature": None},
        {"nonce": "\ud800", "signature": b64encode(bytes(64))},
        [],
        "text",
    ],
)
async def test_malformed_answers_are_422(world: World, body: object) -> None:
    response = await world.http.post(
        f"/api/v1/devices/{world.phone.device_id}/token",
        headers={**world.alice.headers, "content-type": "application/json"},
        content=json.dumps(body).encode(),
    )
    error(response, 422, "invalid_input")


async def test_bad_device_ids_in_paths_are_422(world: World) -> None:
    for bad in ("A" * 32, "0" * 31, "0" * 33, "zz" * 16):
        for method, path in (("POST", "challenge"), ("POST", "token"), ("GET", "inbox")):
            response = await world.http.request(
                method, f"/api/v1/devices/{bad}/{path}", headers=world.alice.headers
            )
            error(response, 422, "invalid_input")


async def test_the_device_reads_and_acknowledges_with_its_credential(world: World) -> None:
    assert (await world.send(world.seal("hello"))).status_code == 201
    token = await device_token(world.http, world.bob.headers, world.bob_phone)
    headers = {**world.bob.headers, DEVICE_TOKEN_HEADER: token}
    page = (await world.http.get(INBOX.format(world.bob_phone.device_id), headers=headers)).json()
    assert [entry["seq"] for entry in page["entries"]] == [1]
    acked = await world.http.post(ACK.format(world.bob_phone.device_id), headers=headers, json={"seq": 1})
    assert acked.json() == {"acknowledged": 1}


async def test_another_session_cannot_crowd_out_the_devices_challenges(world: World, login: Login) -> None:
    """mallory asks for challenges of the phone as fast as she may: the phone's own
    challenge, asked in its session, stays answerable and its session's budget is its own."""
    phone = world.phone.device_id
    nonce = (await challenge(world.http, world.alice.headers, phone)).json()["nonce"]
    mallory = await second_session(login, world)
    ctx = world_context(world)
    budget = ctx.settings.device_challenges_per_minute
    for _ in range(budget):
        assert (await challenge(world.http, mallory, phone)).status_code == 200
    error(await challenge(world.http, mallory, phone), 429, "rate_limited")
    got = await answer(world.http, world.alice.headers, phone, nonce, sign(world.phone, nonce))
    assert got.status_code == 200, got.text
    assert (await challenge(world.http, world.alice.headers, phone)).status_code == 200
