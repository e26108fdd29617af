#!/usr/bin/env python3
"""Generate tests/data/protocol_vectors.json, the protocol v1 test vectors.

Usage:
    python scripts/make_vectors.py            # (re)write the vector file
    python scripts/make_vectors.py --check    # exit 1 if the file is not what this script makes
    python scripts/make_vectors.py --fresh    # new RSA keys and new RSA-OAEP wraps (changes the file)

Everything in the file is deterministic except two things that cannot be seeded
portably: RSA key generation and RSA-OAEP encryption (randomised padding). Those are
made once and stored in the file (RSA private keys as PKCS#8, wrapped keys in the
``rsa_oaep`` section); later runs read them back from the existing file and reuse
them, so regenerating changes no byte unless the protocol code changed. A stored
wrapped key is reused only after it has been checked to unwrap, under the same label
and with the same private key, to the same plaintext.

Ed25519 keys come from fixed 32-byte seeds, and Ed25519 signatures are deterministic.
Every byte string is written as lower-case hex unless it sits inside a wire object,
where it is base64 exactly as it travels. Non-ASCII text is written as JSON ``\\u``
escapes so that no editor can re-normalise it.

The script builds every value through ``securechat.protocol`` and then checks that
the library's own high-level functions (seal, open, from_wire) agree with it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from decision_vectors import decisions_section

from securechat.protocol import PROTOCOL_VERSION, labels
from securechat.protocol.der import SMALL_ORDER_ENCODINGS, encode_length
from securechat.protocol.encoding import b64decode, b64encode, canonical, u64
from securechat.protocol.envelope import (
    Envelope,
    Header,
    WrappedKey,
    decode_payload,
    encode_payload,
    open_message,
    pad,
    seal_message,
    unpad,
    wrapped_key_label,
)
from securechat.protocol.errors import (
    MalformedInput,
    ProtocolError,
    UnsupportedVersion,
    VerificationFailed,
    WeakParameters,
)
from securechat.protocol.files import (
    FILE_CHUNK_BYTES,
    FileEncryptor,
    chunk_aad,
    chunk_ciphertext_size,
    chunk_count,
    chunk_nonce,
    chunk_plaintext_size,
    decrypt_chunk,
)
from securechat.protocol.groups import (
    GroupChange,
    GroupState,
    Invite,
    genesis,
    make_invite,
    sign_change,
    verify_chain,
)
from securechat.protocol.identifiers import (
    ConversationId,
    MessageId,
    Username,
    direct_conversation_id,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)
from securechat.protocol.kdf import KdfParams, derive_keys, normalise_password
from securechat.protocol.keys import (
    PrivateIdentity,
    PublicIdentity,
    _safety_half,
    encryption_key_binding,
    fingerprint,
    format_safety_number,
    key_bundle_aad,
    open_key_bundle,
    safety_number,
    seal_key_bundle,
)
from securechat.protocol.primitives import (
    aes_gcm_encrypt,
    ed25519_sign,
    load_ed25519_public_key,
    load_rsa_public_key,
    pkcs8,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
    spki,
)
from securechat.protocol.receipts import Receipt, make_receipt, receipt_signed_bytes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "tests" / "data" / "protocol_vectors.json"

PERSONAS = ("alice", "bob", "carol", "mallory")
# 2026-01-01T00:00:00Z in milliseconds: larger than 2**32, so u64 handling is exercised.
SENT_AT = 1_767_225_600_000
GROUP_ID = ConversationId("grp-" + hashlib.sha256(b"SecureChat test group").hexdigest()[:32])
ERROR_KINDS = {
    MalformedInput: "malformed",
    UnsupportedVersion: "unsupported_version",
    WeakParameters: "weak_parameters",
    VerificationFailed: "unverifiable",
}
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


def fixed_bytes(purpose: str, length: int) -> bytes:
    """Deterministic bytes for a named purpose: SHA-256 of a description, truncated."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"SecureChat test vector {counter} {purpose}".encode()).digest()
        counter += 1
    return out[:length]


def error_kind(exc: ProtocolError) -> str:
    for cls, kind in ERROR_KINDS.items():
        if isinstance(exc, cls):
            return kind
    raise TypeError(f"unexpected error type {type(exc).__name__}")


def outcome(action: Callable[[], object]) -> str:
    """Run ``action`` and return "ok" or the error kind it raised."""
    try:
        action()
    except ProtocolError as exc:
        return error_kind(exc)
    return "ok"


def flip_bit(data: bytes, index: int, mask: int = 0x01) -> bytes:
    changed = bytearray(data)
    changed[index] ^= mask
    return bytes(changed)


def hexes(items: list[bytes | str]) -> list[str]:
    return [(item.encode("utf-8") if isinstance(item, str) else item).hex() for item in items]


# --------------------------------------------------------------------------------------
# Material that cannot be seeded: RSA keys and RSA-OAEP wraps, reused from the old file.
# --------------------------------------------------------------------------------------


class StoredRandomness:
    """RSA keys and OAEP wraps read back from a previous vector file, or made fresh."""

    def __init__(self, previous: dict[str, Any] | None) -> None:
        self.previous = previous or {}
        self.wraps: list[dict[str, str]] = []
        self._wrap_cache: dict[tuple[str, str, str], str] = {}
        self._used: set[tuple[str, str, str]] = set()

    def identity_rsa_key(self, persona: str) -> rsa.RSAPrivateKey:
        """The persona's RSA-2048 key as stored in the old file's identities, or a new one."""
        stored = self.previous.get("identities", {}).get(persona, {}).get("encryption_private_pkcs8_hex")
        if stored is not None:
            key = serialization.load_der_private_key(bytes.fromhex(stored), password=None)
            if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 2048:
                raise RuntimeError(f"stored RSA key of {persona} is not RSA-2048")
            if pkcs8(key).hex() != stored:
                raise RuntimeError(f"stored PKCS#8 of {persona} does not re-serialise identically")
            return key
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def rsa_public(self, name: str, bits: int) -> bytes:
        """An RSA public key (SPKI) of ``bits`` stored under ``name`` in public_keys, or a new one."""
        for item in self.previous.get("public_keys", {}).get("rsa_encryption_keys", []):
            if item.get("name") == name:
                key = serialization.load_der_public_key(bytes.fromhex(item["spki_hex"]))
                if isinstance(key, rsa.RSAPublicKey) and key.key_size == bits:
                    return bytes.fromhex(item["spki_hex"])
        return spki(rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key())

    def load_wraps(self, identities: dict[str, rsa.RSAPrivateKey]) -> None:
        """Index the old file's OAEP wraps after checking each one still unwraps."""
        for item in self.previous.get("rsa_oaep", []):
            private = identities.get(item["recipient_identity"])
            if private is None:
                continue
            label = bytes.fromhex(item["label_hex"])
            try:
                plaintext = rsa_oaep_decrypt(private, bytes.fromhex(item["wrapped_key_hex"]), label)
            except VerificationFailed:
                continue
            if plaintext.hex() != item["plaintext_hex"]:
                continue
            self._wrap_cache[(item["recipient_identity"], item["label_hex"], item["plaintext_hex"])] = item[
                "wrapped_key_hex"
            ]

    def wrap(self, identity_name: str, private: rsa.RSAPrivateKey, plaintext: bytes, label: bytes) -> bytes:
        key = (identity_name, label.hex(), plaintext.hex())
        wrapped_hex = self._wrap_cache.get(key)
        if wrapped_hex is None:
            wrapped_hex = rsa_oaep_encrypt(private.public_key(), plaintext, label).hex()
            self._wrap_cache[key] = wrapped_hex
        if key not in self._used:
            self._used.add(key)
            self.wraps.append(
                {
                    "recipient_identity": identity_name,
                    "label_hex": label.hex(),
                    "plaintext_hex": plaintext.hex(),
                    "wrapped_key_hex": wrapped_hex,
                }
            )
        return bytes.fromhex(wrapped_hex)


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def labels_section() -> dict[str, dict[str, str]]:
    usage = {
        "AUTH_KEY_INFO": "HKDF info (raw UTF-8 bytes, not length-prefixed)",
        "WRAP_KEY_INFO": "HKDF info (raw UTF-8 bytes, not length-prefixed)",
        "KEY_BUNDLE_AAD": "canonical: AES-GCM AAD of the key bundle",
        "KEY_BUNDLE_PLAINTEXT": "canonical: plaintext layout of the key bundle",
        "ENCRYPTION_KEY_BINDING": "canonical: Ed25519-signed binding of the encryption key",
        "MESSAGE_HEADER": "canonical: message header, AES-GCM AAD of the message",
        "WRAPPED_KEY_LABEL": "canonical: RSA-OAEP label of a wrapped message key",
        "MESSAGE_SIGNATURE": "canonical: Ed25519 signature input of an envelope",
        "DIRECT_CONVERSATION": "canonical: SHA-256 input of a direct conversation id",
        "SAFETY_NUMBER": "canonical: safety number hash inputs",
        "PRELOGIN_FAKE_SALT": "canonical: server-internal (fake pre-login salt); not checked by clients",
        "FILE_CHUNK": "canonical: AES-GCM AAD of a file chunk",
        "GROUP_CHANGE": "canonical: Ed25519-signed bytes of a group membership change",
        "GROUP_CHANGE_HASH": "canonical: SHA-256 input of a change's hash (the next change's prev)",
        "GROUP_INVITE": "canonical: Ed25519-signed bytes of a group invite",
        "GROUP_INVITE_HASH": "canonical: SHA-256 input of an invite's hash (signed into a join)",
        "RECEIPT": "canonical: Ed25519-signed bytes of a delivered or read receipt",
    }
    names = sorted(name for name in vars(labels) if name.isupper())
    if set(names) != set(usage):
        raise RuntimeError(f"labels.py changed: {sorted(set(names) ^ set(usage))}")
    return {name: {"value": getattr(labels, name), "usage": usage[name]} for name in names}


def u64_section() -> list[dict[str, str]]:
    values = [0, 1, 255, 256, 2**32, SENT_AT, 2**53 - 1, 2**64 - 1]
    return [{"value": str(value), "hex": u64(value).hex()} for value in values]


