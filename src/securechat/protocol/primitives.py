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

from .der import check_ed25519_pkcs8, check_ed25519_spki, check_rsa_pkcs8, parse_rsa_spki
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
    """Parse an RSA public key (SPKI DER) and refuse weak or odd parameters (PROTOCOL.md 5.2).

    The protocol's own DER reader decides, in the order 5.2 gives; the library only
    builds the key from bytes that already passed.
    """
    parsed = parse_rsa_spki(spki_der)
    if not parsed.is_rsa:
        raise MalformedInput("not an RSA public key")
    if parsed.modulus.bit_length() not in RSA_ALLOWED_BITS:
        raise WeakParameters("RSA key size must be 2048, 3072 or 4096 bits")
    if parsed.exponent != RSA_EXPONENT:
        raise WeakParameters("RSA public exponent must be 65537")
    if parsed.canonical_der != spki_der:
        raise MalformedInput("RSA public key is not in canonical DER form")
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInput("malformed RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.public_numbers() != rsa.RSAPublicNumbers(
        parsed.exponent, parsed.modulus
    ):
        raise MalformedInput("malformed RSA public key")
    return key


def load_ed25519_public_key(spki_der: bytes) -> ed25519.Ed25519PublicKey:
    """Parse an Ed25519 public key: exactly the 44-byte SPKI, not of small order (PROTOCOL.md 5.1)."""
    point = check_ed25519_spki(spki_der)
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    except ValueError as exc:
        raise MalformedInput("malformed Ed25519 public key") from exc


def load_rsa_private_key(pkcs8_der: bytes) -> rsa.RSAPrivateKey:
    """Parse an RSA private key in the one PKCS#8 form PROTOCOL.md 5.1 accepts.

    The numbers are checked for consistency by the library (it refuses a key whose
    exponents do not match its primes); anything refused is MalformedInput.
    """
    n, e, d, p, q, dmp1, dmq1, iqmp = check_rsa_pkcs8(pkcs8_der)
    try:
        key = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n)).private_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MalformedInput("malformed RSA private key") from exc
    return key


def load_ed25519_private_key(pkcs8_der: bytes) -> ed25519.Ed25519PrivateKey:
    """Parse an Ed25519 private key: exactly the 48-byte PKCS#8 form (PROTOCOL.md 5.1)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(check_ed25519_pkcs8(pkcs8_der))


def spki(key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pkcs8(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
