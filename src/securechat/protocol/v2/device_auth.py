"""A device's proof that it holds its signing key (PROTOCOL.md 15.16, device credentials).

The server hands out a random nonce; the device signs it, with the account and its own
id, under its own label, so the signature can never pass for a prekey, an envelope or a
list (each of those starts with another label) and a nonce signed for one device or
account proves nothing for another.
"""

from __future__ import annotations

from ..encoding import canonical
from ..errors import MalformedInput
from .labels import DEVICE_AUTH
from .primitives import ed25519_sign_raw, ed25519_verify_raw

NONCE_BYTES = 32


def device_auth_bytes(username: str, device_id: str, nonce: bytes) -> bytes:
    """The bytes a device signs: canonical(DEVICE_AUTH, username, device_id, nonce)."""
    if len(nonce) != NONCE_BYTES:
        raise MalformedInput("a device challenge nonce is 32 bytes")
    return canonical(DEVICE_AUTH, [username, device_id, nonce])


def sign_device_auth(signing_seed: bytes, username: str, device_id: str, nonce: bytes) -> bytes:
    return ed25519_sign_raw(signing_seed, device_auth_bytes(username, device_id, nonce))


def verify_device_auth(
    signing_key: bytes, signature: bytes, username: str, device_id: str, nonce: bytes
) -> None:
    """Raise VerificationFailed (MalformedInput for a bad key or nonce) unless it verifies."""
    ed25519_verify_raw(signing_key, signature, device_auth_bytes(username, device_id, nonce))
