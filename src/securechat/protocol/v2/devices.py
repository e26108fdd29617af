"""Device certificates and the signed device list (PROTOCOL.md 15.3)."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..encoding import b64encode, canonical, u64
from ..errors import MalformedInput, VerificationFailed
from ..identifiers import Username, parse_username
from .errors import Refusal
from .labels import DEVICE_CERTIFICATE, DEVICE_LIST
from .primitives import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    check_ed25519_raw,
    check_x25519_raw,
    device_id,
    ed25519_raw_public,
    ed25519_sign_raw,
    ed25519_verify_raw,
)
from .wire import exact_bytes, integer, members, version_two

MAX_DEVICES = 32
_DEVICE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Device:
    """One listed device: its keys and the account's certificate (``b""`` when missing)."""

    device_id: str
    signing_key: bytes  # Ed25519, raw 32 bytes
    dh_key: bytes  # X25519, raw 32 bytes
    created_at: int
    certificate: bytes

    @cached_property
    def verification_key(self) -> ed25519.Ed25519PublicKey:
        """The signing key, checked (15.1) and loaded once for every envelope it signs;
        MalformedInput as ``check_ed25519_raw`` (nothing is cached then)."""
        return check_ed25519_raw(self.signing_key)

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "device_id": self.device_id,
            "signing_key": b64encode(self.signing_key),
            "dh_key": b64encode(self.dh_key),
            "created_at": self.created_at,
        }
        if self.certificate:
            wire["certificate"] = b64encode(self.certificate)
        return wire


@dataclass(frozen=True)
class DeviceList:
    username: Username
    account_key: bytes
    version: int
    issued_at: int
    devices: tuple[Device, ...]
    signature: bytes

    @property
    def signed_bytes(self) -> bytes:
        return device_list_bytes(self.username, self.account_key, self.version, self.issued_at, self.devices)

    @property
    def list_hash(self) -> bytes:
        return hashlib.sha256(self.signed_bytes).digest()

    def device(self, device_id_: str) -> Device:
        """The listed device with this id; ``device_not_listed`` otherwise."""
        for entry in self.devices:
            if entry.device_id == device_id_:
                return entry
        raise Refusal("device_not_listed")

    def to_wire(self) -> dict[str, object]:
        return {
            "v": 2,
            "username": self.username,
            "account_key": b64encode(self.account_key),
            "version": self.version,
            "issued_at": self.issued_at,
            "devices": [entry.to_wire() for entry in self.devices],
            "signature": b64encode(self.signature),
        }


@dataclass(frozen=True)
class KnownList:
    """What a client keeps of the list it accepted last: enough to refuse a rollback."""

    version: int
    list_hash: bytes


def certificate_bytes(
    username: str, account_key: bytes, device_id_: str, signing_key: bytes, dh_key: bytes, created_at: int
) -> bytes:
    return canonical(
        DEVICE_CERTIFICATE, [username, account_key, device_id_, signing_key, dh_key, u64(created_at)]
    )


def device_list_bytes(
    username: str, account_key: bytes, version: int, issued_at: int, devices: tuple[Device, ...]
) -> bytes:
    fields: list[bytes | str] = [username, account_key, u64(version), u64(issued_at), u64(len(devices))]
    for entry in devices:
        fields += [entry.device_id, entry.signing_key, entry.dh_key, u64(entry.created_at), entry.certificate]
    return canonical(DEVICE_LIST, fields)


def certify_device(
    account_seed: bytes, username: Username, signing_key: bytes, dh_key: bytes, created_at: int
) -> Device:
    """The account key certifies a device's signing and DH keys (the owning side)."""
    account_key = ed25519_raw_public(account_seed)
    ident = device_id(signing_key)
    signed = certificate_bytes(username, account_key, ident, signing_key, dh_key, created_at)
    return Device(ident, signing_key, dh_key, created_at, ed25519_sign_raw(account_seed, signed))


def sign_device_list(
    account_seed: bytes, username: Username, version: int, issued_at: int, devices: list[Device]
) -> DeviceList:
    """Sign a list of devices (sorted here by id) as version ``version`` (the owning side)."""
    ordered = tuple(sorted(devices, key=lambda entry: entry.device_id))
    account_key = ed25519_raw_public(account_seed)
    signed = device_list_bytes(username, account_key, version, issued_at, ordered)
    return DeviceList(
        username, account_key, version, issued_at, ordered, ed25519_sign_raw(account_seed, signed)
    )


def parse_device_list(data: object) -> DeviceList:
    """Parse a device list's wire form (15.3 step 1); checks no signature."""
    obj = members(data, ("v", "username", "account_key", "version", "issued_at", "devices", "signature"))
    version_two(obj["v"])
    name = obj["username"]
    if not isinstance(name, str) or parse_username(name) != name:
        raise MalformedInput("username must be normalised")
    account_key = exact_bytes(obj["account_key"], KEY_BYTES)
    check_ed25519_raw(account_key)
    version = integer(obj["version"], minimum=1)
    issued_at = integer(obj["issued_at"])
    raw_devices = obj["devices"]
    if not isinstance(raw_devices, list) or not 1 <= len(raw_devices) <= MAX_DEVICES:
        raise MalformedInput("1 to 32 devices")
    devices: list[Device] = []
    for raw in raw_devices:
        entry = members(raw, ("device_id", "signing_key", "dh_key", "created_at"), ("certificate",))
        ident = entry["device_id"]
        if not isinstance(ident, str) or not _DEVICE_ID.fullmatch(ident):
            raise MalformedInput("device id")
        signing_key = exact_bytes(entry["signing_key"], KEY_BYTES)
        check_ed25519_raw(signing_key)
        dh_key = check_x25519_raw(exact_bytes(entry["dh_key"], KEY_BYTES))
        created_at = integer(entry["created_at"])
        certificate = exact_bytes(entry["certificate"], SIGNATURE_BYTES) if "certificate" in entry else b""
        devices.append(Device(ident, signing_key, dh_key, created_at, certificate))
    if any(a.device_id >= b.device_id for a, b in itertools.pairwise(devices)):
        raise MalformedInput("devices must be in strictly ascending id order")
    signature = exact_bytes(obj["signature"], SIGNATURE_BYTES)
    return DeviceList(parse_username(name), account_key, version, issued_at, tuple(devices), signature)


def check_device_list(
    data: object, username: Username, account_key: bytes, known: KnownList | None
) -> DeviceList:
    """PROTOCOL.md 15.3: parse, check the account's signature, every certificate, and
    that the list does not roll back the one accepted before. Returns the list."""
    device_list = parse_device_list(data)
    if device_list.username != username or device_list.account_key != account_key:
        raise Refusal("device_list_invalid")
    try:
        ed25519_verify_raw(account_key, device_list.signature, device_list.signed_bytes)
    except VerificationFailed as exc:
        raise Refusal("device_list_invalid") from exc
    for entry in device_list.devices:
        if not entry.certificate or entry.device_id != device_id(entry.signing_key):
            raise Refusal("device_certificate_invalid")
        signed = certificate_bytes(
            username, account_key, entry.device_id, entry.signing_key, entry.dh_key, entry.created_at
        )
        try:
            ed25519_verify_raw(account_key, entry.certificate, signed)
        except VerificationFailed as exc:
            raise Refusal("device_certificate_invalid") from exc
    if known is not None and (
        device_list.version < known.version
        or (device_list.version == known.version and device_list.list_hash != known.list_hash)
    ):
        raise Refusal("device_list_rollback")
    return device_list
