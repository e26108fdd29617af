"""Sealing of this device's private v2 records in the client home.

v1 keeps no private key on disk (the identity is unsealed from the server's bundle with
the password). v2 cannot: the device keys, prekey private halves and ratchet states live
only here. They are written sealed with AES-GCM under a key derived from the account's
signing key, which the client holds only while unlocked: a copy of the home alone opens
none of them. Each record's name is its associated data, so records cannot be swapped.
"""

from __future__ import annotations

import os

from ...protocol.primitives import GCM_IV_BYTES, aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256

LOCAL_STATE_INFO = b"securechat/v2/local-state"
LOCAL_STATE_AAD = "securechat/v2/local-record/"


def local_state_key(account_seed: bytes) -> bytes:
    """The key that seals this home's v2 records (derived, never stored)."""
    return hkdf_sha256(account_seed, salt=bytes(32), info=LOCAL_STATE_INFO, length=32)


def seal_record(key: bytes, name: str, plaintext: bytes) -> bytes:
    iv = os.urandom(GCM_IV_BYTES)
    return iv + aes_gcm_encrypt(key, iv, plaintext, (LOCAL_STATE_AAD + name).encode())


def open_record(key: bytes, name: str, sealed: bytes) -> bytes:
    """The record's bytes; ``VerificationFailed`` for another key, name or any change."""
    return aes_gcm_decrypt(
        key, sealed[:GCM_IV_BYTES], sealed[GCM_IV_BYTES:], (LOCAL_STATE_AAD + name).encode()
    )
