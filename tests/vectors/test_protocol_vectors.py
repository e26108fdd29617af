"""Check tests/data/protocol_vectors.json against the Python implementation of protocol v1.

Everything deterministic is recomputed with ``securechat.protocol`` and compared byte for
byte, so any change to a canonical string, a derivation, a padding rule, a ciphertext or
a signature fails here. The two randomised operations (RSA key generation, RSA-OAEP
encryption) are checked the other way round: the stored keys and wraps must load and
unwrap. A few constructions are also recomputed from PROTOCOL.md directly (``spec_*``
helpers), so the document and the code cannot drift apart unnoticed.

The same file drives the browser implementation's tests; see scripts/make_vectors.py.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.protocol import PROTOCOL_VERSION, labels
from securechat.protocol.encoding import b64decode, b64encode, canonical, split_canonical, u64
from securechat.protocol.envelope import (
    Envelope,
    Header,
    decode_payload,
    encode_payload,
    open_message,
    pad,
    seal_message,
    signature_input,
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
    FileDecryptor,
    FileEncryptor,
    chunk_aad,
    chunk_ciphertext_size,
    chunk_count,
    chunk_nonce,
    chunk_plaintext_size,
    decrypt_chunk,
)
from securechat.protocol.groups import GroupChange, GroupState, Invite, genesis, make_invite, verify_chain
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
    encryption_key_binding,
    fingerprint,
    format_safety_number,
    key_bundle_aad,
    open_key_bundle,
    safety_number,
    seal_key_bundle,
)
from securechat.protocol.primitives import (
    load_ed25519_public_key,
    load_rsa_public_key,
    pkcs8,
    rsa_oaep_decrypt,
    spki,
)
from securechat.protocol.receipts import Receipt, make_receipt

VECTORS_PATH = Path(__file__).resolve().parent.parent / "data" / "protocol_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

ERROR_KINDS: dict[type[ProtocolError], str] = {
    MalformedInput: "malformed",
    UnsupportedVersion: "unsupported_version",
    WeakParameters: "weak_parameters",
    VerificationFailed: "unverifiable",
}


def outcome(action: Callable[[], object]) -> str:
    """ "ok", or the error kind of the ProtocolError that ``action`` raised."""
    try:
        action()
    except ProtocolError as exc:
        for cls, kind in ERROR_KINDS.items():
            if isinstance(exc, cls):
                return kind
        raise
    return "ok"


def cases(section: list[dict[str, Any]], key: str = "name") -> pytest.MarkDecorator:
    """Parametrise over a list of cases, with readable ids."""
    return pytest.mark.parametrize(
        "case", section, ids=[str(item.get(key, index)) for index, item in enumerate(section)]
    )


# ---------------------------------------------------------------------------------------
# Independent re-implementations of a few PROTOCOL.md constructions.
# ---------------------------------------------------------------------------------------


def spec_canonical(label: str, fields: list[bytes]) -> bytes:
    out = b""
    for field in [label.encode("utf-8"), *fields]:
        out += struct.pack(">I", len(field)) + field
    return out


def spec_safety_digits(username: str, signing_spki: bytes, encryption_spki: bytes) -> str:
    keys = spec_canonical(labels.SAFETY_NUMBER, [signing_spki, encryption_spki])
    digest = hashlib.sha512(spec_canonical(labels.SAFETY_NUMBER, [username.encode(), keys])).digest()
    for _ in range(5200):
        digest = hashlib.sha512(digest + keys).digest()
    return "".join(str(int.from_bytes(digest[i : i + 5], "big") % 100_000).zfill(5) for i in range(0, 30, 5))


def spec_pad(payload: bytes) -> bytes:
    framed = struct.pack(">I", len(payload)) + payload
    size = 256
    while size < len(framed):
        size *= 2
    return framed + b"\x00" * (size - len(framed))


# ---------------------------------------------------------------------------------------
# Identities from the vector file.
# ---------------------------------------------------------------------------------------


@cache
def private_identity(name: str) -> PrivateIdentity:
    record = VECTORS["identities"][name]
    signing = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(record["ed25519_seed_hex"]))
    encryption = serialization.load_der_private_key(
        bytes.fromhex(record["encryption_private_pkcs8_hex"]), password=None
    )
    assert isinstance(encryption, rsa.RSAPrivateKey)
    return PrivateIdentity.from_private_keys(Username(record["username"]), signing, encryption)


def public_identity(name: str) -> PublicIdentity:
    return private_identity(name).public


def hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


# ---------------------------------------------------------------------------------------
# File-level checks.
# ---------------------------------------------------------------------------------------


def test_file_is_for_this_protocol_version() -> None:
    assert VECTORS["protocol_version"] == PROTOCOL_VERSION == 1


def test_labels_are_exactly_those_of_labels_py() -> None:
    from_code = {name: getattr(labels, name) for name in vars(labels) if name.isupper()}
    assert {name: item["value"] for name, item in VECTORS["labels"].items()} == from_code


def test_every_canonical_label_has_a_canonical_vector() -> None:
    raw_info = {labels.AUTH_KEY_INFO, labels.WRAP_KEY_INFO}
    covered = {case["label"] for case in VECTORS["canonical"]}
    assert {item["value"] for item in VECTORS["labels"].values()} - raw_info <= covered


def test_every_section_has_cases() -> None:
    invalid_kinds = {case["expected"] for case in VECTORS["envelopes"]["invalid"]}
    assert invalid_kinds == {"unverifiable", "malformed", "unsupported_version"}
    assert len(VECTORS["kdf"]) >= 2
    assert len(VECTORS["envelopes"]["cases"]) >= 2
    assert set(VECTORS["identities"]) >= {"alice", "bob", "carol", "mallory"}


# ---------------------------------------------------------------------------------------
# Encoding.
# ---------------------------------------------------------------------------------------


@cases(VECTORS["u64"], key="value")
def test_u64(case: dict[str, str]) -> None:
    assert u64(int(case["value"])).hex() == case["hex"]


@cases(VECTORS["canonical"], key="note")
def test_canonical(case: dict[str, Any]) -> None:
    fields = hexes(case["fields_hex"])
    expected = bytes.fromhex(case["expected_hex"])
    assert canonical(case["label"], fields) == expected
    assert spec_canonical(case["label"], fields) == expected
    assert split_canonical(expected, case["label"]) == fields


@cases(VECTORS["base64"]["valid"], key="text")
def test_base64_valid(case: dict[str, str]) -> None:
    assert b64decode(case["text"]).hex() == case["hex"]
    assert b64encode(bytes.fromhex(case["hex"])) == case["text"]


@cases(VECTORS["base64"]["invalid"], key="note")
def test_base64_invalid(case: dict[str, str]) -> None:
    assert outcome(lambda: b64decode(case["text"])) == case["expected"]


# ---------------------------------------------------------------------------------------
# Identifiers.
# ---------------------------------------------------------------------------------------


@cases(VECTORS["usernames"]["valid"], key="note")
def test_username_valid(case: dict[str, str]) -> None:
    assert parse_username(case["input"]) == case["normalised"]


@cases(VECTORS["usernames"]["invalid"], key="note")
def test_username_invalid(case: dict[str, Any]) -> None:
    assert outcome(lambda: parse_username(case["input"])) == case["expected"]


@pytest.mark.parametrize("value", VECTORS["identifiers"]["message_ids"]["valid"])
def test_message_id_valid(value: str) -> None:
    assert parse_message_id(value) == value


@cases(VECTORS["identifiers"]["message_ids"]["invalid"], key="note")
def test_message_id_invalid(case: dict[str, str]) -> None:
    assert outcome(lambda: parse_message_id(case["input"])) == case["expected"]


@pytest.mark.parametrize("value", VECTORS["identifiers"]["conversation_ids"]["valid"])
def test_conversation_id_valid(value: str) -> None:
    assert parse_conversation_id(value) == value


@cases(VECTORS["identifiers"]["conversation_ids"]["invalid"], key="note")
def test_conversation_id_invalid(case: dict[str, str]) -> None:
    assert outcome(lambda: parse_conversation_id(case["input"])) == case["expected"]


@cases(VECTORS["identifiers"]["direct_conversations"], key="conversation_id")
def test_direct_conversation_id(case: dict[str, str]) -> None:
    first, second = Username(case["first"]), Username(case["second"])
    assert direct_conversation_id(first, second) == case["conversation_id"]
    assert direct_conversation_id(second, first) == case["conversation_id"]
    low, high = sorted((case["first"].encode(), case["second"].encode()))
    spec_input = spec_canonical(labels.DIRECT_CONVERSATION, [low, high])
    assert spec_input.hex() == case["sha256_input_hex"]
    assert "dm-" + hashlib.sha256(spec_input).hexdigest()[:32] == case["conversation_id"]


# ---------------------------------------------------------------------------------------
# Account keys.
# ---------------------------------------------------------------------------------------


@cases(VECTORS["kdf"])
def test_kdf(case: dict[str, Any]) -> None:
    params = KdfParams.from_wire(case["kdf_wire"])
    assert params.salt.hex() == case["salt_hex"]
    assert params.iterations == case["iterations"]
    assert normalise_password(case["password"]).hex() == case["password_bytes_hex"]
    derived = derive_keys(case["password"], params)
    assert derived.auth_key.hex() == case["auth_key_hex"]
    assert derived.wrap_key.hex() == case["wrap_key_hex"]
    for spelling in case["nfkc_equivalents"]:
        assert normalise_password(spelling).hex() == case["password_bytes_hex"]


@pytest.mark.parametrize("wire", VECTORS["kdf_params"]["valid"])
def test_kdf_params_valid(wire: dict[str, Any]) -> None:
    assert KdfParams.from_wire(wire).to_wire() == wire


@cases(VECTORS["kdf_params"]["invalid"], key="note")
def test_kdf_params_invalid(case: dict[str, Any]) -> None:
    assert outcome(lambda: KdfParams.from_wire(case["kdf"])) == case["expected"]


# ---------------------------------------------------------------------------------------
# Identities, public keys, key bundles, safety numbers.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VECTORS["identities"]))
def test_identity(name: str) -> None:
    record = VECTORS["identities"][name]
    identity = private_identity(name)
    public = identity.public
    assert pkcs8(identity.signing_private).hex() == record["signing_private_pkcs8_hex"]
    assert pkcs8(identity.encryption_private).hex() == record["encryption_private_pkcs8_hex"]
    assert identity.encryption_private.key_size == 2048
    assert public.signing_key.hex() == record["signing_key_hex"]
    assert public.encryption_key.hex() == record["encryption_key_hex"]
    binding = encryption_key_binding(name, public.encryption_key)
    assert binding.hex() == record["encryption_key_binding_input_hex"]
    assert binding == spec_canonical(labels.ENCRYPTION_KEY_BINDING, [name.encode(), public.encryption_key])
    assert public.encryption_key_signature.hex() == record["encryption_key_signature_hex"]
    assert fingerprint(public.signing_key) == record["signing_key_fingerprint"]
    assert fingerprint(public.encryption_key) == record["encryption_key_fingerprint"]
    assert record["signing_key_fingerprint"] == " ".join(
        hashlib.sha256(public.signing_key).hexdigest().upper()[i : i + 4] for i in range(0, 64, 4)
    )
    assert public.to_wire() == record["public_identity_wire"]
    parsed = PublicIdentity.from_wire(Username(name), record["public_identity_wire"]).verified()
    assert parsed == public


@cases(VECTORS["identity_invalid"], key="note")
def test_identity_invalid(case: dict[str, Any]) -> None:
    def check() -> None:
        PublicIdentity.from_wire(Username(case["username"]), case["public_identity_wire"]).verified()

    assert outcome(check) == case["expected"]


@cases(VECTORS["public_keys"]["rsa_encryption_keys"])
def test_rsa_public_key(case: dict[str, str]) -> None:
    der = bytes.fromhex(case["spki_hex"])
    assert outcome(lambda: load_rsa_public_key(der)) == case["expected"]
    if case["expected"] == "ok":
        assert spki(load_rsa_public_key(der)) == der


@cases(VECTORS["public_keys"]["ed25519_signing_keys"])
def test_ed25519_public_key(case: dict[str, str]) -> None:
    der = bytes.fromhex(case["spki_hex"])
    assert outcome(lambda: load_ed25519_public_key(der)) == case["expected"]
    if case["expected"] == "ok":
        assert der[:12].hex() == "302a300506032b6570032100" and len(der) == 44


@cases(VECTORS["key_bundle"]["cases"], key="username")
def test_key_bundle_seal(case: dict[str, Any]) -> None:
    identity = private_identity(case["identity"])
    wrap_key = bytes.fromhex(case["wrap_key_hex"])
    kdf_case = next(item for item in VECTORS["kdf"] if item["name"] == case["wrap_key_from_kdf_case"])
    assert kdf_case["wrap_key_hex"] == case["wrap_key_hex"]
    aad = key_bundle_aad(case["username"])
    assert aad.hex() == case["aad_hex"]
    assert aad == spec_canonical(labels.KEY_BUNDLE_AAD, [case["username"].encode(), b"1"])
    plaintext = spec_canonical(
        labels.KEY_BUNDLE_PLAINTEXT, [pkcs8(identity.encryption_private), pkcs8(identity.signing_private)]
    )
    assert plaintext.hex() == case["plaintext_hex"]
    sealed = seal_key_bundle(identity, wrap_key, iv=bytes.fromhex(case["iv_hex"]))
    assert sealed == case["sealed"]
    ciphertext = b64decode(case["sealed"]["ciphertext"])
    assert AESGCM(wrap_key).decrypt(bytes.fromhex(case["iv_hex"]), ciphertext, aad) == plaintext


@cases(VECTORS["key_bundle"]["cases"], key="username")
def test_key_bundle_open(case: dict[str, Any]) -> None:
    opened = open_key_bundle(case["sealed"], bytes.fromhex(case["wrap_key_hex"]), Username(case["username"]))
    assert opened.public == public_identity(case["identity"])
    assert pkcs8(opened.encryption_private) == pkcs8(private_identity(case["identity"]).encryption_private)
    assert pkcs8(opened.signing_private) == pkcs8(private_identity(case["identity"]).signing_private)


@cases(VECTORS["key_bundle"]["invalid"], key="note")
def test_key_bundle_invalid(case: dict[str, Any]) -> None:
    def check() -> None:
        open_key_bundle(case["sealed"], bytes.fromhex(case["wrap_key_hex"]), Username(case["username"]))

    assert outcome(check) == case["expected"]


@cases(VECTORS["safety_numbers"], key="safety_number")
def test_safety_number(case: dict[str, str]) -> None:
    first, second = public_identity(case["first"]), public_identity(case["second"])
    assert safety_number(first, second) == case["safety_number"]
    assert safety_number(second, first) == case["safety_number"]
    assert format_safety_number(case["safety_number"]) == case["display"]
    first_digits = spec_safety_digits(case["first"], first.signing_key, first.encryption_key)
    second_digits = spec_safety_digits(case["second"], second.signing_key, second.encryption_key)
    assert (first_digits, second_digits) == (case["first_digits"], case["second_digits"])
    assert "".join(sorted((first_digits, second_digits))) == case["safety_number"]


# ---------------------------------------------------------------------------------------
# Padding and RSA-OAEP.
# ---------------------------------------------------------------------------------------


@cases(VECTORS["padding"]["lengths"], key="payload_length")
def test_padded_length(case: dict[str, int]) -> None:
    padded = pad(bytes(case["payload_length"]))
    assert len(padded) == case["padded_length"]
    assert padded == spec_pad(bytes(case["payload_length"]))


@pytest.mark.parametrize("case", VECTORS["padding"]["valid"] + VECTORS["padding"]["valid_larger_bucket"])
def test_padding_valid(case: dict[str, str]) -> None:
    payload, padded = bytes.fromhex(case["payload_hex"]), bytes.fromhex(case["padded_hex"])
    assert unpad(padded) == payload
    if len(padded) == len(spec_pad(payload)):
        assert pad(payload) == padded


@cases(VECTORS["padding"]["invalid"], key="note")
def test_padding_invalid(case: dict[str, str]) -> None:
    assert outcome(lambda: unpad(bytes.fromhex(case["padded_hex"]))) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["rsa_oaep"])
def test_rsa_oaep_unwrap(case: dict[str, str]) -> None:
    name = case["recipient_identity"]
    plaintext = rsa_oaep_decrypt(
        private_identity(name).encryption_private,
        bytes.fromhex(case["wrapped_key_hex"]),
        bytes.fromhex(case["label_hex"]),
    )
    assert plaintext.hex() == case["plaintext_hex"]


# ---------------------------------------------------------------------------------------
# Envelopes.
# ---------------------------------------------------------------------------------------


def receive(wire: object, recipient: str, context: dict[str, Any]) -> dict[str, Any]:
    """The receiver's procedure (PROTOCOL.md 7.7) with the context a client keeps.

    The protocol layer is stateless, so the replay check (a message id accepted before)
    lives here, as it will in the client; everything else is ``open_message``.
    """
    envelope = Envelope.from_wire(wire)
    pinned_name = context["pinned"].get(envelope.header.sender)
    if pinned_name is None:
        raise VerificationFailed()
    pinned = public_identity(pinned_name)
    sender_identity = PublicIdentity(
        envelope.header.sender, pinned.signing_key, pinned.encryption_key, pinned.encryption_key_signature
    )
    if envelope.header.message_id in context["seen_message_ids"]:
        raise VerificationFailed()
    opened = open_message(
        envelope,
        me=private_identity(recipient),
        sender_identity=sender_identity,
        conversation_id=ConversationId(context["conversation_id"]),
        members=frozenset(Username(member) for member in context["members"]),
    )
    return opened.payload


def case_header(case: dict[str, Any]) -> Header:
    return Header(
        version=1,
        message_id=MessageId(case["message_id"]),
        conversation_id=ConversationId(case["conversation_id"]),
        sender=Username(case["sender"]),
        sent_at=case["sent_at"],
    )


@cases(VECTORS["envelopes"]["cases"])
def test_envelope_bytes(case: dict[str, Any]) -> None:
    header = case_header(case)
    header_bytes = bytes.fromhex(case["header_canonical_hex"])
    assert header.canonical() == header_bytes
    assert header_bytes == spec_canonical(
        labels.MESSAGE_HEADER,
        [
            struct.pack(">Q", 1),
            case["message_id"].encode(),
            case["conversation_id"].encode(),
            case["sender"].encode(),
            struct.pack(">Q", case["sent_at"]),
        ],
    )
    payload_bytes = encode_payload(case["payload"])
    assert payload_bytes.hex() == case["payload_bytes_hex"]
    padded = pad(payload_bytes)
    assert padded.hex() == case["padded_plaintext_hex"]
    assert padded == spec_pad(payload_bytes)
    message_key, iv = bytes.fromhex(case["message_key_hex"]), bytes.fromhex(case["iv_hex"])
    assert AESGCM(message_key).encrypt(iv, padded, header_bytes).hex() == case["ciphertext_hex"]

    envelope = Envelope.from_wire(case["wire"])
    assert envelope.to_wire() == case["wire"]
    assert envelope.header == header
    assert envelope.iv == iv
    assert envelope.ciphertext.hex() == case["ciphertext_hex"]
    assert [k.recipient for k in envelope.keys] == sorted(case["recipients"])
    assert [(k.recipient, k.wrapped_key.hex()) for k in envelope.keys] == [
        (item["recipient"], item["wrapped_key_hex"]) for item in case["wrapped_keys"]
    ]
    signed = signature_input(header, iv, envelope.ciphertext, envelope.keys)
    assert signed.hex() == case["signature_input_hex"]
    spec_fields = [header_bytes, iv, envelope.ciphertext, struct.pack(">Q", len(envelope.keys))]
    for item in case["wrapped_keys"]:
        spec_fields += [item["recipient"].encode(), bytes.fromhex(item["wrapped_key_hex"])]
    assert signed == spec_canonical(labels.MESSAGE_SIGNATURE, spec_fields)
    # Ed25519 is deterministic: the sender's key must reproduce the signature exactly.
    assert private_identity(case["sender"]).signing_private.sign(signed).hex() == case["signature_hex"]
    assert envelope.signature.hex() == case["signature_hex"]


@cases(VECTORS["envelopes"]["cases"])
def test_envelope_wrapped_keys(case: dict[str, Any]) -> None:
    for item in case["wrapped_keys"]:
        label = wrapped_key_label(case["message_id"], item["recipient"])
        assert label.hex() == item["oaep_label_hex"]
        assert label == spec_canonical(
            labels.WRAPPED_KEY_LABEL, [case["message_id"].encode(), item["recipient"].encode()]
        )
        unwrapped = rsa_oaep_decrypt(
            private_identity(item["recipient"]).encryption_private,
            bytes.fromhex(item["wrapped_key_hex"]),
            label,
        )
        assert unwrapped.hex() == case["message_key_hex"]


@cases(VECTORS["envelopes"]["cases"])
def test_envelope_opens_for_every_recipient(case: dict[str, Any]) -> None:
    for recipient in case["recipients"]:
        assert receive(case["wire"], recipient, case["context"]) == case["payload"]
    assert decode_payload(bytes.fromhex(case["payload_bytes_hex"])) == case["payload"]


@cases(VECTORS["envelopes"]["cases"])
def test_envelope_reseal(case: dict[str, Any]) -> None:
    """seal_message with the vector's key and IV: same header, ciphertext and signed prefix."""
    recipients = {Username(name): public_identity(name) for name in case["recipients"]}
    sealed = seal_message(
        private_identity(case["sender"]),
        ConversationId(case["conversation_id"]),
        recipients,
        case["payload"],
        message_id=MessageId(case["message_id"]),
        sent_at=case["sent_at"],
        message_key=bytes.fromhex(case["message_key_hex"]),
        iv=bytes.fromhex(case["iv_hex"]),
    )
    assert sealed.header.canonical().hex() == case["header_canonical_hex"]
    assert sealed.ciphertext.hex() == case["ciphertext_hex"]
    # The fresh RSA-OAEP wraps differ; with the stored ones the signature input is identical.
    stored = Envelope.from_wire(case["wire"])
    assert (
        signature_input(sealed.header, sealed.iv, sealed.ciphertext, stored.keys).hex()
        == case["signature_input_hex"]
    )
    assert [k.recipient for k in sealed.keys] == [k.recipient for k in stored.keys]
    for recipient in case["recipients"]:
        assert receive(sealed.to_wire(), recipient, case["context"]) == case["payload"]


