"""v2 prekeys and bundles on the server (PROTOCOL.md 15.4, 15.16): only a device of the
caller's current list publishes prekeys, each signed by that device for that account;
ids never serve two keys; every one-time prekey is handed out once, then the bundle
comes without one; claims are limited per claiming account; revoked devices' prekeys
are gone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from securechat.client.core.v2.bundles import BundleAccepted, accept_bundle
from securechat.protocol.v2.devices import certify_device, parse_device_list, sign_device_list
from securechat.protocol.v2.prekeys import DAY_MS
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser
from .test_devices import (
    V2_LIMITS,
    DeviceKeys,
    account_seed,
    device_list,
    error,
    make_device,
    now_ms,
    publish,
    serve,
)

MAX_STORED = 150


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "server", **GENEROUS_LIMITS, **V2_LIMITS, max_one_time_prekeys=MAX_STORED
    )


async def put_signed(
    http: httpx.AsyncClient, user: RegisteredUser, device_id: str, prekey: object
) -> httpx.Response:
    return await http.put(f"/api/v1/devices/{device_id}/signed-prekey", headers=user.headers, json=prekey)


async def post_one_time(
    http: httpx.AsyncClient, user: RegisteredUser, device_id: str, prekeys: list[Any]
) -> httpx.Response:
    return await http.post(
        f"/api/v1/devices/{device_id}/one-time-prekeys", headers=user.headers, json={"prekeys": prekeys}
    )


async def remaining(http: httpx.AsyncClient, user: RegisteredUser, device_id: str) -> int:
    response = await http.get(f"/api/v1/devices/{device_id}/one-time-prekeys/count", headers=user.headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["remaining"]
    return count


async def claim(
    http: httpx.AsyncClient, claimer: RegisteredUser, owner: str, device_ids: list[str] | None = None
) -> httpx.Response:
    body = None if device_ids is None else {"device_ids": device_ids}
    return await http.post(f"/api/v1/users/{owner}/bundles", headers=claimer.headers, json=body)


async def listed(
    http: httpx.AsyncClient, user: RegisteredUser, names: list[str], version: int = 1
) -> list[DeviceKeys]:
    devices = [make_device(user.identity, name) for name in names]
    assert (await publish(http, user, device_list(user.identity, devices, version))).status_code == 200
    return devices


async def test_prekeys_of_a_listed_device_reach_claimers_once_each(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop, phone = await listed(http, alice, ["laptop", "phone"])
    published = parse_device_list((await http.get("/api/v1/users/alice/devices", headers=bob.headers)).json())
    signed = {device.device_id: device.signed_prekey(1) for device in (laptop, phone)}
    for device_id, prekey in signed.items():
        assert (await put_signed(http, alice, device_id, prekey)).status_code == 200
    stored = await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(100, 103)))
    assert stored.json() == {
        "device_id": laptop.device_id,
        "stored": 3,
        "remaining": 3,
        "next_prekey_id": 103,
    }
    assert await remaining(http, alice, laptop.device_id) == 3
    assert await remaining(http, alice, phone.device_id) == 0

    handed: list[int] = []
    for _ in range(5):
        answer = await claim(http, bob, "alice")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["username"] == "alice" and body["version"] == 1
        by_device = {bundle["device_id"]: bundle for bundle in body["bundles"]}
        assert list(by_device) == sorted([laptop.device_id, phone.device_id])
        assert {d: bundle["signed_prekey"] for d, bundle in by_device.items()} == signed
        # What the server hands out is what a client accepts (15.4, client.core.v2).
        for bundle in body["bundles"]:
            accepted = accept_bundle(bundle, published, now_ms())
            assert isinstance(accepted, BundleAccepted), accepted
        assert by_device[phone.device_id]["one_time_prekey"] is None
        one_time = by_device[laptop.device_id]["one_time_prekey"]
        if one_time is not None:
            assert one_time in laptop.one_time_prekeys(range(100, 103))
            handed.append(one_time["prekey_id"])
    # Each exactly once, oldest first; then bundles without one (15.4's fallback).
    assert handed == [100, 101, 102]
    assert await remaining(http, alice, laptop.device_id) == 0


async def test_claims_name_devices_and_spend_nothing_on_a_device_without_a_signed_prekey(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop, phone, tablet = await listed(http, alice, ["laptop", "phone", "tablet"])
    for device in (laptop, phone, tablet):
        assert (
            await post_one_time(http, alice, device.device_id, device.one_time_prekeys([1, 2]))
        ).status_code == 200
    for device in (laptop, phone):
        assert (await put_signed(http, alice, device.device_id, device.signed_prekey(1))).status_code == 200

    only_phone = (await claim(http, bob, "alice", [phone.device_id])).json()["bundles"]
    assert [bundle["device_id"] for bundle in only_phone] == [phone.device_id]
    assert only_phone[0]["one_time_prekey"]["prekey_id"] == 1
    # A device id not in the list gets no bundle (and is no error: the list may have moved on).
    assert (await claim(http, bob, "alice", ["0" * 32])).json()["bundles"] == []
    everyone = {bundle["device_id"]: bundle for bundle in (await claim(http, bob, "alice")).json()["bundles"]}
    # The tablet has published no signed prekey: no bundle, and its one-time prekeys stay.
    assert sorted(everyone) == sorted([laptop.device_id, phone.device_id])
    assert [await remaining(http, alice, d.device_id) for d in (laptop, phone, tablet)] == [1, 0, 2]


async def test_bundle_claims_refuse_unknown_users_and_users_without_devices(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    await register_user("bob")
    error(await claim(http, alice, "bob"), 404, "no_devices")
    error(await claim(http, alice, "nobody"), 404, "not_found")
    error(await claim(http, alice, "no body"), 422, "invalid_input")
    assert (await http.post("/api/v1/users/bob/bundles")).status_code == 401
    bad_ids = await http.post(
        "/api/v1/users/bob/bundles", headers=alice.headers, json={"device_ids": ["A" * 32]}
    )
    error(bad_ids, 422, "invalid_input")
    too_many = await http.post(
        "/api/v1/users/bob/bundles", headers=alice.headers, json={"device_ids": ["0" * 32] * 33}
    )
    error(too_many, 422, "invalid_input")


async def test_only_a_device_of_the_callers_list_publishes_prekeys_signed_by_it(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, mallory = await register_user("alice"), await register_user("mallory")
    (laptop,) = await listed(http, alice, ["laptop"])
    unlisted = make_device(alice.identity, "unlisted")
    error(
        await put_signed(http, alice, unlisted.device_id, unlisted.signed_prekey(1)), 404, "device_not_listed"
    )
    error(
        await post_one_time(http, alice, unlisted.device_id, unlisted.one_time_prekeys([1])),
        404,
        "device_not_listed",
    )
    error(
        await http.get(f"/api/v1/devices/{unlisted.device_id}/one-time-prekeys/count", headers=alice.headers),
        404,
        "device_not_listed",
    )
    # Another account's device is not the caller's, whatever its id.
    error(
        await put_signed(http, mallory, laptop.device_id, laptop.signed_prekey(1)), 404, "device_not_listed"
    )

    # Signed by another device's key, for another account, or too old: refused.
    forged = unlisted.signed_prekey(1) | {"signature": unlisted.signed_prekey(2)["signature"]}
    refused = error(await put_signed(http, alice, laptop.device_id, forged), 400, "invalid_prekey")
    assert refused["reason"] == "prekey_invalid"
    refused = error(
        await put_signed(http, alice, laptop.device_id, unlisted.signed_prekey(1)), 400, "invalid_prekey"
    )
    assert refused["reason"] == "prekey_invalid"
    stale = laptop.signed_prekey(1, created_at=now_ms() - 31 * DAY_MS)
    assert (
        error(await put_signed(http, alice, laptop.device_id, stale), 400, "invalid_prekey")["reason"]
        == "prekey_stale"
    )
    batch = laptop.one_time_prekeys([1, 2]) + unlisted.one_time_prekeys([3])
    refused = error(await post_one_time(http, alice, laptop.device_id, batch), 400, "invalid_prekey")
    assert (refused["reason"], refused["index"]) == ("prekey_invalid", 2)
    assert await remaining(http, alice, laptop.device_id) == 0  # all or nothing

    # Mallory lists a copy of alice's laptop (certified by her own key: a list of hers
    # may name any keys), but alice's prekeys name alice and do not verify for mallory.
    copied_device = laptop.device
    mallorys = certify_device(
        account_seed(mallory.identity),
        mallory.identity.username,
        copied_device.signing_key,
        copied_device.dh_key,
        copied_device.created_at,
    )
    document = sign_device_list(
        account_seed(mallory.identity), mallory.identity.username, 1, now_ms(), [mallorys]
    )
    assert (await publish(http, mallory, document.to_wire())).status_code == 200
    refused = error(
        await put_signed(http, mallory, laptop.device_id, laptop.signed_prekey(1)), 400, "invalid_prekey"
    )
    assert refused["reason"] == "prekey_invalid"
    refused = error(
        await post_one_time(http, mallory, laptop.device_id, laptop.one_time_prekeys([1])),
        400,
        "invalid_prekey",
    )
    assert refused["reason"] == "prekey_invalid"


@pytest.mark.parametrize(
    "prekey",
    [
        {},
        {"prekey_id": -1, "public_key": "", "created_at": 0, "signature": ""},
        {"prekey_id": 2**32, "public_key": "AAAA", "created_at": 0, "signature": "AAAA"},
        {"prekey_id": "1", "public_key": "AAAA", "created_at": 0, "signature": "AAAA"},
        {"prekey_id": 1, "public_key": "Ａ", "created_at": 0, "signature": "Ａ"},
    ],
)
async def test_malformed_prekeys_get_a_stable_code(
    http: httpx.AsyncClient, register_user: RegisterUser, prekey: dict[str, Any]
) -> None:
    alice = await register_user("alice")
    (laptop,) = await listed(http, alice, ["laptop"])
    assert (
        error(await put_signed(http, alice, laptop.device_id, prekey), 400, "invalid_prekey")["reason"]
        == "malformed"
    )
    assert (
        error(await post_one_time(http, alice, laptop.device_id, [prekey]), 400, "invalid_prekey")["reason"]
        == "malformed"
    )


@pytest.mark.parametrize(
    "device_id", ["A" * 32, "0" * 31, "0" * 33, "ａ" * 32, "0" * 31 + "\u0660", "..", "0" * 30 + "%00"]
)
async def test_device_ids_in_paths_are_parsed_first(
    http: httpx.AsyncClient, register_user: RegisterUser, device_id: str
) -> None:
    alice = await register_user("alice")
    response = await http.get(f"/api/v1/devices/{device_id}/one-time-prekeys/count", headers=alice.headers)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["code"] in ("invalid_input", "not_found")
    if response.status_code == 422:
        assert device_id not in response.text


async def test_signed_prekey_ids_never_serve_two_keys(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    (laptop,) = await listed(http, alice, ["laptop"])
    first = laptop.signed_prekey(5)
    assert (await put_signed(http, alice, laptop.device_id, first)).json()["next_prekey_id"] == 6
    # The same prekey again (a retry) is fine; another key under id 5, or an older id, is not.
    assert (await put_signed(http, alice, laptop.device_id, first)).status_code == 200
    reused = error(
        await put_signed(http, alice, laptop.device_id, laptop.signed_prekey(5, key="other")),
        409,
        "prekey_id_reused",
    )
    assert reused["next_prekey_id"] == 6
    error(await put_signed(http, alice, laptop.device_id, laptop.signed_prekey(4)), 409, "prekey_id_reused")
    bundle = (await claim(http, bob, "alice")).json()["bundles"][0]
    assert bundle["signed_prekey"] == first
    newer = laptop.signed_prekey(9)
    assert (await put_signed(http, alice, laptop.device_id, newer)).status_code == 200
    # The replaced one cannot come back either.
    error(await put_signed(http, alice, laptop.device_id, first), 409, "prekey_id_reused")
    assert (await claim(http, bob, "alice")).json()["bundles"][0]["signed_prekey"] == newer


async def test_one_time_prekey_ids_never_serve_two_keys(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    (laptop,) = await listed(http, alice, ["laptop"])
    assert (await put_signed(http, alice, laptop.device_id, laptop.signed_prekey(1))).status_code == 200
    batch = laptop.one_time_prekeys(range(10, 20))
    assert (await post_one_time(http, alice, laptop.device_id, batch)).json()["stored"] == 10
    # The same batch again (a retried upload whose answer was lost) stores nothing new.
    again = await post_one_time(http, alice, laptop.device_id, batch)
    assert again.json() | {} == {
        "device_id": laptop.device_id,
        "stored": 0,
        "remaining": 10,
        "next_prekey_id": 20,
    }
    # Other keys under stored ids, ids below the highest one used, and twice in a batch.
    error(
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys([12], key="other")),
        409,
        "prekey_id_reused",
    )
    error(
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys([5])),
        409,
        "prekey_id_reused",
    )
    error(
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys([30, 30])),
        409,
        "prekey_id_reused",
    )
    # A claimed prekey sent again would be handed out a second time: refused.
    claimed = (await claim(http, bob, "alice")).json()["bundles"][0]["one_time_prekey"]
    assert claimed["prekey_id"] == 10
    error(await post_one_time(http, alice, laptop.device_id, [claimed]), 409, "prekey_id_reused")
    assert await remaining(http, alice, laptop.device_id) == 9


async def test_batches_and_stored_prekeys_are_bounded(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    (laptop,) = await listed(http, alice, ["laptop"])
    error(
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(101))),
        422,
        "invalid_input",
    )
    error(await post_one_time(http, alice, laptop.device_id, []), 422, "invalid_input")
    assert (
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(100)))
    ).status_code == 200
    over = error(
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(100, 151))),
        409,
        "too_many_prekeys",
    )
    assert (over["remaining"], over["max"]) == (100, MAX_STORED)
    assert await remaining(http, alice, laptop.device_id) == 100
    assert (
        await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(100, 150)))
    ).status_code == 200
    assert await remaining(http, alice, laptop.device_id) == MAX_STORED


async def test_a_revoked_device_loses_its_prekeys(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    laptop, phone = await listed(http, alice, ["laptop", "phone"])
    for device in (laptop, phone):
        assert (await put_signed(http, alice, device.device_id, device.signed_prekey(1))).status_code == 200
        assert (
            await post_one_time(http, alice, device.device_id, device.one_time_prekeys([1, 2]))
        ).status_code == 200
    assert (await publish(http, alice, device_list(alice.identity, [laptop], 2))).json()["removed"] == [
        phone.device_id
    ]

    bundles = (await claim(http, bob, "alice")).json()
    assert (bundles["version"], [b["device_id"] for b in bundles["bundles"]]) == (2, [laptop.device_id])
    error(
        await http.get(f"/api/v1/devices/{phone.device_id}/one-time-prekeys/count", headers=alice.headers),
        404,
        "device_not_listed",
    )
    error(await put_signed(http, alice, phone.device_id, phone.signed_prekey(2)), 404, "device_not_listed")
    assert (await claim(http, bob, "alice", [phone.device_id])).json()["bundles"] == []
    # Listed again later, it starts with nothing: its old prekeys stay deleted.
    assert (await publish(http, alice, device_list(alice.identity, [laptop, phone], 3))).status_code == 200
    assert await remaining(http, alice, phone.device_id) == 0
    back = [b["device_id"] for b in (await claim(http, bob, "alice")).json()["bundles"]]
    assert back == [laptop.device_id]
    assert (await put_signed(http, alice, phone.device_id, phone.signed_prekey(1))).status_code == 200
    back = [b["device_id"] for b in (await claim(http, bob, "alice")).json()["bundles"]]
    assert back == sorted([laptop.device_id, phone.device_id])


async def test_claims_are_limited_per_claiming_account(tmp_path: Any) -> None:
    limited = Settings(
        data_dir=tmp_path / "limited",
        **GENEROUS_LIMITS,
        bundle_claims_per_minute=3,
        device_updates_per_minute=100,
    )
    async with serve(limited) as (http, register):
        alice, mallory, carol = await register("alice"), await register("mallory"), await register("carol")
        (laptop,) = await listed(http, alice, ["laptop"])
        assert (await put_signed(http, alice, laptop.device_id, laptop.signed_prekey(1))).status_code == 200
        assert (
            await post_one_time(http, alice, laptop.device_id, laptop.one_time_prekeys(range(10)))
        ).status_code == 200
        for _ in range(3):
            assert (await claim(http, mallory, "alice")).status_code == 200
        refused = error(await claim(http, mallory, "alice"), 429, "rate_limited")
        assert refused["retry_after_ms"] > 0
        # Mallory's refused claims spend nothing; another account still gets one.
        for _ in range(5):
            error(await claim(http, mallory, "alice"), 429, "rate_limited")
        assert await remaining(http, alice, laptop.device_id) == 7
        assert (await claim(http, carol, "alice")).json()["bundles"][0]["one_time_prekey"]["prekey_id"] == 3


async def test_claims_of_strangers_are_lookups(tmp_path: Any) -> None:
    limited = Settings(
        data_dir=tmp_path / "limited",
        **(GENEROUS_LIMITS | {"lookups_per_minute": 2}),
        bundle_claims_per_minute=100,
        device_updates_per_minute=100,
    )
    async with serve(limited) as (http, register):
        alice, mallory = await register("alice"), await register("mallory")
        await listed(http, alice, ["laptop"])
        assert (await claim(http, mallory, "alice")).status_code == 200
        error(await claim(http, mallory, "nobody"), 404, "not_found")
        # The budget is spent: a name that exists and one that does not answer alike.
        error(await claim(http, mallory, "alice"), 429, "rate_limited")
        error(await claim(http, mallory, "nobody2"), 429, "rate_limited")
        error(await http.get("/api/v1/users/alice/devices", headers=mallory.headers), 429, "rate_limited")
        # One's own bundles (for one's other devices) are free.
        (own,) = await listed(http, mallory, ["phone"])
        assert (await put_signed(http, mallory, own.device_id, own.signed_prekey(1))).status_code == 200
        assert (await claim(http, mallory, "mallory")).json()["bundles"][0]["device_id"] == own.device_id