def canonical_section() -> list[dict[str, Any]]:
    cases: list[tuple[str, str, list[bytes | str]]] = [
        ("label only, no fields", labels.MESSAGE_SIGNATURE, []),
        ("one empty field", labels.SAFETY_NUMBER, [b""]),
        ("binary fields", labels.SAFETY_NUMBER, [b"\x00", b"\xff\xfe"]),
        ("multi-byte UTF-8 string: length counts bytes", labels.DIRECT_CONVERSATION, ["\u00e9\U0001f600"]),
        (
            "field of 300 bytes: length 0x0000012c",
            labels.KEY_BUNDLE_PLAINTEXT,
            [bytes(range(256)) + bytes(44)],
        ),
        ("key bundle AAD: version as decimal text", labels.KEY_BUNDLE_AAD, ["alice", "1"]),
        ("direct conversation input", labels.DIRECT_CONVERSATION, ["alice", "bob"]),
        ("wrapped-key OAEP label", labels.WRAPPED_KEY_LABEL, ["3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f", "bob"]),
        ("file chunk AAD", labels.FILE_CHUNK, ["0b5e8c1a-7d2f-4e3b-9a6c-5d4e3f2a1b0c", u64(2), u64(1)]),
        ("group change hash input", labels.GROUP_CHANGE_HASH, [b"\x01\x02", b"\x03"]),
        ("group invite hash input", labels.GROUP_INVITE_HASH, [b"\x01\x02", b"\x03"]),
        (
            "group change",
            labels.GROUP_CHANGE,
            [u64(1), "grp-00", u64(0), b"", "alice", "create", u64(0), b"", u64(5)],
        ),
        (
            "group invite",
            labels.GROUP_INVITE,
            [u64(1), "grp-00", "0b5e8c1a-7d2f-4e3b-9a6c-5d4e3f2a1b0c", "alice", u64(9), u64(3)],
        ),
        (
            "message header",
            labels.MESSAGE_HEADER,
            [
                u64(1),
                "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f",
                "dm-00112233445566778899aabbccddeeff",
                "alice",
                u64(SENT_AT),
            ],
        ),
        ("encryption key binding (short stand-in key)", labels.ENCRYPTION_KEY_BINDING, ["bob", b"\x30\x00"]),
        ("pre-login fake salt input", labels.PRELOGIN_FAKE_SALT, ["nobody"]),
        (
            "receipt",
            labels.RECEIPT,
            [
                u64(1),
                "dm-00112233445566778899aabbccddeeff",
                "bob",
                "read",
                u64(1),
                "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f",
            ],
        ),
    ]
    return [
        {
            "note": note,
            "label": label,
            "fields_hex": hexes(fields),
            "expected_hex": canonical(label, fields).hex(),
        }
        for note, label, fields in cases
    ]


def base64_section() -> dict[str, list[dict[str, str]]]:
    valid = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x00\x00",
        b"f",
        b"fo",
        b"foo",
        b"foob",
        b"\xfb\xff\xbf",
        b"\x00\x0f\xbf",
    ]
    invalid = [
        ("AA", "missing padding"),
        ("AA=", "length not a multiple of 4"),
        ("AAAA====", "extra padding block"),
        ("A===", "three padding characters"),
        ("====", "padding only"),
        ("AB==", "non-zero unused bits (one byte)"),
        ("Zm9=", "non-zero unused bits (two bytes)"),
        ("AA==AA==", "padding in the middle"),
        ("=AAA", "padding first"),
        ("A=AA", "padding inside a group"),
        ("AA-_", "URL-safe alphabet"),
        ("AA\nAA==", "embedded newline"),
        (" AAA", "leading space"),
        ("AAA =", "embedded space"),
        ("AAAA\n", "trailing newline"),
        ("\u00e9AAA", "non-ASCII character"),
        ("AA\u0000A", "NUL character"),
    ]
    valid_cases = []
    for data in valid:
        text = b64encode(data)
        if b64decode(text) != data:
            raise RuntimeError("base64 round trip failed")
        valid_cases.append({"text": text, "hex": data.hex()})
    invalid_cases = []
    for text, note in invalid:
        if outcome(lambda text=text: b64decode(text)) != "malformed":
            raise RuntimeError(f"base64 {text!r} was accepted")
        invalid_cases.append({"text": text, "note": note, "expected": "malformed"})
    return {"valid": valid_cases, "invalid": invalid_cases}


def usernames_section() -> dict[str, list[dict[str, Any]]]:
    valid_inputs = [
        ("alice", "already normal"),
        ("Alice", "lower-cased"),
        ("BOB_42", "lower-cased, digits and underscore"),
        ("a.b_c-d", "all punctuation allowed"),
        ("abc", "minimum length 3"),
        ("a" * 32, "maximum length 32"),
        ("\uff21\uff2c\uff29\uff23\uff25", "fullwidth letters: NFKC then lower-case"),
        ("\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e", "mathematical bold letters (astral)"),
        ("\u212aate", "KELVIN SIGN becomes K, then k"),
        ("\ufb01nn", "ligature fi decomposes"),
        ("\u2460\u2461\u2462", "circled digits become 123"),
        ("\u216b", "ROMAN NUMERAL TWELVE becomes xii"),
        ("\u017fam", "LONG S becomes s"),
        ("\uff0e\uff3f\uff0d", "fullwidth . _ -"),
    ]
    invalid_inputs: list[tuple[object, str]] = [
        ("ab", "too short"),
        ("a" * 33, "too long"),
        ("", "empty"),
        ("al ice", "space"),
        ("alice@example.org", "@ not allowed"),
        ("\u00e9lise", "accented letter stays non-ASCII"),
        ("\u0130nan", "dotted capital I lower-cases to i + combining dot"),
        ("stra\u00dfe", "sharp s is not ASCII"),
        ("alice\u200b", "zero-width space"),
        ("alice\n", "trailing newline"),
        ("ali\u0000ce", "NUL"),
        ("\u0430lice", "Cyrillic a"),
        (42, "not a string"),
        (None, "not a string"),
    ]
    valid = []
    for text, note in valid_inputs:
        valid.append({"input": text, "normalised": parse_username(text), "note": note})
    invalid = []
    for value, note in invalid_inputs:
        if outcome(lambda value=value: parse_username(value)) != "malformed":
            raise RuntimeError(f"username {value!r} was accepted")
        invalid.append({"input": value, "note": note, "expected": "malformed"})
    return {"valid": valid, "invalid": invalid}


def identifiers_section() -> dict[str, Any]:
    message_valid = [
        "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f",
        "00000000-0000-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
    ]
    message_invalid = [
        ("3F0C6A6E-8D1B-4C2A-9E57-1B2F3C4D5E6F", "upper case"),
        ("3f0c6a6e-8d1b-1c2a-9e57-1b2f3c4d5e6f", "version 1"),
        ("3f0c6a6e-8d1b-4c2a-ce57-1b2f3c4d5e6f", "variant not RFC 4122"),
        ("3f0c6a6e8d1b4c2a9e571b2f3c4d5e6f", "no hyphens"),
        ("{3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f}", "braces"),
        ("3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f\n", "trailing newline"),
        ("", "empty"),
    ]
    conversation_valid = ["dm-00112233445566778899aabbccddeeff", GROUP_ID]
    conversation_invalid = [
        ("dm-00112233445566778899aabbccddeef", "31 hex digits"),
        ("grp-00112233445566778899aabbccddeeff0", "33 hex digits"),
        ("dm-00112233445566778899AABBCCDDEEFF", "upper-case hex"),
        ("group-00112233445566778899aabbccddeeff", "unknown prefix"),
        (" dm-00112233445566778899aabbccddeeff", "leading space"),
    ]
    for value in message_valid:
        parse_message_id(value)
    for value in conversation_valid:
        parse_conversation_id(value)
    for value, _ in message_invalid:
        if outcome(lambda value=value: parse_message_id(value)) != "malformed":
            raise RuntimeError(value)
    for value, _ in conversation_invalid:
        if outcome(lambda value=value: parse_conversation_id(value)) != "malformed":
            raise RuntimeError(value)
    direct = []
    for first, second in [("alice", "bob"), ("bob", "alice"), ("carol", "alice"), ("a_b", "a-b")]:
        low, high = sorted((first, second))
        data = canonical(labels.DIRECT_CONVERSATION, [low, high])
        direct.append(
            {
                "first": first,
                "second": second,
                "sha256_input_hex": data.hex(),
                "conversation_id": direct_conversation_id(Username(first), Username(second)),
            }
        )
    return {
        "message_ids": {
            "valid": message_valid,
            "invalid": [{"input": v, "note": n, "expected": "malformed"} for v, n in message_invalid],
        },
        "conversation_ids": {
            "valid": conversation_valid,
            "invalid": [{"input": v, "note": n, "expected": "malformed"} for v, n in conversation_invalid],
        },
        "direct_conversations": direct,
    }


KDF_CASES = [
    # (name, password, equivalent spellings that must derive the same keys)
    ("ascii_password", "correct horse battery staple", []),
    (
        "non_ascii_password_nfkc",
        # Fullwidth "Caf", e + COMBINING ACUTE, ligature fi, CIRCLED DIGIT ONE, NBSP, ROMAN NUMERAL TWELVE.
        "\uff23\uff41\uff46e\u0301 \ufb01x\u2460\u00a0\u216b",
        ["Caf\u00e9 fix1 XII"],
    ),
]


def kdf_section() -> list[dict[str, Any]]:
    cases = []
    for name, password, equivalents in KDF_CASES:
        params = KdfParams(salt=fixed_bytes(f"kdf salt {name}", 16), iterations=600_000)
        derived = derive_keys(password, params)
        for other in equivalents:
            if derive_keys(other, params) != derived:
                raise RuntimeError("NFKC-equivalent passwords derived different keys")
        cases.append(
            {
                "name": name,
                "password": password,
                "nfkc_equivalents": equivalents,
                "password_bytes_hex": normalise_password(password).hex(),
                "kdf_wire": params.to_wire(),
                "salt_hex": params.salt.hex(),
                "iterations": params.iterations,
                "auth_key_hex": derived.auth_key.hex(),
                "wrap_key_hex": derived.wrap_key.hex(),
            }
        )
    return cases


def kdf_params_section() -> dict[str, list[dict[str, Any]]]:
    salt = b64encode(fixed_bytes("kdf params salt", 16))
    valid = [
        {"algorithm": "pbkdf2-sha256", "iterations": 600_000, "salt": salt},
        {"algorithm": "pbkdf2-sha256", "iterations": 10_000_000, "salt": salt},
    ]
    invalid: list[tuple[str, object]] = [
        ("iterations below 600000", {"algorithm": "pbkdf2-sha256", "iterations": 599_999, "salt": salt}),
        ("iterations above 10000000", {"algorithm": "pbkdf2-sha256", "iterations": 10_000_001, "salt": salt}),
        ("iterations zero", {"algorithm": "pbkdf2-sha256", "iterations": 0, "salt": salt}),
        ("other algorithm", {"algorithm": "pbkdf2-sha1", "iterations": 600_000, "salt": salt}),
        (
            "salt of 15 bytes",
            {"algorithm": "pbkdf2-sha256", "iterations": 600_000, "salt": b64encode(bytes(15))},
        ),
        (
            "salt of 32 bytes",
            {"algorithm": "pbkdf2-sha256", "iterations": 600_000, "salt": b64encode(bytes(32))},
        ),
        ("iterations as a string", {"algorithm": "pbkdf2-sha256", "iterations": "600000", "salt": salt}),
        ("iterations as a boolean", {"algorithm": "pbkdf2-sha256", "iterations": True, "salt": salt}),
        ("salt not strict base64", {"algorithm": "pbkdf2-sha256", "iterations": 600_000, "salt": salt[:-2]}),
        ("salt missing", {"algorithm": "pbkdf2-sha256", "iterations": 600_000}),
        ("not an object", [600_000]),
    ]
    for item in valid:
        KdfParams.from_wire(item)
    invalid_cases = []
    for note, wire in invalid:
        kind = outcome(lambda wire=wire: KdfParams.from_wire(wire))
        if kind == "ok":
            raise RuntimeError(f"kdf params accepted: {note}")
        invalid_cases.append({"note": note, "kdf": wire, "expected": kind})
    return {"valid": valid, "invalid": invalid_cases}


