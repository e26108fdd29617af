"""The v2 device directory (PROTOCOL.md 15.3, 15.16): an account publishes its signed
device list and anyone logged in fetches it. The server stores only a list that its
own account signed for itself with the registered account key, with valid certificates
and a version above the stored one; bad input is a 4xx with a stable code, never a 500.
A device left out of a new list loses its prekeys at once.

The helpers here build real v2 material with the protocol code; tests/api/test_prekeys.py
and tests/integration/test_prekeys_two_instances.py use them too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PrivateIdentity
from securechat.protocol.v2.devices import Device, certify_device, sign_device_list
from securechat.protocol.v2.prekeys import make_one_time_prekey, make_signed_prekey
from securechat.protocol.v2.primitives import ed25519_raw_public, x25519_public
from securechat.server.app import create_app
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser, registrar

V2_LIMITS = {"bundle_claims_per_minute": 100_000, "device_updates_per_minute": 100_000}


def now_ms() -> int:
    return int(time.time() * 1000)


def secret(*parts: str) -> bytes:
    return hashlib.sha256("/".join(("h3-server-test", *parts)).encode()).digest()


def account_seed(identity: PrivateIdentity) -> bytes:
    """v2's account key is v1's Ed25519 signing key (15.12): its 32-byte seed."""
    return identity.signing_private.private_bytes_raw()


@dataclass(frozen=True)
class DeviceKeys:
    """One device of an account, as its owner holds it."""

    username: Username
    name: str
    signing_seed: bytes
    device: Device

    @property
    def device_id(self) -> str:
        return self.device.device_id

    @property
    def dh_private(self) -> bytes:
        return secret(self.username, self.name, "dh")

    def signed_prekey_private(self, prekey_id: int, key: str = "") -> bytes:
        return secret(self.username, self.name, "spk", str(prekey_id), key)

    def one_time_private(self, prekey_id: int, key: str = "") -> bytes:
        return secret(self.username, self.name, "opk", str(prekey_id), key)

    def signed_prekey(
        self, prekey_id: int, *, created_at: int | None = None, key: str = ""
    ) -> dict[str, object]:
        private = self.signed_prekey_private(prekey_id, key)
        made = make_signed_prekey(
            self.signing_seed, self.username, self.device_id, prekey_id, private, created_at or now_ms()
        )
        return made.to_wire()

    def one_time_prekeys(self, ids: range | list[int], key: str = "") -> list[dict[str, object]]:
        return [
            make_one_time_prekey(
                self.signing_seed,
                self.username,
                self.device_id,
                prekey_id,
                self.one_time_private(prekey_id, key),
            ).to_wire()
            for prekey_id in ids
        ]


def make_device(identity: PrivateIdentity, name: str, *, signer: PrivateIdentity | None = None) -> DeviceKeys:
    """A device of ``identity``'s account, certified by ``signer`` (default: the account)."""
    username = identity.username
    signing_seed = secret(username, name, "signing")
    device = certify_device(
        account_seed(signer or identity),
        username,
        ed25519_raw_public(signing_seed),
        x25519_public(secret(username, name, "dh")),  # DeviceKeys.dh_private
        now_ms(),
    )
    return DeviceKeys(username, name, signing_seed, device)


def device_list(
    identity: PrivateIdentity,
    devices: list[DeviceKeys],
    version: int,
    *,
    signer: PrivateIdentity | None = None,
) -> dict[str, Any]:
    signed = sign_device_list(
        account_seed(signer or identity), identity.username, version, now_ms(), [d.device for d in devices]
    )
    return signed.to_wire()


