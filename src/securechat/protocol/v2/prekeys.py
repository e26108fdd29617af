"""Signed and one-time prekeys (PROTOCOL.md 15.4)."""

from __future__ import annotations

from dataclasses import dataclass

from ..encoding import b64encode, canonical, u64
from ..errors import VerificationFailed
from .devices import Device
from .errors import Refusal
from .labels import ONE_TIME_PREKEY, SIGNED_PREKEY
from .primitives import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    check_x25519_raw,
    ed25519_sign_raw,
    ed25519_verify_raw,
    x25519_public,
)
from .wire import exact_bytes, integer, members

DAY_MS = 86_400_000
SIGNED_PREKEY_ROTATION_MS = 7 * DAY_MS
SIGNED_PREKEY_GRACE_MS = 30 * DAY_MS
SIGNED_PREKEY_MAX_AGE_MS = 30 * DAY_MS
ONE_TIME_PREKEY_BATCH = 100
ONE_TIME_PREKEY_LOW_WATER = 20
PREKEY_ID_LIMIT = 2**32


@dataclass(frozen=True)
class SignedPrekey:
    prekey_id: int
    public_key: bytes
    created_at: int
    signature: bytes

    def to_wire(self) -> dict[str, object]:
        return {
            "prekey_id": self.prekey_id,
            "public_key": b64encode(self.public_key),
            "created_at": self.created_at,
            "signature": b64encode(self.signature),
        }


@dataclass(frozen=True)
class OneTimePrekey:
    prekey_id: int
    public_key: bytes
    signature: bytes

    def to_wire(self) -> dict[str, object]:
        return {
            "prekey_id": self.prekey_id,
            "public_key": b64encode(self.public_key),
            "signature": b64encode(self.signature),
        }


def signed_prekey_bytes(
    username: str, device_id: str, prekey_id: int, public_key: bytes, created_at: int
) -> bytes:
    return canonical(SIGNED_PREKEY, [username, device_id, u64(prekey_id), public_key, u64(created_at)])


def one_time_prekey_bytes(username: str, device_id: str, prekey_id: int, public_key: bytes) -> bytes:
    return canonical(ONE_TIME_PREKEY, [username, device_id, u64(prekey_id), public_key])


def make_signed_prekey(
    device_seed: bytes, username: str, device_id: str, prekey_id: int, private_key: bytes, created_at: int
) -> SignedPrekey:
    """The owning device signs a signed prekey from its private half."""
    public = x25519_public(private_key)
    signed = signed_prekey_bytes(username, device_id, prekey_id, public, created_at)
    return SignedPrekey(prekey_id, public, created_at, ed25519_sign_raw(device_seed, signed))


def make_one_time_prekey(
    device_seed: bytes, username: str, device_id: str, prekey_id: int, private_key: bytes
) -> OneTimePrekey:
    public = x25519_public(private_key)
    signed = one_time_prekey_bytes(username, device_id, prekey_id, public)
    return OneTimePrekey(prekey_id, public, ed25519_sign_raw(device_seed, signed))


def check_signed_prekey(data: object, username: str, device: Device, now: int) -> SignedPrekey:
    """Parse (``MalformedInput``), verify with the listed device's key (``prekey_invalid``)
    and refuse one older than 30 days (``prekey_stale``)."""
    obj = members(data, ("prekey_id", "public_key", "created_at", "signature"))
    prekey = SignedPrekey(
        integer(obj["prekey_id"], below=PREKEY_ID_LIMIT),
        check_x25519_raw(exact_bytes(obj["public_key"], KEY_BYTES)),
        integer(obj["created_at"]),
        exact_bytes(obj["signature"], SIGNATURE_BYTES),
    )
    signed = signed_prekey_bytes(
        username, device.device_id, prekey.prekey_id, prekey.public_key, prekey.created_at
    )
    try:
        ed25519_verify_raw(device.signing_key, prekey.signature, signed)
    except VerificationFailed as exc:
        raise Refusal("prekey_invalid") from exc
    if now - prekey.created_at > SIGNED_PREKEY_MAX_AGE_MS:
        raise Refusal("prekey_stale")
    return prekey


def check_one_time_prekey(data: object, username: str, device: Device) -> OneTimePrekey:
    obj = members(data, ("prekey_id", "public_key", "signature"))
    prekey = OneTimePrekey(
        integer(obj["prekey_id"], below=PREKEY_ID_LIMIT),
        check_x25519_raw(exact_bytes(obj["public_key"], KEY_BYTES)),
        exact_bytes(obj["signature"], SIGNATURE_BYTES),
    )
    signed = one_time_prekey_bytes(username, device.device_id, prekey.prekey_id, prekey.public_key)
    try:
        ed25519_verify_raw(device.signing_key, prekey.signature, signed)
    except VerificationFailed as exc:
        raise Refusal("prekey_invalid") from exc
    return prekey


def signed_prekey_private_expired(replaced_at: int | None, now: int) -> bool:
    """Whether the owning device must delete a signed prekey's private half now: 30 days
    after a newer signed prekey replaced it (15.4)."""
    return replaced_at is not None and now - replaced_at >= SIGNED_PREKEY_GRACE_MS
