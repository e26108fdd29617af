"""This home's device (PROTOCOL.md 15.3): an Ed25519 signing key and an X25519 DH key,
made once, certified by the account key (v1's Ed25519 signing key, 15.12)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...protocol.encoding import b64decode, b64encode
from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity
from ...protocol.v2.devices import Device, certify_device
from ...protocol.v2.primitives import device_id as device_id_of
from ...protocol.v2.primitives import ed25519_raw_public, x25519_public

DEVICE_RECORD = "device"


def account_seed(identity: PrivateIdentity) -> bytes:
    """v2's account key is v1's Ed25519 signing key: its 32-byte seed."""
    return identity.signing_private.private_bytes_raw()


@dataclass(frozen=True)
class LocalDevice:
    """This device's private keys and its certified, listable entry."""

    signing_seed: bytes
    dh_private: bytes
    device: Device

    @property
    def device_id(self) -> str:
        return self.device.device_id

    @classmethod
    def create(cls, identity: PrivateIdentity, now: int, account_secret: bytes | None = None) -> LocalDevice:
        """A new device, certified by ``account_secret`` (the account key after a rotation,
        15.11) or else v1's signing seed."""
        signing_seed, dh_private = os.urandom(32), os.urandom(32)
        device = certify_device(
            account_seed(identity) if account_secret is None else account_secret,
            Username(identity.username),
            ed25519_raw_public(signing_seed),
            x25519_public(dh_private),
            now,
        )
        return cls(signing_seed, dh_private, device)

    def to_record(self) -> dict[str, Any]:
        return {
            "signing_seed": b64encode(self.signing_seed),
            "dh_private": b64encode(self.dh_private),
            "created_at": self.device.created_at,
            "certificate": b64encode(self.device.certificate),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LocalDevice:
        signing_seed = b64decode(record["signing_seed"])
        dh_private = b64decode(record["dh_private"])
        signing_key = ed25519_raw_public(signing_seed)
        device = Device(
            device_id_of(signing_key),
            signing_key,
            x25519_public(dh_private),
            int(record["created_at"]),
            b64decode(record["certificate"]),
        )
        return cls(signing_seed, dh_private, device)

    def recertified(self, listed: Device) -> LocalDevice:
        """This device with the certificate an accepted list carries for it (re-issued by a
        new account key, 15.11); the same keys, so the same device."""
        if listed.device_id != self.device_id or listed.certificate == self.device.certificate:
            return self
        return LocalDevice(self.signing_seed, self.dh_private, listed)
