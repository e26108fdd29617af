"""X25519 and raw Ed25519 keys for protocol v2 (PROTOCOL.md 15.1), over pyca/cryptography.

v2 carries public keys as their 32 raw bytes (Web Crypto's ``raw`` format) rather than
v1's SPKI, and private X25519 keys as the 32-byte scalar, so that states and vectors are
compact and the same in both implementations.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..der import SMALL_ORDER_ENCODINGS
from ..encoding import canonical
from ..errors import MalformedInput
from ..primitives import ed25519_verify
from .labels import DEVICE_ID

KEY_BYTES = 32
SIGNATURE_BYTES = 64
_ZERO = bytes(KEY_BYTES)
_RAW = serialization.Encoding.Raw


class X25519Key:
    """An X25519 private key loaded once, with its public key.

    Loading a private key makes pyca (OpenSSL) derive the public key, a scalar
    multiplication as slow as the exchange itself; a session keeps one of these for its
    ratchet key so that neither sending nor a DH turn on receipt pays for it again.
    """

    __slots__ = ("_key", "private", "public")

    def __init__(self, private: bytes) -> None:
        if len(private) != KEY_BYTES:
            raise MalformedInput("an X25519 private key is 32 bytes")
        self.private = private
        self._key = X25519PrivateKey.from_private_bytes(private)
        self.public = self._key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)

    def exchange(self, public: bytes) -> bytes | None:
        """X25519(this key, public), or None when the output is all zero (a small-order
        peer key).

        Callers turn None into their own refusal; pyca raises for that case, and the raw
        check here makes the rule the protocol's own rather than the library's.
        """
        if len(public) != KEY_BYTES:
            raise MalformedInput("X25519 keys are 32 bytes")
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError:
            return None
        return None if shared == _ZERO else shared


def x25519_public(private: bytes) -> bytes:
    """The public key of a 32-byte X25519 private scalar."""
    return X25519Key(private).public


def x25519(private: bytes, public: bytes) -> bytes | None:
    """X25519(private, public), or None when the output is all zero (see X25519Key.exchange)."""
    if len(private) != KEY_BYTES or len(public) != KEY_BYTES:
        raise MalformedInput("X25519 keys are 32 bytes")
    return X25519Key(private).exchange(public)


def check_ed25519_raw(public: bytes) -> ed25519.Ed25519PublicKey:
    """A raw Ed25519 public key: 32 bytes and not of small order (PROTOCOL.md 5.1, 15.1)."""
    if len(public) != KEY_BYTES:
        raise MalformedInput("an Ed25519 public key is 32 bytes")
    if public[:31] + bytes([public[31] & 0x7F]) in SMALL_ORDER_ENCODINGS:
        raise MalformedInput("an Ed25519 public key of small order")
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise MalformedInput("malformed Ed25519 public key") from exc


def check_x25519_raw(public: bytes) -> bytes:
    if len(public) != KEY_BYTES:
        raise MalformedInput("an X25519 public key is 32 bytes")
    return public


def ed25519_raw_public(private_seed: bytes) -> bytes:
    """The raw public key of a 32-byte Ed25519 seed."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(private_seed)
    return key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


def ed25519_sign_raw(private_seed: bytes, message: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(private_seed).sign(message)


def ed25519_verify_raw(public: bytes, signature: bytes, message: bytes) -> None:
    """Raise VerificationFailed (or MalformedInput for a bad key) unless the signature verifies."""
    ed25519_verify(check_ed25519_raw(public), signature, message)


def device_id(signing_key: bytes) -> str:
    """PROTOCOL.md 15.1: 32 hex digits derived from the device's signing key."""
    return hashlib.sha256(canonical(DEVICE_ID, [signing_key])).digest()[:16].hex()