async def publish(http: httpx.AsyncClient, user: RegisteredUser, document: object) -> httpx.Response:
    return await http.put("/api/v1/devices", headers=user.headers, json=document)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    return body


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, RegisterUser]]:
    """An app of its own on ``settings`` (tests of limits): its client and registrar."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, registrar(client)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path / "server", **GENEROUS_LIMITS, **V2_LIMITS)


async def test_a_published_list_is_what_others_fetch(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop, phone = make_device(alice.identity, "laptop"), make_device(alice.identity, "phone")
    document = device_list(alice.identity, [laptop, phone], version=1)

    answer = await publish(http, alice, document)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "version": 1,
        "devices": sorted([laptop.device_id, phone.device_id]),
        "added": sorted([laptop.device_id, phone.device_id]),
        "removed": [],
        "unchanged": False,
    }
    fetched = await http.get("/api/v1/users/alice/devices", headers=bob.headers)
    assert fetched.status_code == 200
    assert fetched.json() == document
    # A name in another Unicode form that folds to alice's names the same account.
    fetched = await http.get("/api/v1/users/ALICE/devices", headers=bob.headers)
    assert fetched.json() == document


def no_list(response: httpx.Response) -> None:
    """An account that has published no list: 204 without a body (a normal state, not an
    error a browser would log), distinct from 404 for no such user."""
    assert (response.status_code, response.content) == (204, b"")


async def test_no_list_and_no_user_are_told_apart_only_as_lookups(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    await register_user("bob")
    no_list(await http.get("/api/v1/users/bob/devices", headers=alice.headers))
    error(await http.get("/api/v1/users/nobody/devices", headers=alice.headers), 404, "not_found")
    assert (await http.get("/api/v1/users/bob/devices")).status_code == 401
    assert (await http.put("/api/v1/devices", json={})).status_code == 401


async def test_lists_for_another_account_or_under_another_key_are_refused(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, mallory = (
        await register_user("alice"),
        await register_user("bob"),
        await register_user("mallory"),
    )
    bob_phone = make_device(bob.identity, "phone")
    bobs_list = device_list(bob.identity, [bob_phone], version=5)
    assert (await publish(http, bob, bobs_list)).status_code == 200

    # Mallory replays bob's genuine list as hers, then as bob's: the server stores only
    # lists naming the authenticated account and signed with its registered key.
    refused = error(await publish(http, mallory, bobs_list), 400, "invalid_device_list")
    assert refused["reason"] == "device_list_invalid"
    # A list "for mallory" whose account_key and signature are bob's.
    mallory_with_bobs_key = device_list(
        mallory.identity, [make_device(mallory.identity, "x")], 1, signer=bob.identity
    )
    refused = error(await publish(http, mallory, mallory_with_bobs_key), 400, "invalid_device_list")
    assert refused["reason"] == "device_list_invalid"
    # A list naming bob, signed by mallory's own key (she holds no other).
    for_bob = device_list(bob.identity, [make_device(bob.identity, "evil")], 6, signer=mallory.identity)
    refused = error(await publish(http, mallory, for_bob), 400, "invalid_device_list")
    assert refused["reason"] == "device_list_invalid"
    # Alice's own list whose signature was altered.
    laptop = make_device(alice.identity, "laptop")
    tampered = device_list(alice.identity, [laptop], 1)
    tampered["signature"] = b64encode(bytes(64))
    refused = error(await publish(http, alice, tampered), 400, "invalid_device_list")
    assert refused["reason"] == "device_list_invalid"

    fetched = await http.get("/api/v1/users/bob/devices", headers=alice.headers)
    assert fetched.json() == bobs_list
    no_list(await http.get("/api/v1/users/mallory/devices", headers=alice.headers))


async def test_devices_need_certificates_from_the_account_key(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, mallory = await register_user("alice"), await register_user("mallory")
    laptop = make_device(alice.identity, "laptop")
    planted = make_device(alice.identity, "planted", signer=mallory.identity)
    document = device_list(alice.identity, [laptop, planted], 1)
    error(await publish(http, alice, document), 400, "invalid_device_list")
    assert (await publish(http, alice, document)).json()["error"]["reason"] == "device_certificate_invalid"

    # An entry without its certificate, re-signed by the account: still refused.
    bare = Device(
        laptop.device_id, laptop.device.signing_key, laptop.device.dh_key, laptop.device.created_at, b""
    )
    signed = sign_device_list(account_seed(alice.identity), alice.identity.username, 1, now_ms(), [bare])
    refused = error(await publish(http, alice, signed.to_wire()), 400, "invalid_device_list")
    assert refused["reason"] == "device_certificate_invalid"
    no_list(await http.get("/api/v1/users/alice/devices", headers=alice.headers))


async def test_a_list_must_be_newer_than_the_stored_one(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop, phone = make_device(alice.identity, "laptop"), make_device(alice.identity, "phone")
    first = device_list(alice.identity, [laptop, phone], 1)
    second = device_list(alice.identity, [laptop], 2)
    assert (await publish(http, alice, first)).status_code == 200
    assert (await publish(http, alice, second)).json()["removed"] == [phone.device_id]

    # The old list replayed (it would bring the revoked phone back): refused.
    stale = error(await publish(http, alice, first), 409, "device_list_stale")
    assert stale["version"] == 2
    # The same version with other contents (a fork): refused.
    fork = device_list(alice.identity, [laptop, phone], 2)
    error(await publish(http, alice, fork), 409, "device_list_stale")
    # The stored list sent again (a retry after a lost answer): nothing changes.
    again = await publish(http, alice, second)
    assert again.status_code == 200
    assert again.json()["unchanged"] is True
    assert (await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json() == second

    third = device_list(alice.identity, [laptop, phone], 3)
    assert (await publish(http, alice, third)).json()["added"] == [phone.device_id]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d | {"v": 3}, "unsupported_version"),
        (lambda d: d | {"v": "2"}, "malformed"),
        (lambda d: d | {"extra": 1}, "malformed"),
        (lambda d: {k: v for k, v in d.items() if k != "signature"}, "malformed"),
        (lambda d: d | {"version": 0}, "malformed"),
        (lambda d: d | {"version": 2**53}, "malformed"),
        (lambda d: d | {"version": True}, "malformed"),
        (lambda d: d | {"username": "Alice"}, "malformed"),
        (lambda d: d | {"username": "ålice"}, "malformed"),
        (lambda d: d | {"username": "alice\u0000"}, "malformed"),
        (lambda d: d | {"devices": []}, "malformed"),
        (lambda d: d | {"devices": d["devices"] * 33}, "malformed"),
        (lambda d: d | {"devices": d["devices"] * 2}, "malformed"),
        (lambda d: d | {"devices": [d["devices"][0] | {"device_id": "Ａ" * 32}]}, "malformed"),
        (
            lambda d: (
                d | {"devices": [d["devices"][0] | {"device_id": d["devices"][0]["device_id"].upper()}]}
            ),
            "malformed",
        ),
        (lambda d: d | {"devices": [d["devices"][0] | {"signing_key": b64encode(bytes(32))}]}, "malformed"),
        (lambda d: d | {"account_key": b64encode(bytes(31))}, "malformed"),
        (lambda d: d | {"signature": d["signature"] + "="}, "malformed"),
    ],
)
async def test_malformed_lists_get_a_stable_code(
    http: httpx.AsyncClient, register_user: RegisterUser, change: Any, reason: str
) -> None:
    alice = await register_user("alice")
    document = change(device_list(alice.identity, [make_device(alice.identity, "laptop")], 1))
    refused = error(await publish(http, alice, document), 400, "invalid_device_list")
    assert refused["reason"] == reason
    no_list(await http.get("/api/v1/users/alice/devices", headers=alice.headers))


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"list"', b"null", b"{", b"[" * 100_000, b'{"v": 2, "username": "\xff"}'],
)
async def test_bodies_that_are_no_object_are_refused_without_a_server_error(
    http: httpx.AsyncClient, register_user: RegisterUser, body: bytes
) -> None:
    alice = await register_user("alice")
    response = await http.put(
        "/api/v1/devices", headers=alice.headers | {"content-type": "application/json"}, content=body
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in ("invalid_input", "bad_request", "invalid_device_list")


async def test_publications_are_limited_per_account(tmp_path: Any) -> None:
    limited_settings = Settings(data_dir=tmp_path / "limited", **GENEROUS_LIMITS, device_updates_per_minute=2)
    async with serve(limited_settings) as (http, register):
        alice = await register("alice")
        laptop = make_device(alice.identity, "laptop")
        for version in (1, 2):
            assert (
                await publish(http, alice, device_list(alice.identity, [laptop], version))
            ).status_code == 200
        limited = await publish(http, alice, device_list(alice.identity, [laptop], 3))
        error(limited, 429, "rate_limited")
        assert "retry-after" in limited.headers
        assert (await http.get("/api/v1/users/alice/devices", headers=alice.headers)).json()["version"] == 2
