"""Thin wrappers over pyca/cryptography for the primitives protocol v1 uses.

Each exists in Web Crypto in current Chromium, Firefox and Safari. Every failure to
decrypt, unwrap or verify raises :class:`VerificationFailed`; nothing returns a bool.
The Wycheproof vectors in ``tests/data/wycheproof`` run against these functions.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .errors import MalformedInput, VerificationFailed, WeakParameters

AES_KEY_BYTES = 32
GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16
RSA_ALLOWED_BITS = (2048, 3072, 4096)
RSA_EXPONENT = 65537


def aes_gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM; returns ciphertext with the 16-byte tag appended (as Web Crypto does)."""
    if len(iv) != GCM_IV_BYTES:
        raise MalformedInput("AES-GCM IV must be 12 bytes")
    return AESGCM(key).encrypt(iv, plaintext, aad)


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(iv) != GCM_IV_BYTES or len(ciphertext) < GCM_TAG_BYTES:
        raise VerificationFailed()
    try:
        return AESGCM(key).decrypt(iv, ciphertext, aad)
    except (InvalidTag, ValueError) as exc:
        raise VerificationFailed() from exc


def _oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def rsa_oaep_encrypt(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> bytes:
    """RSA-OAEP with SHA-256 and MGF1-SHA-256, with an explicit label."""
    return public_key.encrypt(plaintext, _oaep(label))


def rsa_oaep_decrypt(private_key: rsa.RSAPrivateKey, ciphertext: bytes, label: bytes) -> bytes:
    try:
        return private_key.decrypt(ciphertext, _oaep(label))
    except ValueError as exc:
        raise VerificationFailed() from exc


def ed25519_sign(private_key: ed25519.Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def ed25519_verify(public_key: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Raise VerificationFailed unless ``signature`` is valid; never returns a bool."""
    if len(signature) != 64:
        raise VerificationFailed()
    try:
        public_key.verify(signature, message)
    except InvalidSignature as exc:
        raise VerificationFailed() from exc


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=iterations).derive(
        password
    )


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def load_rsa_public_key(spki_der: bytes) -> rsa.RSAPublicKey:
    """Parse an RSA public key (SPKI DER) and refuse weak or odd parameters."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInput("malformed RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise MalformedInput("not an RSA public key")
    numbers = key.public_numbers()
    if key.key_size not in RSA_ALLOWED_BITS:
        raise WeakParameters("RSA key size must be 2048, 3072 or 4096 bits")
    if numbers.e != RSA_EXPONENT:
        raise WeakParameters("RSA public exponent must be 65537")
    if (
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        != spki_der
    ):
        raise MalformedInput("RSA public key is not in canonical DER form")
    return key


def load_ed25519_public_key(spki_der: bytes) -> ed25519.Ed25519PublicKey:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInput("malformed Ed25519 public key") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise MalformedInput("not an Ed25519 public key")
    # One key, one encoding: otherwise the same key could carry two fingerprints.
    if spki(key) != spki_der:
        raise MalformedInput("Ed25519 public key is not in canonical DER form")
    return key


def spki(key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pkcs8(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
