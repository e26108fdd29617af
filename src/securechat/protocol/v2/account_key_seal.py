"""The account private key sealed under the password (PROTOCOL.md 15.11, "The account's
other devices").

After a rotation the account key is no longer v1's signing key, so the v1 key bundle
(6) no longer carries it. The rotating device seals the new 32-byte seed under the
password's wrap key (4.2), as the bundle is, and the server keeps it opaque; a device
opens it when it logs in or unlocks. The username and the public key are the associated
data, so a seal cannot be moved to another account or passed off as another key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..encoding import b64encode, canonical
from ..errors import VerificationFailed
from ..identifiers import Username
from ..primitives import GCM_IV_BYTES, aes_gcm_decrypt, aes_gcm_encrypt
from .primitives import KEY_BYTES, check_ed25519_raw, ed25519_raw_public
from .wire import exact_bytes, members, version_two

ACCOUNT_KEY_SEAL = "securechat/v2/account-key-seal"
SEALED_BYTES = KEY_BYTES + 16  # the seed and the GCM tag


def seal_aad(username: str, account_key: bytes) -> bytes:
    return canonical(ACCOUNT_KEY_SEAL, [username, account_key])


@dataclass(frozen=True)
class AccountKeySeal:
    account_key: bytes  # the public key, raw 32 bytes
    iv: bytes
    ciphertext: bytes

    def to_wire(self) -> dict[str, object]:
        return {
            "v": 2,
            "account_key": b64encode(self.account_key),
            "iv": b64encode(self.iv),
            "ciphertext": b64encode(self.ciphertext),
        }


def parse_account_key_seal(data: object) -> AccountKeySeal:
    """Exactly ``v, account_key, iv, ciphertext``; strict base64 of 32, 12 and 48 bytes;
    a key that passes 15.1. Else ``MalformedInput`` (``UnsupportedVersion`` for v ≠ 2)."""
    obj = members(data, ("v", "account_key", "iv", "ciphertext"))
    version_two(obj["v"])
    account_key = exact_bytes(obj["account_key"], KEY_BYTES)
    check_ed25519_raw(account_key)
    return AccountKeySeal(
        account_key, exact_bytes(obj["iv"], GCM_IV_BYTES), exact_bytes(obj["ciphertext"], SEALED_BYTES)
    )


def seal_account_key(
    wrap_key: bytes, username: Username, seed: bytes, iv: bytes | None = None
) -> AccountKeySeal:
    account_key = ed25519_raw_public(seed)
    iv = os.urandom(GCM_IV_BYTES) if iv is None else iv
    return AccountKeySeal(
        account_key, iv, aes_gcm_encrypt(wrap_key, iv, seed, seal_aad(username, account_key))
    )


def open_account_key(wrap_key: bytes, username: Username, data: object) -> bytes:
    """The 32-byte seed. ``MalformedInput``/``UnsupportedVersion`` for the form,
    ``VerificationFailed`` for another password, account or key, or any change."""
    seal = parse_account_key_seal(data)
    seed = aes_gcm_decrypt(wrap_key, seal.iv, seal.ciphertext, seal_aad(username, seal.account_key))
    if len(seed) != KEY_BYTES or ed25519_raw_public(seed) != seal.account_key:
        raise VerificationFailed("the sealed seed is not the named key's")
    return seed


__all__ = [
    "ACCOUNT_KEY_SEAL",
    "AccountKeySeal",
    "open_account_key",
    "parse_account_key_seal",
    "seal_account_key",
]