class Personas:
    """The four test identities, built from fixed Ed25519 seeds and stored RSA keys."""

    def __init__(self, randomness: StoredRandomness) -> None:
        self.seeds: dict[str, bytes] = {}
        self.private: dict[str, PrivateIdentity] = {}
        for name in PERSONAS:
            seed = fixed_bytes(f"Ed25519 seed for {name}", 32)
            signing = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            encryption = randomness.identity_rsa_key(name)
            self.seeds[name] = seed
            self.private[name] = PrivateIdentity.from_private_keys(Username(name), signing, encryption)

    def public(self, name: str) -> PublicIdentity:
        return self.private[name].public

    def section(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, identity in self.private.items():
            public = identity.public.verified()
            out[name] = {
                "username": name,
                "ed25519_seed_hex": self.seeds[name].hex(),
                "signing_private_pkcs8_hex": pkcs8(identity.signing_private).hex(),
                "encryption_private_pkcs8_hex": pkcs8(identity.encryption_private).hex(),
                "signing_key_hex": public.signing_key.hex(),
                "encryption_key_hex": public.encryption_key.hex(),
                "encryption_key_binding_input_hex": encryption_key_binding(name, public.encryption_key).hex(),
                "encryption_key_signature_hex": public.encryption_key_signature.hex(),
                "signing_key_fingerprint": fingerprint(public.signing_key),
                "encryption_key_fingerprint": fingerprint(public.encryption_key),
                "public_identity_wire": public.to_wire(),
            }
        return out


def identity_invalid_section(people: Personas) -> list[dict[str, Any]]:
    alice, bob, mallory = people.public("alice"), people.public("bob"), people.public("mallory")
    forged_signature = ed25519_sign(
        people.private["mallory"].signing_private, encryption_key_binding("alice", alice.encryption_key)
    )
    cases: list[tuple[str, str, PublicIdentity]] = [
        (
            "alice's keys published for username mallory",
            "mallory",
            PublicIdentity(
                Username("mallory"), alice.signing_key, alice.encryption_key, alice.encryption_key_signature
            ),
        ),
        (
            "binding signed by mallory's key, not the published signing key",
            "alice",
            PublicIdentity(Username("alice"), alice.signing_key, alice.encryption_key, forged_signature),
        ),
        (
            "bob's encryption key with alice's signing key and signature",
            "alice",
            PublicIdentity(
                Username("alice"), alice.signing_key, bob.encryption_key, alice.encryption_key_signature
            ),
        ),
        (
            "mallory's encryption key re-signed by mallory, under alice's signing key",
            "alice",
            PublicIdentity(
                Username("alice"), alice.signing_key, mallory.encryption_key, mallory.encryption_key_signature
            ),
        ),
        (
            "signature with one bit flipped",
            "alice",
            PublicIdentity(
                Username("alice"),
                alice.signing_key,
                alice.encryption_key,
                flip_bit(alice.encryption_key_signature, 10),
            ),
        ),
    ]
    out = []
    for note, username, identity in cases:
        kind = outcome(identity.verified)
        if kind != "unverifiable":
            raise RuntimeError(note)
        out.append(
            {"note": note, "username": username, "public_identity_wire": identity.to_wire(), "expected": kind}
        )
    return out


def public_keys_section(people: Personas, randomness: StoredRandomness) -> dict[str, list[dict[str, Any]]]:
    alice = people.public("alice")
    rsa_2048 = alice.encryption_key
    # The same 2048-bit key with the AlgorithmIdentifier's NULL parameters omitted: some
    # DER parsers (OpenSSL among them) accept it, but it is not the canonical encoding.
    assert rsa_2048[4:19] == bytes.fromhex("300d06092a864886f70d0101010500")
    no_null_body = bytes.fromhex("300b06092a864886f70d010101") + rsa_2048[19:]
    rsa_no_null = b"\x30\x82" + len(no_null_body).to_bytes(2, "big") + no_null_body
    e3 = rsa.RSAPublicNumbers(3, alice_modulus(people)).public_key()
    rsa_cases: list[tuple[str, bytes]] = [
        ("2048-bit, e=65537", rsa_2048),
        ("3072-bit, e=65537", randomness.rsa_public("3072-bit, e=65537", 3072)),
        ("4096-bit, e=65537", randomness.rsa_public("4096-bit, e=65537", 4096)),
        ("1024-bit", randomness.rsa_public("1024-bit", 1024)),
        ("2304-bit (not an allowed size)", randomness.rsa_public("2304-bit (not an allowed size)", 2304)),
        ("2048-bit, e=3", spki(e3)),
        ("AlgorithmIdentifier without NULL parameters (non-canonical DER)", rsa_no_null),
        ("trailing zero byte after the SPKI", rsa_2048 + b"\x00"),
        ("an Ed25519 key", alice.signing_key),
        ("empty", b""),
        ("not DER", b"not a key"),
    ]
    ed_cases: list[tuple[str, bytes]] = [
        ("valid Ed25519 SPKI", alice.signing_key),
        ("an RSA key", rsa_2048),
        ("trailing zero byte", alice.signing_key + b"\x00"),
        (
            "AlgorithmIdentifier with NULL parameters",
            bytes.fromhex("302c300706032b65700500032100") + alice.signing_key[-32:],
        ),
        ("31-byte public key", bytes.fromhex("3029300506032b6570032000") + alice.signing_key[-31:]),
        ("empty", b""),
    ]
    # Every encoding of a point of small order, with either sign bit (PROTOCOL.md 5.1).
    prefix = bytes.fromhex("302a300506032b6570032100")
    for encoding in sorted(SMALL_ORDER_ENCODINGS):
        for sign in (0, 0x80):
            point = encoding[:31] + bytes([encoding[31] | sign])
            ed_cases.append((f"small order {point.hex()}", prefix + point))
    return {
        "rsa_encryption_keys": [
            {
                "name": note,
                "spki_hex": der.hex(),
                "expected": outcome(lambda der=der: load_rsa_public_key(der)),
            }
            for note, der in rsa_cases
        ],
        "ed25519_signing_keys": [
            {
                "name": note,
                "spki_hex": der.hex(),
                "expected": outcome(lambda der=der: load_ed25519_public_key(der)),
            }
            for note, der in ed_cases
        ],
    }


def alice_modulus(people: Personas) -> int:
    return people.private["alice"].encryption_private.public_key().public_numbers().n


def der_element(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def other_private_key_forms(identity: PrivateIdentity) -> list[tuple[str, bytes, bytes]]:
    """(note, RSA key, Ed25519 key) pairs where one key is in a refused encoding."""
    rsa_pkcs8 = pkcs8(identity.encryption_private)
    ed_pkcs8 = pkcs8(identity.signing_private)
    seed = identity.signing_private.private_bytes_raw()
    public_raw = identity.signing_private.public_key().public_bytes_raw()
    # RFC 5958 OneAsymmetricKey v2 with the public key: pyca 51 reads it, Web Crypto does not.
    ed_v2 = der_element(
        0x30,
        bytes.fromhex("020101300506032b6570")
        + der_element(0x04, der_element(0x04, seed))
        + der_element(0x81, b"\x00" + public_raw),
    )
    # The same v1 key with an empty attribute set [0].
    ed_attributes = der_element(0x30, ed_pkcs8[2:] + bytes.fromhex("a000"))
    rsa_pkcs1 = identity.encryption_private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # PKCS#8 content after the outer header: version, algorithm, then the key octets.
    rsa_body = rsa_pkcs8[4:]
    assert rsa_pkcs8[:2] == b"\x30\x82" and rsa_body.startswith(
        bytes.fromhex("020100300d06092a864886f70d0101010500")
    )
    rsa_attributes = der_element(0x30, rsa_body + bytes.fromhex("a000"))
    rsa_no_null = der_element(0x30, bytes.fromhex("020100300b06092a864886f70d010101") + rsa_body[18:])
    rsa_pss = der_element(0x30, bytes.fromhex("020100300b06092a864886f70d01010a") + rsa_body[18:])
    rsa_version_1 = der_element(0x30, bytes.fromhex("020101") + rsa_body[3:])
    return [
        ("Ed25519 key as PKCS#8 v2 with its public key", rsa_pkcs8, ed_v2),
        ("Ed25519 key with an attribute set", rsa_pkcs8, ed_attributes),
        ("Ed25519 key as the bare 32-byte seed", rsa_pkcs8, seed),
        ("RSA key as PKCS#1", rsa_pkcs1, ed_pkcs8),
        ("RSA key with an attribute set", rsa_attributes, ed_pkcs8),
        ("RSA key without NULL parameters", rsa_no_null, ed_pkcs8),
        ("RSA key labelled RSASSA-PSS", rsa_pss, ed_pkcs8),
        ("RSA key with PKCS#8 version 1", rsa_version_1, ed_pkcs8),
    ]


def key_bundle_section(people: Personas, kdf_cases: list[dict[str, Any]]) -> dict[str, Any]:
    wrap_keys = {case["name"]: bytes.fromhex(case["wrap_key_hex"]) for case in kdf_cases}
    positive = [
        ("alice", "ascii_password"),
        ("bob", "non_ascii_password_nfkc"),
    ]
    cases = []
    sealed_by_name: dict[str, dict[str, object]] = {}
    for name, kdf_name in positive:
        identity = people.private[name]
        wrap_key = wrap_keys[kdf_name]
        iv = fixed_bytes(f"key bundle iv {name}", 12)
        sealed = seal_key_bundle(identity, wrap_key, iv=iv)
        opened = open_key_bundle(sealed, wrap_key, Username(name))
        if opened.public != identity.public:
            raise RuntimeError("key bundle did not round-trip")
        sealed_by_name[name] = sealed
        cases.append(
            {
                "username": name,
                "identity": name,
                "wrap_key_from_kdf_case": kdf_name,
                "wrap_key_hex": wrap_key.hex(),
                "iv_hex": iv.hex(),
                "aad_hex": key_bundle_aad(name).hex(),
                "plaintext_hex": canonical(
                    labels.KEY_BUNDLE_PLAINTEXT,
                    [pkcs8(identity.encryption_private), pkcs8(identity.signing_private)],
                ).hex(),
                "sealed": sealed,
            }
        )

    alice = people.private["alice"]
    alice_wrap = wrap_keys["ascii_password"]
    base = sealed_by_name["alice"]
    iv = b64decode(str(base["iv"]))
    ciphertext = b64decode(str(base["ciphertext"]))
    swapped_plaintext = canonical(
        labels.KEY_BUNDLE_PLAINTEXT, [pkcs8(alice.signing_private), pkcs8(alice.encryption_private)]
    )
    wrong_order = {
        "v": 1,
        "iv": base["iv"],
        "ciphertext": b64encode(aes_gcm_encrypt(alice_wrap, iv, swapped_plaintext, key_bundle_aad("alice"))),
    }
    other_label = canonical(
        labels.KEY_BUNDLE_AAD, [pkcs8(alice.encryption_private), pkcs8(alice.signing_private)]
    )
    wrong_label = {
        "v": 1,
        "iv": base["iv"],
        "ciphertext": b64encode(aes_gcm_encrypt(alice_wrap, iv, other_label, key_bundle_aad("alice"))),
    }
    version_2_aad = {
        "v": 1,
        "iv": base["iv"],
        "ciphertext": b64encode(
            aes_gcm_encrypt(
                alice_wrap,
                iv,
                canonical(
                    labels.KEY_BUNDLE_PLAINTEXT,
                    [pkcs8(alice.encryption_private), pkcs8(alice.signing_private)],
                ),
                key_bundle_aad("alice", version=2),
            )
        ),
    }
    invalid_specs: list[tuple[str, str, bytes, object]] = [
        ("opened with a wrong username (bob)", "bob", alice_wrap, base),
        ("opened with a wrong wrap key (bob's)", "alice", wrap_keys["non_ascii_password_nfkc"], base),
        (
            "ciphertext bit flipped",
            "alice",
            alice_wrap,
            {**base, "ciphertext": b64encode(flip_bit(ciphertext, 40))},
        ),
        (
            "tag bit flipped",
            "alice",
            alice_wrap,
            {**base, "ciphertext": b64encode(flip_bit(ciphertext, len(ciphertext) - 1))},
        ),
        ("iv bit flipped", "alice", alice_wrap, {**base, "iv": b64encode(flip_bit(iv, 0))}),
        ("valid AEAD, private keys in the wrong order", "alice", alice_wrap, wrong_order),
        ("valid AEAD, plaintext under another label", "alice", alice_wrap, wrong_label),
        ("AAD made for bundle version 2, v field says 1", "alice", alice_wrap, version_2_aad),
        ("v is 2", "alice", alice_wrap, {**base, "v": 2}),
        ("v is 0", "alice", alice_wrap, {**base, "v": 0}),
        ("iv missing", "alice", alice_wrap, {"v": 1, "ciphertext": base["ciphertext"]}),
        (
            "ciphertext not strict base64",
            "alice",
            alice_wrap,
            {**base, "ciphertext": str(base["ciphertext"]) + "\n"},
        ),
        ("not an object", "alice", alice_wrap, [base]),
    ]
    # Each private key in a form a library may read but PROTOCOL.md 5.1 does not accept.
    for note, rsa_der, ed_der in other_private_key_forms(alice):
        plaintext = canonical(labels.KEY_BUNDLE_PLAINTEXT, [rsa_der, ed_der])
        sealed = {
            "v": 1,
            "iv": base["iv"],
            "ciphertext": b64encode(aes_gcm_encrypt(alice_wrap, iv, plaintext, key_bundle_aad("alice"))),
        }
        invalid_specs.append((f"valid AEAD, {note}", "alice", alice_wrap, sealed))
    invalid = []
    for note, username, wrap_key, bundle in invalid_specs:
        kind = outcome(lambda b=bundle, k=wrap_key, u=username: open_key_bundle(b, k, Username(u)))
        if kind == "ok":
            raise RuntimeError(f"key bundle opened: {note}")
        invalid.append(
            {
                "note": note,
                "username": username,
                "wrap_key_hex": wrap_key.hex(),
                "sealed": bundle,
                "expected": kind,
            }
        )
    return {"cases": cases, "invalid": invalid}


def safety_numbers_section(people: Personas) -> list[dict[str, Any]]:
    out = []
    for first, second in [("alice", "bob"), ("alice", "carol"), ("carol", "bob")]:
        a, b = people.public(first), people.public(second)
        number = safety_number(a, b)
        if number != safety_number(b, a) or len(number) != 60 or not number.isdigit():
            raise RuntimeError("safety number is not symmetric or not 60 digits")
        out.append(
            {
                "first": first,
                "second": second,
                "first_digits": _safety_half(a),
                "second_digits": _safety_half(b),
                "safety_number": number,
                "display": format_safety_number(number),
            }
        )
    return out


def padding_section() -> dict[str, Any]:
    lengths = [0, 1, 100, 252, 253, 508, 509, 1000, 4092, 4093, 65536]
    by_length = [{"payload_length": n, "padded_length": len(pad(bytes(n)))} for n in lengths]
    small = []
    for payload in [b"", b"hi", bytes(range(1, 253)), bytes(range(1, 254))]:
        padded = pad(payload)
        small.append({"payload_hex": payload.hex(), "padded_hex": padded.hex()})
    header = (10).to_bytes(4, "big")
    invalid_specs = [
        ("shorter than 256 bytes", header + b"0123456789" + bytes(100)),
        ("not a power of two (384 bytes)", header + b"0123456789" + bytes(370)),
        ("non-zero padding byte", header + b"0123456789" + bytes(241) + b"\x01"),
        ("length prefix larger than the buffer", (253).to_bytes(4, "big") + bytes(252)),
        ("length prefix 0xffffffff", b"\xff\xff\xff\xff" + bytes(252)),
        ("three bytes", b"\x00\x00\x00"),
        ("empty", b""),
    ]
    invalid = []
    for note, padded in invalid_specs:
        if outcome(lambda padded=padded: unpad(padded)) != "unverifiable":
            raise RuntimeError(f"unpad accepted: {note}")
        invalid.append({"note": note, "padded_hex": padded.hex(), "expected": "unverifiable"})
    # Receivers accept any power-of-two bucket of at least 256 bytes, not only the
    # smallest one (the sender chooses; see PROTOCOL.md).
    roomy = header + b"0123456789" + bytes(512 - 14)
    if unpad(roomy) != b"0123456789":
        raise RuntimeError("unpad refused a larger bucket")
    return {
        "lengths": by_length,
        "valid": small,
        "valid_larger_bucket": [{"payload_hex": b"0123456789".hex(), "padded_hex": roomy.hex()}],
        "invalid": invalid,
    }


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------

FILE_ID = "0b5e8c1a-7d2f-4e3b-9a6c-5d4e3f2a1b0c"


def pattern_bytes(start: int, length: int) -> bytes:
    """The generated file's plaintext: byte j is j mod 251 (a length that is no power of two)."""
    return bytes((start + j) % 251 for j in range(length))


def files_section() -> dict[str, Any]:
    key = fixed_bytes("file key", 32)
    sizes = [0, 1, FILE_CHUNK_BYTES - 1, FILE_CHUNK_BYTES, FILE_CHUNK_BYTES + 1, 3 * FILE_CHUNK_BYTES + 5]
    layout = [
        {
            "size": size,
            "chunks": chunk_count(size),
            "plaintext_sizes": [chunk_plaintext_size(size, i) for i in range(chunk_count(size))],
            "ciphertext_sizes": [chunk_ciphertext_size(size, i) for i in range(chunk_count(size))],
        }
        for size in sizes
    ]
    nonces = [
        {
            "file_id": FILE_ID,
            "index": index,
            "last": last,
            "nonce_hex": chunk_nonce(index, last).hex(),
            "aad_hex": chunk_aad(FILE_ID, index, last).hex(),
        }
        for index, last in [(0, True), (0, False), (1, False), (2, True), (2**32, True)]
    ]
    small: list[dict[str, Any]] = []
    for note, plaintext in [("empty file", b""), ("one short chunk", b"SecureChat file vector")]:
        encryptor = FileEncryptor(len(plaintext), file_id=FILE_ID, key=key)
        ciphertext = encryptor.encrypt(plaintext)
        descriptor = encryptor.descriptor("vector.txt", "text/plain")
        small.append(
            {
                "note": note,
                "key_hex": key.hex(),
                "file_id": FILE_ID,
                "plaintext_hex": plaintext.hex(),
                "sha256_hex": descriptor.sha256.hex(),
                "chunks_hex": [ciphertext.hex()],
            }
        )
    # A three-chunk file, given by a rule instead of its bytes; the chunks by their hashes.
    size = 2 * FILE_CHUNK_BYTES + 1000
    encryptor = FileEncryptor(size, file_id=FILE_ID, key=key)
    chunk_hashes, last_chunk = [], b""
    for index in range(chunk_count(size)):
        start = index * FILE_CHUNK_BYTES
        last_chunk = encryptor.encrypt(pattern_bytes(start, chunk_plaintext_size(size, index)))
        chunk_hashes.append(hashlib.sha256(last_chunk).hexdigest())
    generated = {
        "note": "byte j of the plaintext is j mod 251",
        "key_hex": key.hex(),
        "file_id": FILE_ID,
        "size": size,
        "sha256_hex": encryptor.descriptor("pattern.bin").sha256.hex(),
        "chunk_sha256_hex": chunk_hashes,
        "last_chunk_hex": last_chunk.hex(),
    }
    one = bytes.fromhex(small[1]["chunks_hex"][0])
    other_id = "0b5e8c1a-7d2f-4e3b-9a6c-5d4e3f2a1b0d"
    tampered = [
        ("index 1 instead of 0", FILE_ID, 1, True, one),
        ("not marked last (truncation)", FILE_ID, 0, False, one),
        ("another file id", other_id, 0, True, one),
        ("flipped ciphertext bit", FILE_ID, 0, True, flip_bit(one, 0)),
        ("flipped tag bit", FILE_ID, 0, True, flip_bit(one, len(one) - 1)),
        ("tag only", FILE_ID, 0, True, one[-16:]),
    ]
    invalid_chunks = []
    for note, file_id, index, last, data in tampered:
        got = outcome(lambda f=file_id, i=index, la=last, d=data: decrypt_chunk(key, f, i, la, d))
        if got != "unverifiable":
            raise RuntimeError(f"decrypt_chunk accepted: {note}")
        invalid_chunks.append(
            {
                "note": note,
                "key_hex": key.hex(),
                "file_id": file_id,
                "index": index,
                "last": last,
                "ciphertext_hex": data.hex(),
                "expected": "unverifiable",
            }
        )
    good = {
        "id": FILE_ID,
        "key": b64encode(key),
        "name": "report (final).pdf",
        "media_type": "application/pdf",
        "size": 12345,
        "sha256": "ab" * 32,
    }

    def variant(**changes: Any) -> dict[str, Any]:
        changed = {**good, **changes}
        return {k: v for k, v in changed.items() if v is not None}

    payload_specs: list[tuple[str, Any]] = [
        ("valid", {"type": "file", "file": good}),
        ("valid with caption and an extra member", {"type": "file", "file": {**good, "x": 1}, "text": "hi"}),
        ("empty file", {"type": "file", "file": variant(size=0)}),
        ("no file member", {"type": "file"}),
        ("file is a string", {"type": "file", "file": "x"}),
        ("id not a UUIDv4", {"type": "file", "file": variant(id="0b5e8c1a-7d2f-1e3b-9a6c-5d4e3f2a1b0c")}),
        ("id upper-case", {"type": "file", "file": variant(id=FILE_ID.upper())}),
        ("key 31 bytes", {"type": "file", "file": variant(key=b64encode(key[:31]))}),
        ("key not base64", {"type": "file", "file": variant(key="!" * 44)}),
        ("key missing", {"type": "file", "file": variant(key=None)}),
        ("empty name", {"type": "file", "file": variant(name="")}),
        ("name of 256 characters", {"type": "file", "file": variant(name="a" * 256)}),
        ("name of 255 characters", {"type": "file", "file": variant(name="\u00e9" * 255)}),
        ("name with NUL", {"type": "file", "file": variant(name="a\u0000b")}),
        ("name not a string", {"type": "file", "file": variant(name=5)}),
        ("media type missing", {"type": "file", "file": variant(media_type=None)}),
        ("negative size", {"type": "file", "file": variant(size=-1)}),
        ("size 2^53", {"type": "file", "file": variant(size=2**53)}),
        ("size 2^53 - 1", {"type": "file", "file": variant(size=2**53 - 1)}),
        ("size a string", {"type": "file", "file": variant(size="12345")}),
        ("size true", {"type": "file", "file": variant(size=True)}),
        ("size 1.5", {"type": "file", "file": variant(size=1.5)}),
        ("sha256 upper-case", {"type": "file", "file": variant(sha256="AB" * 32)}),
        ("sha256 63 digits", {"type": "file", "file": variant(sha256="a" * 63)}),
    ]
    payloads = []
    for note, payload in payload_specs:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        payloads.append(
            {"note": note, "payload_hex": raw.hex(), "expected": outcome(lambda r=raw: decode_payload(r))}
        )
    return {
        "chunk_bytes": FILE_CHUNK_BYTES,
        "layout": layout,
        "nonces": nonces,
        "small": small,
        "generated": generated,
        "invalid_chunks": invalid_chunks,
        "payloads": payloads,
    }


# --------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------

GROUP_T0 = SENT_AT
INVITE_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def change_case(change: GroupChange, state: GroupState) -> dict[str, Any]:
    return {
        "wire": change.to_wire(),
        "signed_bytes_hex": change.signed_bytes().hex(),
        "hash_hex": change.digest().hex(),
        "members_after": sorted(state.members),
        "admins_after": sorted(state.admins),
    }


def groups_section(people: Personas) -> dict[str, Any]:
    alice, bob, carol, mallory = (people.private[n] for n in ("alice", "bob", "carol", "mallory"))

    def lookup(name: str) -> PublicIdentity | None:
        return people.public(name) if name in people.private else None

    invite = make_invite(bob, GROUP_ID, expires_at=GROUP_T0 + 10_000, max_uses=1, invite_id=INVITE_ID)
    steps: list[tuple[PrivateIdentity, str, list[str], Invite | None]] = [
        (alice, "create", ["bob"], None),
        (alice, "add", ["carol"], None),
        (alice, "promote", ["bob"], None),
        (bob, "remove", ["carol"], None),
        (carol, "join", [], invite),
        (alice, "leave", [], None),
    ]
    chain: list[GroupChange] = []
    cases = []
    state: GroupState | None = None
    for offset, (actor, action, members, inv) in enumerate(steps):
        change = sign_change(
            actor, state, action, members, group_id=GROUP_ID, invite=inv, at=GROUP_T0 + offset
        )
        state = genesis(change, lookup) if state is None else state.apply(change, lookup)
        chain.append(change)
        cases.append(change_case(change, state))
    assert state is not None
    if verify_chain(chain, lookup).members != state.members:
        raise RuntimeError("verify_chain disagrees with step-by-step replay")

    def at_state(n: int) -> GroupState:
        return verify_chain(chain[:n], lookup)

    def bad(
        note: str, prefix: int, actor: PrivateIdentity, action: str, members: list[str], **kw: Any
    ) -> dict[str, Any]:
        base = at_state(prefix)
        change = sign_change(actor, base, action, members, at=kw.pop("at", GROUP_T0 + prefix), **kw)
        for name, value in kw.pop("override", {}).items():
            change = replace(change, **{name: value})
        return {"note": note, "wires": [c.to_wire() for c in (*chain[:prefix], change)]}

    # Fixed invite ids: the file must come out the same every time (--check).
    expired = make_invite(
        bob, GROUP_ID, expires_at=GROUP_T0 + 1, max_uses=5, invite_id="0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"
    )
    from_member = make_invite(
        carol,
        GROUP_ID,
        expires_at=GROUP_T0 + 10_000,
        max_uses=5,
        invite_id="1b2c3d4e-5f60-4b7c-9d8e-9fa0b1c2d3e4",
    )
    other_group = make_invite(
        alice,
        ConversationId("grp-" + "1" * 32),
        expires_at=GROUP_T0 + 10_000,
        max_uses=5,
        invite_id="2c3d4e5f-6071-4c8d-ae9f-a0b1c2d3e4f5",
    )
    forged_invite = replace(invite, inviter=Username("alice"))
    invalid = [
        bad("a non-admin adds", 2, bob, "add", ["mallory"]),
        bad("an admin adds an existing member", 1, alice, "add", ["bob"]),
        bad("an admin removes itself", 2, alice, "remove", ["alice"]),
        bad("a non-admin removes", 2, bob, "remove", ["carol"]),
        bad("a non-member leaves", 2, mallory, "leave", []),
        bad("promote a non-member", 2, alice, "promote", ["mallory"]),
        bad("a second create", 1, alice, "create", ["carol"]),
        bad("dated before the previous change", 2, alice, "add", ["mallory"], at=GROUP_T0),
        bad("join with an expired invite", 4, mallory, "join", [], invite=expired, at=GROUP_T0 + 4),
        bad("join with an invite from a non-admin", 4, mallory, "join", [], invite=from_member),
        bad("join with an invite for another group", 4, mallory, "join", [], invite=other_group),
        bad(
            "join with an invite whose signature is not the named inviter's",
            4,
            mallory,
            "join",
            [],
            invite=forged_invite,
        ),
        bad("an invite on an add", 2, alice, "add", ["mallory"], invite=invite),
        bad("a member joins", 4, bob, "join", [], invite=invite),
        {
            "note": "the invite used up (max_uses 1, second join)",
            "wires": [c.to_wire() for c in chain[:5]]
            + [sign_change(mallory, at_state(5), "join", [], invite=invite, at=GROUP_T0 + 5).to_wire()],
        },
        {
            "note": "prev names another change",
            "wires": [c.to_wire() for c in chain[:2]] + [replace(chain[2], prev=chain[0].digest()).to_wire()],
        },
        {"note": "a change skipped (seq gap)", "wires": [c.to_wire() for c in (chain[0], chain[2])]},
        {"note": "two changes swapped", "wires": [c.to_wire() for c in (chain[0], chain[2], chain[1])]},
        {
            "note": "a change signed by mallory in alice's name",
            "wires": [
                chain[0].to_wire(),
                {
                    **chain[1].to_wire(),
                    "signature": b64encode(ed25519_sign(mallory.signing_private, chain[1].signed_bytes())),
                },
            ],
        },
        {
            "note": "a member added to a change after signing",
            "wires": [chain[0].to_wire(), {**chain[1].to_wire(), "members": ["carol", "mallory"]}],
        },
        {"note": "a chain that does not start with create", "wires": [c.to_wire() for c in chain[1:3]]},
        {
            "note": "a create by mallory naming herself inside",
            "wires": [
                sign_change(mallory, None, "create", ["mallory"], group_id=GROUP_ID, at=GROUP_T0).to_wire()
            ],
        },
    ]
    for case in invalid:
        got = outcome(
            lambda case=case: verify_chain([GroupChange.from_wire(w) for w in case["wires"]], lookup)
        )
        if got != "unverifiable":
            raise RuntimeError(f"groups: {case['note']} gave {got}")
        case["expected"] = "unverifiable"
    good = chain[1].to_wire()
    malformed_specs: list[tuple[str, Any, str]] = [
        ("extra member", {**good, "name": "x"}, "malformed"),
        ("missing invite member", {k: v for k, v in good.items() if k != "invite"}, "malformed"),
        ("version 2", {**good, "v": 2}, "unsupported_version"),
        ("members unsorted", {**good, "members": ["dave", "carol"]}, "malformed"),
        ("members repeated", {**good, "members": ["carol", "carol"]}, "malformed"),
        ("member not normalised", {**good, "members": ["Carol"]}, "malformed"),
        ("unknown action", {**good, "action": "kick"}, "malformed"),
        ("prev in upper case", {**good, "prev": good["prev"].upper()}, "malformed"),
        ("seq negative", {**good, "seq": -1}, "malformed"),
        ("seq a string", {**good, "seq": "1"}, "malformed"),
        ("group id of a direct conversation", {**good, "group_id": "dm-" + "0" * 32}, "malformed"),
        ("signature 63 bytes", {**good, "signature": b64encode(bytes(63))}, "malformed"),
        (
            "invite with an extra member",
            {**cases[4]["wire"], "invite": {**invite.to_wire(), "x": 1}},
            "malformed",
        ),
        (
            "invite max_uses 0",
            {**cases[4]["wire"], "invite": {**invite.to_wire(), "max_uses": 0}},
            "malformed",
        ),
    ]
    malformed = []
    for note, wire, expected in malformed_specs:
        got = outcome(lambda wire=wire: GroupChange.from_wire(wire))
        if got != expected:
            raise RuntimeError(f"groups malformed: {note} gave {got}")
        malformed.append({"note": note, "wire": wire, "expected": expected})
    final = at_state(len(chain))
    recipients = []
    for note, names, sender, since in [
        ("current members", ["bob", "carol"], "bob", 0),
        ("members after the first change", ["alice", "bob"], "alice", 0),
        ("members after the first change, receiver joined at 4", ["alice", "bob"], "alice", 4),
        ("sender not among them", ["bob", "carol"], "alice", 0),
        ("a set no position had", ["alice", "bob", "mallory"], "alice", 0),
        ("members at 3, sender among them", ["alice", "bob"], "bob", 3),
    ]:
        recipients.append(
            {
                "note": note,
                "recipients": names,
                "sender": sender,
                "since": since,
                "accepted": final.accepts_recipients(
                    frozenset(map(Username, names)), Username(sender), since=since
                ),
            }
        )
    payloads = []
    for note, payload in [
        ("valid", {"type": "group_info", "name": "Secure"}),
        ("100 characters", {"type": "group_info", "name": "\u00e9" * 100}),
        ("101 characters", {"type": "group_info", "name": "a" * 101}),
        ("empty name", {"type": "group_info", "name": ""}),
        ("no name", {"type": "group_info"}),
        ("name not a string", {"type": "group_info", "name": ["Secure"]}),
        ("name with NUL", {"type": "group_info", "name": "Sec\u0000ure"}),
    ]:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        payloads.append(
            {"note": note, "payload_hex": raw.hex(), "expected": outcome(lambda r=raw: decode_payload(r))}
        )
    return {
        "invite": {
            "wire": invite.to_wire(),
            "signed_bytes_hex": invite.signed_bytes().hex(),
            "hash_hex": invite.digest().hex(),
            "code": invite.invite_id,
        },
        "chain": cases,
        "history": [sorted(m) for m in final.history],
        "invalid_chains": invalid,
        "malformed_changes": malformed,
        "recipients": recipients,
        "payloads": payloads,
    }


# --------------------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------------------

# Fixed message ids, so the file comes out the same every time (--check).
RECEIPT_IDS = (
    "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
    "1d2e3f4a-5b6c-4d7e-9f80-91a2b3c4d5e6",
    "2e3f4a5b-6c7d-4e8f-a091-a2b3c4d5e6f7",
)


def receipts_section(people: Personas) -> dict[str, Any]:
    """PROTOCOL.md 9.3: signed bytes and (deterministic) signatures of receipts, and the
    receipts that do not parse or do not verify with their reader's key."""
    dm = direct_conversation_id(Username("alice"), Username("bob"))
    delivered = make_receipt(people.private["bob"], dm, "delivered", [RECEIPT_IDS[1], RECEIPT_IDS[0]])
    read = make_receipt(people.private["carol"], GROUP_ID, "read", [RECEIPT_IDS[2]])
    cases = []
    for note, receipt in [
        ("bob has two of alice's messages in their direct conversation (ids given unsorted)", delivered),
        ("carol has read a message in the group", read),
    ]:
        expected = receipt_signed_bytes(
            receipt.conversation_id, receipt.reader, receipt.status, receipt.message_ids
        )
        if Receipt.from_wire(receipt.to_wire()) != receipt or receipt.signed_bytes() != expected:
            raise RuntimeError(f"receipt does not round-trip: {note}")
        receipt.verify(people.public(receipt.reader))
        cases.append({"note": note, "wire": receipt.to_wire(), "signed_bytes_hex": expected.hex()})

    base = delivered.to_wire()
    signature = delivered.signature
    malleated_s = int.from_bytes(signature[32:], "little") + ED25519_ORDER

    def edit(**changes: Any) -> dict[str, Any]:
        return {**base, **changes}

    without_v = {k: v for k, v in base.items() if k != "v"}
    too_many = sorted(f"{i:08x}-0000-4000-8000-000000000000" for i in range(101))
    invalid: list[tuple[str, str, dict[str, Any] | object, str]] = [
        ("status_changed", "the status changed from delivered to read", edit(status="read"), "unverifiable"),
        (
            "id_added",
            "a message id added",
            edit(message_ids=sorted([*RECEIPT_IDS[:2], RECEIPT_IDS[2]])),
            "unverifiable",
        ),
        ("id_dropped", "a message id dropped", edit(message_ids=[RECEIPT_IDS[0]]), "unverifiable"),
        ("reader_changed", "bob's receipt presented as carol's", edit(reader="carol"), "unverifiable"),
        (
            "conversation_changed",
            "bob's receipt presented as one for the group",
            edit(conversation_id=GROUP_ID),
            "unverifiable",
        ),
        (
            "signature_bit",
            "one bit of the signature flipped",
            edit(signature=b64encode(flip_bit(signature, 5))),
            "unverifiable",
        ),
        (
            "signature_non_canonical_s",
            "S + L (same point, non-canonical scalar): RFC 8032 5.1.7 refuses it",
            edit(signature=b64encode(signature[:32] + malleated_s.to_bytes(32, "little"))),
            "unverifiable",
        ),
        (
            "signed_by_mallory",
            "mallory's signature over bob's receipt bytes",
            edit(
                signature=b64encode(
                    ed25519_sign(people.private["mallory"].signing_private, delivered.signed_bytes())
                )
            ),
            "unverifiable",
        ),
        ("not_an_object", "a list", [base], "malformed"),
        ("missing_v", "no version", without_v, "malformed"),
        ("extra_member", "an extra member", edit(at=SENT_AT), "malformed"),
        ("v_2", "a future version", edit(v=2), "unsupported_version"),
        ("v_true", "true is not 1", edit(v=True), "malformed"),
        ("v_string", "the version as text", edit(v="1"), "malformed"),
        ("status_seen", "a status v1 does not have", edit(status="seen"), "malformed"),
        ("reader_not_normalised", "the reader in upper case", edit(reader="Bob"), "malformed"),
        ("conversation_invalid", "not a conversation id", edit(conversation_id="dm-1"), "malformed"),
        ("no_ids", "no message ids", edit(message_ids=[]), "malformed"),
        ("too_many_ids", "101 message ids", edit(message_ids=too_many), "malformed"),
        ("ids_unsorted", "ids out of order", edit(message_ids=[RECEIPT_IDS[1], RECEIPT_IDS[0]]), "malformed"),
        (
            "ids_repeated",
            "the same id twice",
            edit(message_ids=[RECEIPT_IDS[0], RECEIPT_IDS[0]]),
            "malformed",
        ),
        (
            "id_upper_case",
            "a message id in upper case",
            edit(message_ids=[RECEIPT_IDS[0].upper()]),
            "malformed",
        ),
        ("ids_not_a_list", "the ids as one string", edit(message_ids=RECEIPT_IDS[0]), "malformed"),
        ("signature_short", "a 63-byte signature", edit(signature=b64encode(signature[:63])), "malformed"),
        (
            "signature_not_base64",
            "the signature in URL-safe base64",
            edit(signature=b64encode(signature).replace("+", "-").replace("/", "_")),
            "malformed",
        ),
    ]
    invalid_cases = []
    for name, note, wire, expected in invalid:

        def check(wire: object = wire) -> None:
            Receipt.from_wire(wire).verify(people.public("bob"))

        actual = outcome(check)
        if actual != expected:
            raise RuntimeError(f"receipts.invalid {name}: expected {expected}, got {actual}")
        invalid_cases.append(
            {"name": name, "note": note, "wire": wire, "verify_with": "bob", "expected": expected}
        )
    return {"cases": cases, "invalid": invalid_cases}


# --------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------


class EnvelopeFactory:
    """Builds envelopes from parts, with stored OAEP wraps, so everything is reproducible."""

    def __init__(self, people: Personas, randomness: StoredRandomness) -> None:
        self.people = people
        self.randomness = randomness

    def wrap(self, recipient: str, message_key: bytes, label: bytes) -> bytes:
        return self.randomness.wrap(
            recipient, self.people.private[recipient].encryption_private, message_key, label
        )

    def build(
        self,
        *,
        signer: str,
        header: Header,
        message_key: bytes,
        iv: bytes,
        padded: bytes,
        recipients: list[str],
        aad: bytes | None = None,
        label_for: Callable[[str], bytes] | None = None,
        wrapped_plaintext: bytes | None = None,
    ) -> Envelope:
        ciphertext = aes_gcm_encrypt(message_key, iv, padded, header.canonical() if aad is None else aad)
        keys = tuple(
            WrappedKey(
                Username(name),
                self.wrap(
                    name,
                    message_key if wrapped_plaintext is None else wrapped_plaintext,
                    wrapped_key_label(header.message_id, name) if label_for is None else label_for(name),
                ),
            )
            for name in sorted(recipients)
        )
        return self.sign(signer, Envelope(header, iv, ciphertext, keys, b""))

    def sign(self, signer: str, envelope: Envelope) -> Envelope:
        signature = ed25519_sign(self.people.private[signer].signing_private, envelope.signed_bytes())
        return Envelope(envelope.header, envelope.iv, envelope.ciphertext, envelope.keys, signature)


POSITIVE_ENVELOPES: list[dict[str, Any]] = [
    {
        "name": "direct_text",
        "note": "alice to bob in their direct conversation",
        "sender": "alice",
        "members": ["alice", "bob"],
        "message_id": "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f",
        "payload": {"type": "text", "text": "Hello, Bob! \U0001f44b"},
    },
    {
        "name": "group_text",
        "note": "carol to a group of three; a payload of more than 252 bytes needs the 512 bucket",
        "sender": "carol",
        "members": ["alice", "bob", "carol"],
        "conversation_id": GROUP_ID,
        "message_id": "b7e2c1d0-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        "payload": {
            "type": "text",
            "text": (
                "Gr\u00fc\u00dfe aus K\u00f6ln! \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8. "
                "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435. "
                "\u0645\u0631\u062d\u0628\u0627. \U0001f600\U0001f680 "
                'Line two\nQuotes " and backslash \\ and tab\t. ' + "The quick brown fox. " * 6
            ),
        },
    },
    {
        "name": "direct_exact_bucket",
        "note": "bob to alice; the payload is exactly 252 bytes, so it fills the 256-byte bucket",
        "sender": "bob",
        "members": ["alice", "bob"],
        "message_id": "00000000-0000-4000-8000-000000000001",
        "payload": {"type": "text", "text": "x" * 227},
    },
]


def positive_context(spec: dict[str, Any], conversation_id: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "members": spec["members"],
        "pinned": {name: name for name in spec["members"]},
        "seen_message_ids": [],
    }


def envelope_section(people: Personas, randomness: StoredRandomness) -> dict[str, Any]:
    factory = EnvelopeFactory(people, randomness)
    cases = []
    built: dict[str, tuple[dict[str, Any], Envelope, bytes, dict[str, Any]]] = {}
    for spec in POSITIVE_ENVELOPES:
        name = spec["name"]
        sender = spec["sender"]
        members = spec["members"]
        conversation_id = spec.get("conversation_id") or direct_conversation_id(
            Username(members[0]), Username(members[1])
        )
        header = Header(
            1, MessageId(spec["message_id"]), ConversationId(conversation_id), Username(sender), SENT_AT
        )
        message_key = fixed_bytes(f"message key {name}", 32)
        iv = fixed_bytes(f"message iv {name}", 12)
        payload_bytes = encode_payload(spec["payload"])
        padded = pad(payload_bytes)
        envelope = factory.build(
            signer=sender, header=header, message_key=message_key, iv=iv, padded=padded, recipients=members
        )
        context = positive_context(spec, conversation_id)
        check_positive(people, spec, envelope, message_key, iv, conversation_id)
        wire = envelope.to_wire()
        cases.append(
            {
                "name": name,
                "note": spec["note"],
                "sender": sender,
                "recipients": members,
                "conversation_id": conversation_id,
                "message_id": spec["message_id"],
                "sent_at": SENT_AT,
                "message_key_hex": message_key.hex(),
                "iv_hex": iv.hex(),
                "payload": spec["payload"],
                "payload_bytes_hex": payload_bytes.hex(),
                "header_canonical_hex": header.canonical().hex(),
                "padded_plaintext_hex": padded.hex(),
                "ciphertext_hex": envelope.ciphertext.hex(),
                "wrapped_keys": [
                    {
                        "recipient": key.recipient,
                        "oaep_label_hex": wrapped_key_label(spec["message_id"], key.recipient).hex(),
                        "wrapped_key_hex": key.wrapped_key.hex(),
                    }
                    for key in envelope.keys
                ],
                "signature_input_hex": envelope.signed_bytes().hex(),
                "signature_hex": envelope.signature.hex(),
                "wire": wire,
                "context": context,
            }
        )
        built[name] = (spec, envelope, message_key, context)
    return {"cases": cases, "invalid": invalid_envelopes(people, factory, built)}


def check_positive(
    people: Personas,
    spec: dict[str, Any],
    envelope: Envelope,
    message_key: bytes,
    iv: bytes,
    conversation_id: str,
) -> None:
    """The hand-built envelope must match what seal_message makes and must open for everyone."""
    recipients = {Username(name): people.public(name) for name in spec["members"]}
    sealed = seal_message(
        people.private[spec["sender"]],
        ConversationId(conversation_id),
        recipients,
        spec["payload"],
        message_id=MessageId(spec["message_id"]),
        sent_at=SENT_AT,
        message_key=message_key,
        iv=iv,
    )
    if sealed.header != envelope.header or sealed.ciphertext != envelope.ciphertext:
        raise RuntimeError("seal_message disagrees with the vector builder")
    if Envelope.from_wire(envelope.to_wire()) != envelope:
        raise RuntimeError("wire round trip failed")
    for name in spec["members"]:
        for candidate in (envelope, sealed):
            opened = open_message(
                candidate,
                me=people.private[name],
                sender_identity=people.public(spec["sender"]),
                conversation_id=ConversationId(conversation_id),
                members=frozenset(Username(m) for m in spec["members"]),
            )
            if opened.payload != spec["payload"]:
                raise RuntimeError("payload did not round-trip")


def receive(people: Personas, wire: object, recipient: str, context: dict[str, Any]) -> str:
    """The receiver's procedure of PROTOCOL.md, section 7.7, returning its outcome."""

    def run() -> None:
        envelope = Envelope.from_wire(wire)
        pinned_name = context["pinned"].get(envelope.header.sender)
        if pinned_name is None:
            raise VerificationFailed()
        pinned = people.public(pinned_name)
        sender_identity = PublicIdentity(
            envelope.header.sender, pinned.signing_key, pinned.encryption_key, pinned.encryption_key_signature
        )
        if envelope.header.message_id in context["seen_message_ids"]:
            raise VerificationFailed()
        open_message(
            envelope,
            me=people.private[recipient],
            sender_identity=sender_identity,
            conversation_id=ConversationId(context["conversation_id"]),
            members=frozenset(Username(m) for m in context["members"]),
        )

    return outcome(run)


def invalid_envelopes(
    people: Personas,
    factory: EnvelopeFactory,
    built: dict[str, tuple[dict[str, Any], Envelope, bytes, dict[str, Any]]],
) -> list[dict[str, Any]]:
    spec, direct, direct_key, direct_context = built["direct_text"]
    group_spec, group, group_key, group_context = built["group_text"]
    dm_wire = direct.to_wire()
    group_wire = group.to_wire()
    header = direct.header
    iv = direct.iv
    padded = pad(encode_payload(spec["payload"]))
    cases: list[dict[str, Any]] = []

    def add(
        name: str,
        note: str,
        wire: object,
        expected: str,
        *,
        recipient: str = "bob",
        context: dict[str, Any] | None = None,
    ) -> None:
        context = copy.deepcopy(direct_context if context is None else context)
        actual = receive(people, wire, recipient, context)
        if actual != expected:
            raise RuntimeError(f"{name}: expected {expected}, got {actual}")
        cases.append(
            {
                "name": name,
                "note": note,
                "recipient": recipient,
                "context": context,
                "wire": wire,
                "expected": expected,
            }
        )

    def edit(base: dict[str, Any], **changes: object) -> dict[str, Any]:
        out = copy.deepcopy(base)
        out.update(changes)
        return out

    def resign(signer: str = "alice", **kwargs: Any) -> dict[str, Any]:
        envelope = factory.build(signer=signer, **kwargs)
        return envelope.to_wire()

    ct = direct.ciphertext
    sig = direct.signature

    # --- Changed in transit: the signature no longer verifies. -------------------------
    add(
        "tampered_iv",
        "one bit of the IV flipped",
        edit(dm_wire, iv=b64encode(flip_bit(iv, 0))),
        "unverifiable",
    )
    add(
        "tampered_ciphertext",
        "one bit of the ciphertext flipped",
        edit(dm_wire, ciphertext=b64encode(flip_bit(ct, 0))),
        "unverifiable",
    )
    add(
        "tampered_tag",
        "one bit of the GCM tag flipped",
        edit(dm_wire, ciphertext=b64encode(flip_bit(ct, len(ct) - 1))),
        "unverifiable",
    )
    add(
        "truncated_ciphertext",
        "last ciphertext byte removed",
        edit(dm_wire, ciphertext=b64encode(ct[:-1])),
        "unverifiable",
    )
    add(
        "tampered_signature",
        "one bit of the signature flipped",
        edit(dm_wire, signature=b64encode(flip_bit(sig, 5))),
        "unverifiable",
    )
    s_value = int.from_bytes(sig[32:], "little") + ED25519_ORDER
    add(
        "signature_non_canonical_s",
        "S replaced by S + L (malleated signature); RFC 8032 verifiers reject S >= L",
        edit(dm_wire, signature=b64encode(sig[:32] + s_value.to_bytes(32, "little"))),
        "unverifiable",
    )
    add("tampered_sent_at", "sent_at increased by 1 ms", edit(dm_wire, sent_at=SENT_AT + 1), "unverifiable")
    add(
        "tampered_message_id",
        "message_id replaced by another valid UUIDv4",
        edit(dm_wire, message_id="3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e70"),
        "unverifiable",
    )
    add(
        "tampered_sender",
        "sender changed to carol; the receiver checks carol's pinned key",
        edit(dm_wire, sender="carol"),
        "unverifiable",
        context=edit(direct_context, pinned={"alice": "alice", "bob": "bob", "carol": "carol"}),
    )
    rerouted_header_conversation = direct_conversation_id(Username("bob"), Username("carol"))
    add(
        "tampered_conversation_id",
        "conversation_id in the header changed and the envelope delivered in that conversation",
        edit(dm_wire, conversation_id=GROUP_ID),
        "unverifiable",
        context=edit(direct_context, conversation_id=GROUP_ID),
    )
    swapped_keys = [
        {"recipient": "alice", "wrapped_key": dm_wire["keys"][1]["wrapped_key"]},
        {"recipient": "bob", "wrapped_key": dm_wire["keys"][0]["wrapped_key"]},
    ]
    add(
        "wrapped_key_swap",
        "the two wrapped keys exchanged between recipients",
        edit(dm_wire, keys=swapped_keys),
        "unverifiable",
    )
    add(
        "wrapped_key_dropped",
        "alice's wrapped key removed",
        edit(dm_wire, keys=dm_wire["keys"][1:]),
        "unverifiable",
    )
    add(
        "wrapped_key_dropped_group",
        "server strips bob's entry from a group envelope; alice opens it",
        edit(group_wire, keys=[k for k in group_wire["keys"] if k["recipient"] != "bob"]),
        "unverifiable",
        recipient="alice",
        context=group_context,
    )

    # --- Intact envelope, wrong context: the server delivered it where it does not belong.
    add(
        "rerouted_conversation",
        "unmodified envelope delivered into bob's conversation with carol",
        dm_wire,
        "unverifiable",
        context={
            "conversation_id": rerouted_header_conversation,
            "members": ["bob", "carol"],
            "pinned": {"alice": "alice", "bob": "bob", "carol": "carol"},
            "seen_message_ids": [],
        },
    )
    add(
        "rerouted_into_group",
        "unmodified direct envelope delivered into the group of alice, bob and carol",
        dm_wire,
        "unverifiable",
        context=edit(group_context, pinned={"alice": "alice", "bob": "bob", "carol": "carol"}),
    )
    add(
        "member_set_mismatch",
        "the receiver believes the group also contains mallory",
        group_wire,
        "unverifiable",
        recipient="alice",
        context=edit(group_context, members=["alice", "bob", "carol", "mallory"]),
    )
    add(
        "replay",
        "unmodified envelope whose message_id the receiver has already accepted",
        dm_wire,
        "unverifiable",
        context=edit(direct_context, seen_message_ids=[spec["message_id"]]),
    )
    add(
        "not_a_recipient",
        "carol has no wrapped key in the envelope",
        dm_wire,
        "unverifiable",
        recipient="carol",
        context=edit(direct_context, pinned={"alice": "alice", "bob": "bob", "carol": "carol"}),
    )
    add(
        "pinned_key_differs",
        "the receiver has pinned a different key for alice (mallory's), e.g. before a key change",
        dm_wire,
        "unverifiable",
        context=edit(direct_context, pinned={"alice": "mallory", "bob": "bob"}),
    )
    add(
        "sender_not_pinned",
        "the receiver has no pinned key for the sender",
        dm_wire,
        "unverifiable",
        context=edit(direct_context, pinned={"bob": "bob"}),
    )
    forged = factory.build(
        signer="mallory",
        header=header,
        message_key=fixed_bytes("message key forged", 32),
        iv=iv,
        padded=padded,
        recipients=["alice", "bob"],
    )
    add(
        "forged_by_mallory",
        "mallory seals and signs an envelope claiming sender alice",
        forged.to_wire(),
        "unverifiable",
    )

    # --- A malicious or broken sender: signed with the sender's real key. ----------------
    common = {"header": header, "message_key": direct_key, "iv": iv, "padded": padded}
    resigned_swap = factory.sign(
        "alice",
        Envelope(
            header,
            iv,
            ct,
            (
                WrappedKey(Username("alice"), direct.keys[1].wrapped_key),
                WrappedKey(Username("bob"), direct.keys[0].wrapped_key),
            ),
            b"",
        ),
    )
    add(
        "resigned_wrapped_key_swap",
        "wrapped keys exchanged and re-signed: the OAEP label binds the recipient",
        resigned_swap.to_wire(),
        "unverifiable",
    )
    other_id = "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e70"
    add(
        "resigned_label_for_other_message",
        "message key wrapped with OAEP labels made for another message id",
        resign(**common, recipients=["alice", "bob"], label_for=lambda n: wrapped_key_label(other_id, n)),
        "unverifiable",
    )
    add(
        "resigned_unlabelled_wrap",
        "message key wrapped with an empty OAEP label",
        resign(**common, recipients=["alice", "bob"], label_for=lambda n: b""),
        "unverifiable",
    )
    add(
        "resigned_wrong_aad",
        "ciphertext made with the AAD of a header whose sent_at differs by 1 ms",
        resign(
            **common,
            recipients=["alice", "bob"],
            aad=Header(1, header.message_id, header.conversation_id, header.sender, SENT_AT + 1).canonical(),
        ),
        "unverifiable",
    )
    add(
        "resigned_empty_aad",
        "ciphertext made without associated data",
        resign(**common, recipients=["alice", "bob"], aad=b""),
        "unverifiable",
    )
    add(
        "resigned_missing_member",
        "carol's group envelope leaves bob out; alice knows bob is a member",
        resign(
            signer="carol",
            header=group.header,
            message_key=group_key,
            iv=group.iv,
            padded=pad(encode_payload(group_spec["payload"])),
            recipients=["alice", "carol"],
        ),
        "unverifiable",
        recipient="alice",
        context=group_context,
    )
    add(
        "resigned_extra_recipient",
        "carol's group envelope also wraps the key for mallory, who is not a member",
        resign(
            signer="carol",
            header=group.header,
            message_key=group_key,
            iv=group.iv,
            padded=pad(encode_payload(group_spec["payload"])),
            recipients=["alice", "bob", "carol", "mallory"],
        ),
        "unverifiable",
        recipient="alice",
        context=group_context,
    )
    add(
        "resigned_sender_not_recipient",
        "alice's direct envelope wraps the key only for bob",
        resign(**common, recipients=["bob"]),
        "unverifiable",
    )
    short_key = fixed_bytes("short message key", 16)
    add(
        "resigned_128_bit_message_key",
        "the wrapped message key is 16 bytes (AES-128); only 32-byte keys are allowed",
        resign(header=header, message_key=short_key, iv=iv, padded=padded, recipients=["alice", "bob"]),
        "unverifiable",
    )
    bad_paddings: list[tuple[str, str, bytes]] = [
        ("resigned_padding_nonzero", "a non-zero byte in the padding", padded[:-1] + b"\x01"),
        ("resigned_padding_not_power_of_two", "padded plaintext of 300 bytes", padded + bytes(44)),
        ("resigned_padding_too_short", "padded plaintext of 128 bytes (below 256)", pad(b"{}")[:128]),
        (
            "resigned_length_prefix_overflow",
            "length prefix larger than the plaintext",
            (300).to_bytes(4, "big") + padded[4:],
        ),
        (
            "resigned_unpadded",
            "payload JSON encrypted without the length prefix and padding",
            encode_payload(spec["payload"]),
        ),
    ]
    for name, note, plaintext in bad_paddings:
        add(
            name, note, resign(**{**common, "padded": plaintext}, recipients=["alice", "bob"]), "unverifiable"
        )
    bad_payloads: list[tuple[str, str, bytes]] = [
        ("resigned_payload_not_json", "payload bytes are not JSON", b"hello bob"),
        ("resigned_payload_invalid_utf8", "payload bytes are not UTF-8", b'{"type":"text","text":"\xff"}'),
        (
            "resigned_payload_utf8_bom",
            "payload JSON preceded by a UTF-8 byte order mark (not valid JSON text here)",
            b'\xef\xbb\xbf{"type":"text","text":"hi"}',
        ),
        ("resigned_payload_not_object", "payload is a JSON array", b'["text","hi"]'),
        ("resigned_payload_without_type", "payload object has no type", b'{"text":"hi"}'),
        ("resigned_payload_type_not_string", "payload type is a number", b'{"type":1,"text":"hi"}'),
        ("resigned_payload_text_not_string", "payload text is a number", b'{"type":"text","text":5}'),
    ]
    for name, note, payload_bytes in bad_payloads:
        add(
            name,
            note,
            resign(**{**common, "padded": pad(payload_bytes)}, recipients=["alice", "bob"]),
            "unverifiable",
        )

    # --- Malformed or unsupported on the wire: refused before any cryptography. -----------
    def malformed(name: str, note: str, wire: object, expected: str = "malformed", **kwargs: Any) -> None:
        add(name, note, wire, expected, **kwargs)

    malformed(
        "version_2",
        "v is 2 (a future version); never treated as 1",
        edit(dm_wire, v=2),
        "unsupported_version",
    )
    malformed("version_0", "v is 0 (an older version)", edit(dm_wire, v=0), "unsupported_version")
    malformed("version_string", 'v is the string "1"', edit(dm_wire, v="1"))
    malformed("version_boolean", "v is true", edit(dm_wire, v=True))
    malformed("extra_field", "an unknown top-level field", edit(dm_wire, note="hi"))
    malformed(
        "missing_signature",
        "the signature field is absent",
        {k: v for k, v in dm_wire.items() if k != "signature"},
    )
    malformed("not_an_object", "the envelope is a JSON array", [dm_wire])
    malformed(
        "keys_unsorted",
        "keys not sorted by recipient",
        edit(group_wire, keys=list(reversed(group_wire["keys"]))),
        recipient="alice",
        context=group_context,
    )
    malformed(
        "keys_duplicate_recipient",
        "bob listed twice",
        edit(dm_wire, keys=[dm_wire["keys"][0], dm_wire["keys"][1], dm_wire["keys"][1]]),
    )
    malformed("keys_empty", "no wrapped keys", edit(dm_wire, keys=[]))
    malformed(
        "keys_not_a_list", "keys is an object", edit(dm_wire, keys={"bob": dm_wire["keys"][1]["wrapped_key"]})
    )
    too_many = [{"recipient": f"user{i:03d}", "wrapped_key": "AAAA"} for i in range(257)]
    malformed("keys_too_many", "257 recipients (the limit is 256)", edit(dm_wire, keys=too_many))
    malformed(
        "key_entry_extra_field",
        "a wrapped-key entry with an extra field",
        edit(dm_wire, keys=[dm_wire["keys"][0], {**dm_wire["keys"][1], "x": 1}]),
    )
    malformed(
        "recipient_not_normalised",
        'recipient "Bob" instead of "bob"',
        edit(dm_wire, keys=[dm_wire["keys"][0], {**dm_wire["keys"][1], "recipient": "Bob"}]),
    )
    malformed("sender_not_normalised", 'sender "Alice" instead of "alice"', edit(dm_wire, sender="Alice"))
    malformed(
        "message_id_upper_case",
        "message_id in upper case",
        edit(dm_wire, message_id=spec["message_id"].upper()),
    )
    malformed(
        "message_id_not_v4",
        "message_id is a version 1 UUID",
        edit(dm_wire, message_id="3f0c6a6e-8d1b-1c2a-9e57-1b2f3c4d5e6f"),
    )
    malformed(
        "conversation_id_malformed",
        "conversation_id with 31 hex digits",
        edit(dm_wire, conversation_id=dm_wire["conversation_id"][:-1]),
    )
    malformed("iv_16_bytes", "IV of 16 bytes", edit(dm_wire, iv=b64encode(iv + bytes(4))))
    malformed("iv_8_bytes", "IV of 8 bytes", edit(dm_wire, iv=b64encode(iv[:8])))
    malformed("signature_63_bytes", "signature of 63 bytes", edit(dm_wire, signature=b64encode(sig[:63])))
    malformed(
        "signature_65_bytes", "signature of 65 bytes", edit(dm_wire, signature=b64encode(sig + b"\x00"))
    )
    text = dm_wire["ciphertext"]
    if not text.endswith("=") or text.endswith("=="):
        raise RuntimeError("the direct ciphertext should end in exactly one '='")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # With one "=", the last data character carries 4 bits of data and 2 unused bits.
    non_canonical = text[:-2] + alphabet[alphabet.index(text[-2]) ^ 1] + "="
    malformed(
        "ciphertext_non_canonical_base64",
        "unused low bits of the last base64 character set",
        edit(dm_wire, ciphertext=non_canonical),
    )
    malformed(
        "ciphertext_with_newline",
        "base64 with a line break",
        edit(dm_wire, ciphertext=text[:64] + "\n" + text[64:]),
    )
    wrapped = dm_wire["keys"][1]["wrapped_key"]
    if "+" not in wrapped and "/" not in wrapped:
        raise RuntimeError("pick a wrapped key with + or / for the URL-safe case")
    malformed(
        "wrapped_key_url_safe_base64",
        "wrapped key in the URL-safe alphabet",
        edit(
            dm_wire,
            keys=[
                dm_wire["keys"][0],
                {"recipient": "bob", "wrapped_key": wrapped.replace("+", "-").replace("/", "_")},
            ],
        ),
    )
    malformed("sent_at_negative", "sent_at is -1", edit(dm_wire, sent_at=-1))
    malformed("sent_at_too_large", "sent_at is 2^53 (not a safe integer)", edit(dm_wire, sent_at=2**53))
    malformed("sent_at_string", "sent_at is a string", edit(dm_wire, sent_at=str(SENT_AT)))
    return cases


# --------------------------------------------------------------------------------------


def build(previous: dict[str, Any] | None) -> dict[str, Any]:
    randomness = StoredRandomness(previous)
    people = Personas(randomness)
    randomness.load_wraps({n: people.private[n].encryption_private for n in PERSONAS})
    kdf_cases = kdf_section()
    vectors: dict[str, Any] = {
        "description": (
            "SecureChat protocol v1 test vectors. Generated by scripts/make_vectors.py; see PROTOCOL.md. "
            "Bytes are lower-case hex (fields ending in _hex) except inside wire objects, which are exactly "
            "as they travel (base64). 'expected' is 'ok' or an error kind: malformed, unsupported_version, "
            "weak_parameters, unverifiable."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "labels": labels_section(),
        "u64": u64_section(),
        "canonical": canonical_section(),
        "base64": base64_section(),
        "usernames": usernames_section(),
        "identifiers": identifiers_section(),
        "kdf": kdf_cases,
        "kdf_params": kdf_params_section(),
        "identities": people.section(),
        "identity_invalid": identity_invalid_section(people),
        "public_keys": public_keys_section(people, randomness),
        "key_bundle": key_bundle_section(people, kdf_cases),
        "safety_numbers": safety_numbers_section(people),
        "padding": padding_section(),
        "envelopes": envelope_section(people, randomness),
        "files": files_section(),
        "groups": groups_section(people),
        "receipts": receipts_section(people),
    }
    vectors["decisions"] = decisions_section(
        people,
        EnvelopeFactory(people, randomness),
        vectors["envelopes"],
        vectors["groups"],
        group_id=GROUP_ID,
        t0=GROUP_T0,
    )
    vectors["rsa_oaep"] = randomness.wraps
    return vectors


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="do not write; fail if the file differs")
    parser.add_argument("--fresh", action="store_true", help="ignore stored RSA keys and OAEP wraps")
    args = parser.parse_args(argv)
    previous = None
    if args.output.exists() and not args.fresh:
        previous = json.loads(args.output.read_text(encoding="utf-8"))
    text = render(build(previous))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run scripts/make_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