@cases(VECTORS["envelopes"]["invalid"])
def test_envelope_invalid(case: dict[str, Any]) -> None:
    assert outcome(lambda: receive(case["wire"], case["recipient"], case["context"])) == case["expected"]


# ---------------------------------------------------------------------------------------
# Files (PROTOCOL.md section 12).
# ---------------------------------------------------------------------------------------

FILES = VECTORS["files"]


def spec_chunk_nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, int(last))


def test_file_chunk_size_is_one_mebibyte() -> None:
    assert FILES["chunk_bytes"] == FILE_CHUNK_BYTES == 1048576


@cases(FILES["layout"], key="size")
def test_file_layout(case: dict[str, Any]) -> None:
    size = case["size"]
    assert chunk_count(size) == case["chunks"] == len(case["plaintext_sizes"])
    assert [chunk_plaintext_size(size, i) for i in range(case["chunks"])] == case["plaintext_sizes"]
    assert [chunk_ciphertext_size(size, i) for i in range(case["chunks"])] == case["ciphertext_sizes"]
    assert sum(case["plaintext_sizes"]) == size


@pytest.mark.parametrize("case", FILES["nonces"])
def test_file_chunk_nonce_and_aad(case: dict[str, Any]) -> None:
    nonce = chunk_nonce(case["index"], case["last"])
    assert nonce.hex() == case["nonce_hex"] == spec_chunk_nonce(case["index"], case["last"]).hex()
    aad = chunk_aad(case["file_id"], case["index"], case["last"])
    expected_aad = canonical(labels.FILE_CHUNK, [case["file_id"], u64(case["index"]), u64(int(case["last"]))])
    assert aad.hex() == case["aad_hex"] == expected_aad.hex()


