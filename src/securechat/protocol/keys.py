"""Identity key pairs, the sealed private-key bundle, fingerprints and safety numbers."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .encoding import b64decode, b64encode, canonical, split_canonical
from .errors import MalformedInput, UnsupportedVersion, VerificationFailed
from .identifiers import Username
from .labels import (
    ENCRYPTION_KEY_BINDING,
    KEY_BUNDLE_AAD,
    KEY_BUNDLE_PLAINTEXT,
    SAFETY_NUMBER,
)
from .primitives import (
    GCM_IV_BYTES,
    RSA_EXPONENT,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    ed25519_sign,
    ed25519_verify,
    load_ed25519_private_key,
    load_ed25519_public_key,
    load_rsa_private_key,
    load_rsa_public_key,
    pkcs8,
    spki,
)

KEY_BUNDLE_VERSION = 1
MAX_PUBLIC_KEY_BYTES = 1024
MAX_BUNDLE_BYTES = 8192
SAFETY_NUMBER_ITERATIONS = 5200


@dataclass(frozen=True)
class PublicIdentity:
    """A user's published keys: Ed25519 for signatures, RSA-OAEP for key wrapping.

    The encryption key is signed by the signing key, binding it to the username.
    """

    username: Username
    signing_key: bytes  # SPKI DER, Ed25519
    encryption_key: bytes  # SPKI DER, RSA
    encryption_key_signature: bytes

    def verified(self) -> PublicIdentity:
        """Check key formats, parameters and the binding signature; return self."""
        signing = load_ed25519_public_key(self.signing_key)
        load_rsa_public_key(self.encryption_key)
        ed25519_verify(
            signing, self.encryption_key_signature, encryption_key_binding(self.username, self.encryption_key)
        )
        return self

    def to_wire(self) -> dict[str, str]:
        return {
            "username": self.username,
            "signing_key": b64encode(self.signing_key),
            "encryption_key": b64encode(self.encryption_key),
            "encryption_key_signature": b64encode(self.encryption_key_signature),
        }

    @classmethod
    def from_wire(cls, username: Username, data: dict[str, object]) -> PublicIdentity:
        def field(name: str, limit: int) -> bytes:
            value = data.get(name)
            if not isinstance(value, str):
                raise MalformedInput(f"{name} must be a base64 string")
            return b64decode(value, max_bytes=limit)

        return cls(
            username=username,
            signing_key=field("signing_key", MAX_PUBLIC_KEY_BYTES),
            encryption_key=field("encryption_key", MAX_PUBLIC_KEY_BYTES),
            encryption_key_signature=field("encryption_key_signature", 64),
        )


@dataclass(frozen=True)
class PrivateIdentity:
    username: Username
    signing_private: ed25519.Ed25519PrivateKey
    encryption_private: rsa.RSAPrivateKey
    public: PublicIdentity

    @classmethod
    def generate(cls, username: Username, rsa_bits: int = 2048) -> PrivateIdentity:
        signing_private = ed25519.Ed25519PrivateKey.generate()
        encryption_private = rsa.generate_private_key(public_exponent=RSA_EXPONENT, key_size=rsa_bits)
        return cls.from_private_keys(username, signing_private, encryption_private)

    @classmethod
    def from_private_keys(
        cls,
        username: Username,
        signing_private: ed25519.Ed25519PrivateKey,
        encryption_private: rsa.RSAPrivateKey,
    ) -> PrivateIdentity:
        encryption_spki = spki(encryption_private.public_key())
        public = PublicIdentity(
            username=username,
            signing_key=spki(signing_private.public_key()),
            encryption_key=encryption_spki,
            encryption_key_signature=ed25519_sign(
                signing_private, encryption_key_binding(username, encryption_spki)
            ),
        )
        return cls(username, signing_private, encryption_private, public)


def encryption_key_binding(username: str, encryption_spki: bytes) -> bytes:
    return canonical(ENCRYPTION_KEY_BINDING, [username, encryption_spki])


def key_bundle_aad(username: str, version: int = KEY_BUNDLE_VERSION) -> bytes:
    return canonical(KEY_BUNDLE_AAD, [username, str(version)])


def seal_key_bundle(
    identity: PrivateIdentity, wrap_key: bytes, *, iv: bytes | None = None
) -> dict[str, object]:
    """Seal both private keys (PKCS#8) under the wrap key; the result is opaque to the server."""
    iv = iv if iv is not None else os.urandom(GCM_IV_BYTES)
    plaintext = canonical(
        KEY_BUNDLE_PLAINTEXT, [pkcs8(identity.encryption_private), pkcs8(identity.signing_private)]
    )
    ciphertext = aes_gcm_encrypt(wrap_key, iv, plaintext, key_bundle_aad(identity.username))
    return {"v": KEY_BUNDLE_VERSION, "iv": b64encode(iv), "ciphertext": b64encode(ciphertext)}


def open_key_bundle(bundle: object, wrap_key: bytes, username: Username) -> PrivateIdentity:
    """Unseal a key bundle; raise VerificationFailed for a wrong password or tampering."""
    if not isinstance(bundle, dict):
        raise MalformedInput("key bundle must be an object")
    if set(bundle) != {"v", "iv", "ciphertext"}:
        raise MalformedInput("key bundle fields must be exactly v, iv, ciphertext")
    version = bundle["v"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedInput("key bundle version must be an integer")
    if version != KEY_BUNDLE_VERSION:
        raise UnsupportedVersion("unsupported key bundle version")
    iv_text, ciphertext_text = bundle.get("iv"), bundle.get("ciphertext")
    if not isinstance(iv_text, str) or not isinstance(ciphertext_text, str):
        raise MalformedInput("key bundle fields must be base64 strings")
    iv = b64decode(iv_text, max_bytes=GCM_IV_BYTES)
    ciphertext = b64decode(ciphertext_text, max_bytes=MAX_BUNDLE_BYTES)
    plaintext = aes_gcm_decrypt(wrap_key, iv, ciphertext, key_bundle_aad(username))
    try:
        encryption_der, signing_der = split_canonical(plaintext, KEY_BUNDLE_PLAINTEXT)
        encryption_private = load_rsa_private_key(encryption_der)
        signing_private = load_ed25519_private_key(signing_der)
    except (ValueError, TypeError, MalformedInput) as exc:
        raise VerificationFailed() from exc
    return PrivateIdentity.from_private_keys(username, signing_private, encryption_private)


def fingerprint(spki_der: bytes) -> str:
    """SHA-256 of a key's SPKI, as upper-case hex in groups of four."""
    digest = hashlib.sha256(spki_der).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _safety_half(identity: PublicIdentity) -> str:
    """30 digits for one user: iterated SHA-512, as Signal does, truncated to 6×5 digits."""
    keys = canonical(SAFETY_NUMBER, [identity.signing_key, identity.encryption_key])
    digest = hashlib.sha512(canonical(SAFETY_NUMBER, [identity.username, keys])).digest()
    for _ in range(SAFETY_NUMBER_ITERATIONS):
        digest = hashlib.sha512(digest + keys).digest()
    return "".join(f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def safety_number(first: PublicIdentity, second: PublicIdentity) -> str:
    """A 60-digit number both users compute identically, whichever way round."""
    return "".join(sorted((_safety_half(first), _safety_half(second))))


def format_safety_number(number: str) -> str:
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))
