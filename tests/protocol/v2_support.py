"""Personas for the protocol v2 tests: deterministic keys from names, so every test
(and the vector generator's own checks) can build the same devices and sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from securechat.protocol.identifiers import Username, parse_username
from securechat.protocol.v2.devices import Device, DeviceList, certify_device, sign_device_list
from securechat.protocol.v2.prekeys import (
    OneTimePrekey,
    SignedPrekey,
    make_one_time_prekey,
    make_signed_prekey,
)
from securechat.protocol.v2.primitives import ed25519_raw_public, x25519_public
from securechat.protocol.v2.ratchet import SessionState
from securechat.protocol.v2.setup import Party, initiate_session

T0 = 1_767_225_600_000


def secret(*parts: str) -> bytes:
    return hashlib.sha256("/".join(("securechat-v2-test", *parts)).encode()).digest()


def counter_random(name: str) -> Callable[[int], bytes]:
    """A deterministic random source: SHA-256 of the name and a counter."""
    count = 0

    def random(size: int) -> bytes:
        nonlocal count
        count += 1
        return hashlib.sha256(f"{name}/{count}".encode()).digest()[:size]

    return random


@dataclass(frozen=True)
class DeviceKeys:
    username: Username
    account_seed: bytes
    signing_seed: bytes
    dh_private: bytes
    device: Device
    signed_prekey_private: bytes
    signed_prekey: SignedPrekey
    one_time_privates: dict[int, bytes]
    one_time_prekeys: dict[int, OneTimePrekey]

    @property
    def account_key(self) -> bytes:
        return ed25519_raw_public(self.account_seed)

    @property
    def party(self) -> Party:
        return Party(self.username, self.account_key, self.device)


def make_device(user: str, name: str, one_time: int = 2) -> DeviceKeys:
    username = parse_username(user)
    account_seed = secret(user, "account")
    signing_seed = secret(user, name, "signing")
    dh_private = secret(user, name, "dh")
    device = certify_device(
        account_seed, username, ed25519_raw_public(signing_seed), x25519_public(dh_private), T0
    )
    spk_private = secret(user, name, "spk", "1")
    spk = make_signed_prekey(signing_seed, username, device.device_id, 1, spk_private, T0)
    privates = {1000 + i: secret(user, name, "opk", str(i)) for i in range(one_time)}
    opks = {
        pid: make_one_time_prekey(signing_seed, username, device.device_id, pid, private)
        for pid, private in privates.items()
    }
    return DeviceKeys(
        username, account_seed, signing_seed, dh_private, device, spk_private, spk, privates, opks
    )


def device_list(devices: list[DeviceKeys], version: int = 1) -> DeviceList:
    first = devices[0]
    return sign_device_list(first.account_seed, first.username, version, T0, [d.device for d in devices])


def start(initiator: DeviceKeys, responder: DeviceKeys, *, one_time: int | None = 1000) -> SessionState:
    opk = None if one_time is None else responder.one_time_prekeys[one_time]
    return initiate_session(
        initiator.party,
        initiator.dh_private,
        responder.party,
        responder.signed_prekey,
        opk,
        secret(initiator.username, "ephemeral", responder.device.device_id, str(one_time)),
    )