@cases(FILES["small"], key="note")
def test_small_file_round_trip(case: dict[str, Any]) -> None:
    key, plaintext = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["plaintext_hex"])
    encryptor = FileEncryptor(len(plaintext), file_id=case["file_id"], key=key)
    assert [encryptor.encrypt(plaintext).hex()] == case["chunks_hex"]
    descriptor = encryptor.descriptor("v.txt")
    assert descriptor.sha256.hex() == case["sha256_hex"] == hashlib.sha256(plaintext).hexdigest()
    # Independently of files.py: AES-GCM with the documented nonce and AAD.
    aad = canonical(labels.FILE_CHUNK, [case["file_id"], u64(0), u64(1)])
    assert (
        AESGCM(key).decrypt(spec_chunk_nonce(0, True), bytes.fromhex(case["chunks_hex"][0]), aad) == plaintext
    )
    decryptor = FileDecryptor(descriptor)
    assert decryptor.decrypt(bytes.fromhex(case["chunks_hex"][0])) == plaintext
    decryptor.finish()


def test_generated_three_chunk_file() -> None:
    case = FILES["generated"]
    key, size = bytes.fromhex(case["key_hex"]), case["size"]
    encryptor = FileEncryptor(size, file_id=case["file_id"], key=key)
    hashes, chunks = [], []
    for index in range(chunk_count(size)):
        start = index * FILE_CHUNK_BYTES
        plain = bytes((start + j) % 251 for j in range(chunk_plaintext_size(size, index)))
        chunks.append(encryptor.encrypt(plain))
        hashes.append(hashlib.sha256(chunks[-1]).hexdigest())
    assert hashes == case["chunk_sha256_hex"]
    assert chunks[-1].hex() == case["last_chunk_hex"]
    descriptor = encryptor.descriptor("pattern.bin")
    assert descriptor.sha256.hex() == case["sha256_hex"]
    decryptor = FileDecryptor(descriptor)
    for chunk in chunks:
        decryptor.decrypt(chunk)
    decryptor.finish()


