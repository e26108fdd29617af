"""Project Wycheproof vectors, run against SecureChat's own wrappers.

Every vector in every file becomes exactly one pytest case, named ``<primitive>-<tcId>``.
Nothing is skipped: vectors our wrappers refuse by policy (AES-GCM IVs that are not
96 bits) are asserted to be refused. The files are a copy of C2SP/wycheproof
(``tests/data/wycheproof/README.md``, Apache-2.0), so the suite runs on a fresh clone.

Result handling: ``valid`` must succeed with the expected output, ``invalid`` must
raise the specific error the wrapper documents. None of these files contains an
``acceptable`` vector; ``test_vector_files_are_complete`` fails if an updated file
introduces one, so that its behaviour is decided and written down here.
"""

from __future__ import annotations

import functools
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.protocol.errors import MalformedInput, VerificationFailed
from securechat.protocol.primitives import (
    GCM_IV_BYTES,
    RSA_EXPONENT,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    ed25519_verify,
    hkdf_sha256,
    hmac_sha256,
    load_ed25519_public_key,
    load_rsa_public_key,
    pbkdf2_sha256,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
    spki,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "wycheproof"

# File name -> the prefix of its pytest ids.
FILES = {
    "aes_gcm_test.json": "aes_gcm",
    "ed25519_test.json": "ed25519",
    "hkdf_sha256_test.json": "hkdf_sha256",
    "pbkdf2_hmacsha256_test.json": "pbkdf2_sha256",
    "rsa_oaep_2048_sha256_mgf1sha256_test.json": "rsa_oaep",
    "hmac_sha256_test.json": "hmac_sha256",
}

Vector = tuple[dict[str, Any], dict[str, Any]]


@functools.cache
def load_suite(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def vectors(name: str, *, result: str, where: Any = None) -> list[Any]:
    """One ``pytest.param(group, test)`` per vector with this result (and predicate)."""
    prefix = FILES[name]
    return [
        pytest.param(group, test, id=f"{prefix}-{test['tcId']}")
        for group in load_suite(name)["testGroups"]
        for test in group["tests"]
        if test["result"] == result and (where is None or where(group, test))
    ]


def unhex(test: dict[str, Any], *fields: str) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(test[field]) for field in fields)


def test_vector_files_are_complete() -> None:
    """Each file holds what its header says, with unique ids and no ``acceptable`` result."""
    for name in FILES:
        suite = load_suite(name)
        tests = [test for group in suite["testGroups"] for test in group["tests"]]
        assert len(tests) == suite["numberOfTests"], name
        assert len({test["tcId"] for test in tests}) == len(tests), name
        # An ``acceptable`` vector needs a decision (accept or refuse) recorded in
        # this file; none exists in the current copies.
        assert {test["result"] for test in tests} <= {"valid", "invalid"}, name
    assert (DATA / "LICENSE").is_file()


# --- AES-GCM -----------------------------------------------------------------------
# Protocol v1 uses 96-bit IVs only. The wrapper refuses every other IV size: on
# encrypt with MalformedInput (a caller bug), on decrypt with the opaque
# VerificationFailed (the input came from the network).

AES_GCM = "aes_gcm_test.json"


def _iv_is_96_bits(group: dict[str, Any], test: dict[str, Any]) -> bool:
    return len(test["iv"]) == 2 * GCM_IV_BYTES


def _iv_is_not_96_bits(group: dict[str, Any], test: dict[str, Any]) -> bool:
    return not _iv_is_96_bits(group, test)


@pytest.mark.parametrize(("group", "test"), vectors(AES_GCM, result="valid", where=_iv_is_96_bits))
def test_aes_gcm_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, aad, msg, ct, tag = unhex(test, "key", "iv", "aad", "msg", "ct", "tag")
    assert aes_gcm_encrypt(key, iv, msg, aad) == ct + tag
    assert aes_gcm_decrypt(key, iv, ct + tag, aad) == msg


@pytest.mark.parametrize(("group", "test"), vectors(AES_GCM, result="invalid", where=_iv_is_96_bits))
def test_aes_gcm_invalid(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, aad, msg, ct, tag = unhex(test, "key", "iv", "aad", "msg", "ct", "tag")
    with pytest.raises(VerificationFailed):
        aes_gcm_decrypt(key, iv, ct + tag, aad)
    # Encrypting the same inputs gives the genuine tag, not the modified one.
    assert aes_gcm_encrypt(key, iv, msg, aad) != ct + tag


def _refused_iv_vectors() -> list[Any]:
    return vectors(AES_GCM, result="valid", where=_iv_is_not_96_bits) + vectors(
        AES_GCM, result="invalid", where=_iv_is_not_96_bits
    )


@pytest.mark.parametrize(("group", "test"), _refused_iv_vectors())
def test_aes_gcm_other_iv_sizes_are_refused(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, aad, msg, ct, tag = unhex(test, "key", "iv", "aad", "msg", "ct", "tag")
    assert len(iv) != GCM_IV_BYTES
    if test["result"] == "valid" and 8 <= len(iv) <= 128:
        # The vector is sound GCM (pyca alone accepts it), so the refusal below is
        # our wrapper's policy and not an artefact of a broken vector. (pyca itself
        # accepts only 8- to 128-byte nonces, so shorter and longer IVs cannot be
        # cross-checked this way.)
        assert AESGCM(key).encrypt(iv, msg, aad) == ct + tag
    with pytest.raises(MalformedInput):
        aes_gcm_encrypt(key, iv, msg, aad)
    with pytest.raises(VerificationFailed):
        aes_gcm_decrypt(key, iv, ct + tag, aad)


def test_aes_gcm_iv_policy_covers_the_expected_vectors() -> None:
    refused = _refused_iv_vectors()
    # 6 zero-length IVs (invalid) and 113 valid vectors with IVs of 8 to 2056 bits.
    assert len(refused) == 119
    zero_length = [param for param in refused if param.values[1]["iv"] == ""]
    assert len(zero_length) == 6
    assert all(param.values[1]["result"] == "invalid" for param in zero_length)


# --- Ed25519 -----------------------------------------------------------------------
# Groups carry the public key as raw bytes and as SPKI DER. We load the DER with our
# own loader (the path real keys take) and check it is the same raw key.

ED25519 = "ed25519_test.json"


def ed25519_key(group: dict[str, Any]) -> ed25519.Ed25519PublicKey:
    key = load_ed25519_public_key(bytes.fromhex(group["publicKeyDer"]))
    raw = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(group["publicKey"]["pk"]))
    assert key.public_bytes_raw() == raw.public_bytes_raw()
    return key


@pytest.mark.parametrize(("group", "test"), vectors(ED25519, result="valid"))
def test_ed25519_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    msg, sig = unhex(test, "msg", "sig")
    ed25519_verify(ed25519_key(group), sig, msg)


@pytest.mark.parametrize(("group", "test"), vectors(ED25519, result="invalid"))
def test_ed25519_invalid(group: dict[str, Any], test: dict[str, Any]) -> None:
    # Truncated, padded, malleable (S >= L) and non-canonical signatures all raise
    # the same opaque error.
    msg, sig = unhex(test, "msg", "sig")
    with pytest.raises(VerificationFailed):
        ed25519_verify(ed25519_key(group), sig, msg)


# --- HKDF-SHA256 -------------------------------------------------------------------

HKDF = "hkdf_sha256_test.json"


@pytest.mark.parametrize(("group", "test"), vectors(HKDF, result="valid"))
def test_hkdf_sha256_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    ikm, salt, info, okm = unhex(test, "ikm", "salt", "info", "okm")
    assert hkdf_sha256(ikm, salt=salt, info=info, length=test["size"]) == okm


@pytest.mark.parametrize(("group", "test"), vectors(HKDF, result="invalid"))
def test_hkdf_sha256_invalid(group: dict[str, Any], test: dict[str, Any]) -> None:
    # The only invalid vectors ask for more than 255 * 32 bytes. The wrapper lets
    # pyca's ValueError through: it is a programming error (the protocol always asks
    # for 32 bytes), not hostile input, so it is not part of the ProtocolError tree.
    assert "SizeTooLarge" in test["flags"]
    ikm, salt, info = unhex(test, "ikm", "salt", "info")
    with pytest.raises(ValueError, match="8160"):
        hkdf_sha256(ikm, salt=salt, info=info, length=test["size"])


# --- PBKDF2-HMAC-SHA256 ------------------------------------------------------------
# Every vector runs: the largest iteration count in the file is 80,000 and the rest
# use at most 4,096, a fraction of a second in all. No vector is excluded.

PBKDF2 = "pbkdf2_hmacsha256_test.json"


def test_pbkdf2_vectors_are_cheap_enough_to_run_in_full() -> None:
    counts = [test["iterationCount"] for group in load_suite(PBKDF2)["testGroups"] for test in group["tests"]]
    assert len(counts) == 60
    assert max(counts) == 80_000
    assert sum(counts) < 400_000  # Less than one 600k-iteration login.


@pytest.mark.parametrize(("group", "test"), vectors(PBKDF2, result="valid"))
def test_pbkdf2_sha256_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    password, salt, dk = unhex(test, "password", "salt", "dk")
    assert pbkdf2_sha256(password, salt, test["iterationCount"], test["dkLen"]) == dk


def test_pbkdf2_has_no_invalid_vectors() -> None:
    assert vectors(PBKDF2, result="invalid") == []


# --- HMAC-SHA256 -------------------------------------------------------------------
# The wrapper computes a full 32-byte MAC; the vectors include 128-bit truncated tags,
# which are compared against the MAC's prefix. An invalid vector carries a modified
# tag, so the computed MAC must not match it (in constant time, as callers compare).

HMAC = "hmac_sha256_test.json"


@pytest.mark.parametrize(("group", "test"), vectors(HMAC, result="valid"))
def test_hmac_sha256_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, msg, tag = unhex(test, "key", "msg", "tag")
    mac = hmac_sha256(key, msg)
    assert len(mac) == 32
    assert mac[: group["tagSize"] // 8] == tag


@pytest.mark.parametrize(("group", "test"), vectors(HMAC, result="invalid"))
def test_hmac_sha256_invalid(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, msg, tag = unhex(test, "key", "msg", "tag")
    assert not hmac.compare_digest(hmac_sha256(key, msg)[: group["tagSize"] // 8], tag)


# --- RSA-OAEP-2048, SHA-256, MGF1-SHA-256 --------------------------------------------

RSA_OAEP = "rsa_oaep_2048_sha256_mgf1sha256_test.json"


@functools.cache
def oaep_private_key(pkcs8_hex: str) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(bytes.fromhex(pkcs8_hex), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.mark.parametrize(("group", "test"), vectors(RSA_OAEP, result="valid"))
def test_rsa_oaep_valid(group: dict[str, Any], test: dict[str, Any]) -> None:
    msg, ct, label = unhex(test, "msg", "ct", "label")
    private_key = oaep_private_key(group["privateKeyPkcs8"])
    assert rsa_oaep_decrypt(private_key, ct, label) == msg
    # OAEP is randomised, so our encryption cannot match ``ct``; it must round-trip.
    ours = rsa_oaep_encrypt(private_key.public_key(), msg, label)
    assert rsa_oaep_decrypt(private_key, ours, label) == msg


@pytest.mark.parametrize(("group", "test"), vectors(RSA_OAEP, result="invalid"))
def test_rsa_oaep_invalid(group: dict[str, Any], test: dict[str, Any]) -> None:
    # Bad padding, a wrong label hash and malformed ciphertexts (empty, unreduced,
    # too long, too short) are indistinguishable to the caller.
    ct, label = unhex(test, "ct", "label")
    with pytest.raises(VerificationFailed):
        rsa_oaep_decrypt(oaep_private_key(group["privateKeyPkcs8"]), ct, label)


def test_rsa_oaep_vector_keys_load_and_pass_our_public_key_policy() -> None:
    groups = load_suite(RSA_OAEP)["testGroups"]
    assert groups
    for group in groups:
        private_key = oaep_private_key(group["privateKeyPkcs8"])
        pem_key = serialization.load_pem_private_key(group["privateKeyPem"].encode(), password=None)
        assert isinstance(pem_key, rsa.RSAPrivateKey)
        expected = group["privateKey"]
        numbers = private_key.private_numbers()
        assert numbers == pem_key.private_numbers()
        assert numbers.public_numbers.n == int(expected["modulus"], 16)
        assert numbers.public_numbers.e == int(expected["publicExponent"], 16) == RSA_EXPONENT
        assert numbers.d == int(expected["privateExponent"], 16)
        assert {numbers.p, numbers.q} == {int(expected["prime1"], 16), int(expected["prime2"], 16)}

        public_key = load_rsa_public_key(spki(private_key.public_key()))
        assert public_key.key_size == group["keySize"] == 2048
        assert public_key.public_numbers() == numbers.public_numbers