@cases(FILES["invalid_chunks"], key="note")
def test_file_chunk_tampering(case: dict[str, Any]) -> None:
    def attempt() -> bytes:
        return decrypt_chunk(
            bytes.fromhex(case["key_hex"]),
            case["file_id"],
            case["index"],
            case["last"],
            bytes.fromhex(case["ciphertext_hex"]),
        )

    assert outcome(attempt) == case["expected"]


@cases(FILES["payloads"], key="note")
def test_file_payloads(case: dict[str, Any]) -> None:
    assert outcome(lambda: decode_payload(bytes.fromhex(case["payload_hex"]))) == case["expected"]


# ---------------------------------------------------------------------------------------
# Groups (PROTOCOL.md section 13).
# ---------------------------------------------------------------------------------------

GROUPS = VECTORS["groups"]


def group_lookup(name: str) -> PublicIdentity | None:
    return public_identity(name) if name in VECTORS["identities"] else None


def test_invite_bytes_signature_and_hash() -> None:
    case = GROUPS["invite"]
    invite = Invite.from_wire(case["wire"])
    assert invite.signed_bytes().hex() == case["signed_bytes_hex"]
    expected_signed = canonical(
        labels.GROUP_INVITE,
        [
            u64(1),
            invite.group_id,
            invite.invite_id,
            invite.inviter,
            u64(invite.expires_at),
            u64(invite.max_uses),
        ],
    )
    assert expected_signed.hex() == case["signed_bytes_hex"]
    assert invite.digest().hex() == case["hash_hex"]
    assert (
        hashlib.sha256(canonical(labels.GROUP_INVITE_HASH, [expected_signed, invite.signature])).hexdigest()
        == case["hash_hex"]
    )
    # Ed25519 is deterministic: re-signing gives the stored signature.
    resigned = make_invite(
        private_identity(invite.inviter),
        invite.group_id,
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
        invite_id=invite.invite_id,
    )
    assert resigned.to_wire() == case["wire"]
    invite.verify(public_identity(invite.inviter))


def test_group_chain_step_by_step() -> None:
    state: GroupState | None = None
    for case in GROUPS["chain"]:
        change = GroupChange.from_wire(case["wire"])
        assert change.to_wire() == case["wire"]
        assert change.signed_bytes().hex() == case["signed_bytes_hex"]
        assert change.digest().hex() == case["hash_hex"]
        assert (
            hashlib.sha256(
                canonical(
                    labels.GROUP_CHANGE_HASH, [bytes.fromhex(case["signed_bytes_hex"]), change.signature]
                )
            ).hexdigest()
            == case["hash_hex"]
        )
        state = genesis(change, group_lookup) if state is None else state.apply(change, group_lookup)
        assert sorted(state.members) == case["members_after"]
        assert sorted(state.admins) == case["admins_after"]
        if state.seq > 0:
            assert change.prev.hex() == GROUPS["chain"][state.seq - 1]["hash_hex"]
    assert state is not None
    assert [sorted(m) for m in state.history] == GROUPS["history"]


def test_group_chain_whole() -> None:
    state = verify_chain([GroupChange.from_wire(c["wire"]) for c in GROUPS["chain"]], group_lookup)
    assert sorted(state.members) == GROUPS["chain"][-1]["members_after"]


@cases(GROUPS["invalid_chains"], key="note")
def test_group_chain_invalid(case: dict[str, Any]) -> None:
    def replay() -> GroupState:
        return verify_chain([GroupChange.from_wire(w) for w in case["wires"]], group_lookup)

    assert outcome(replay) == case["expected"]


@cases(GROUPS["malformed_changes"], key="note")
def test_group_change_malformed(case: dict[str, Any]) -> None:
    assert outcome(lambda: GroupChange.from_wire(case["wire"])) == case["expected"]


@cases(GROUPS["recipients"], key="note")
def test_group_recipients(case: dict[str, Any]) -> None:
    state = verify_chain([GroupChange.from_wire(c["wire"]) for c in GROUPS["chain"]], group_lookup)
    recipients = frozenset(Username(n) for n in case["recipients"])
    assert (
        state.accepts_recipients(recipients, Username(case["sender"]), since=case["since"])
        is case["accepted"]
    )


@cases(GROUPS["payloads"], key="note")
def test_group_info_payloads(case: dict[str, Any]) -> None:
    assert outcome(lambda: decode_payload(bytes.fromhex(case["payload_hex"]))) == case["expected"]


# ---------------------------------------------------------------------------------------
# Receipts (9.3).
# ---------------------------------------------------------------------------------------

RECEIPTS = VECTORS["receipts"]


@cases(RECEIPTS["cases"], key="note")
def test_receipt_bytes_and_signature(case: dict[str, Any]) -> None:
    receipt = Receipt.from_wire(case["wire"])
    assert receipt.to_wire() == case["wire"]
    wire = case["wire"]
    expected_signed = canonical(
        labels.RECEIPT,
        [
            u64(1),
            wire["conversation_id"],
            wire["reader"],
            wire["status"],
            u64(len(wire["message_ids"])),
            *wire["message_ids"],
        ],
    )
    assert expected_signed.hex() == case["signed_bytes_hex"] == receipt.signed_bytes().hex()
    # Ed25519 is deterministic: re-signing gives the stored signature.
    resigned = make_receipt(
        private_identity(receipt.reader),
        receipt.conversation_id,
        receipt.status,
        reversed(receipt.message_ids),
    )
    assert resigned.to_wire() == wire
    receipt.verify(public_identity(receipt.reader))


@cases(RECEIPTS["invalid"])
def test_receipt_invalid(case: dict[str, Any]) -> None:
    def check() -> None:
        Receipt.from_wire(case["wire"]).verify(public_identity(case["verify_with"]))

    assert outcome(check) == case["expected"], case["note"]
