"""Message envelopes (protocol v1): seal on the sender, open on each recipient.

An envelope is a header (version, message id, conversation id, sender, client time),
an AES-256-GCM ciphertext of the padded payload under a fresh message key, that key
wrapped with RSA-OAEP for every member (sender included), and an Ed25519 signature
over all of it. See PROTOCOL.md for the byte-exact definitions.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .encoding import b64decode, b64encode, canonical, u64
from .errors import MalformedInput, UnsupportedVersion, VerificationFailed
from .files import FileDescriptor
from .identifiers import (
    ConversationId,
    MessageId,
    Username,
    check_text,
    new_message_id,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)
from .keys import PrivateIdentity, PublicIdentity
from .labels import MESSAGE_HEADER, MESSAGE_SIGNATURE, WRAPPED_KEY_LABEL
from .primitives import (
    AES_KEY_BYTES,
    GCM_IV_BYTES,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    ed25519_sign,
    ed25519_verify,
    load_ed25519_public_key,
    load_rsa_public_key,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
)

ENVELOPE_VERSION = 1
MAX_MEMBERS = 256
MAX_PAYLOAD_BYTES = 64 * 1024
MIN_PADDED_BYTES = 256
MAX_PADDED_BYTES = 128 * 1024
MAX_CIPHERTEXT_BYTES = MAX_PADDED_BYTES + 16
MAX_WRAPPED_KEY_BYTES = 512  # RSA-4096
MAX_TEXT_CHARS = 16_000
MAX_GROUP_NAME_CHARS = 100
ENVELOPE_FIELDS = frozenset(
    {"v", "message_id", "conversation_id", "sender", "sent_at", "iv", "ciphertext", "keys", "signature"}
)


@dataclass(frozen=True)
class Header:
    version: int
    message_id: MessageId
    conversation_id: ConversationId
    sender: Username
    sent_at: int  # client clock, milliseconds since the Unix epoch

    def canonical(self) -> bytes:
        """The header's canonical bytes: the AEAD's associated data."""
        return canonical(
            MESSAGE_HEADER,
            [u64(self.version), self.message_id, self.conversation_id, self.sender, u64(self.sent_at)],
        )


@dataclass(frozen=True)
class WrappedKey:
    recipient: Username
    wrapped_key: bytes


@dataclass(frozen=True)
class Envelope:
    header: Header
    iv: bytes
    ciphertext: bytes
    keys: tuple[WrappedKey, ...]
    signature: bytes
    # The compact JSON text, when the envelope was parsed from the wire (see to_json).
    # Not an init field, so a copy made with dataclasses.replace never inherits it.
    wire_json: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def recipients(self) -> tuple[Username, ...]:
        return tuple(k.recipient for k in self.keys)

    def signed_bytes(self) -> bytes:
        return signature_input(self.header, self.iv, self.ciphertext, self.keys)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": self.header.version,
            "message_id": self.header.message_id,
            "conversation_id": self.header.conversation_id,
            "sender": self.header.sender,
            "sent_at": self.header.sent_at,
            "iv": b64encode(self.iv),
            "ciphertext": b64encode(self.ciphertext),
            "keys": [{"recipient": k.recipient, "wrapped_key": b64encode(k.wrapped_key)} for k in self.keys],
            "signature": b64encode(self.signature),
        }

    def to_json(self) -> str:
        """The wire form as compact JSON, fields in protocol order.

        Equal to ``json.dumps(self.to_wire(), separators=(",", ":"))``, built directly:
        every value is an integer, a validated identifier or base64, so nothing needs
        escaping. The server stores and relays this text. An envelope parsed by
        ``from_wire`` already has it: strict base64 has one form, so the strings it
        was parsed from are the ones encoding would give.
        """
        if self.wire_json is not None:
            return self.wire_json
        return _envelope_json(
            self.header,
            b64encode(self.iv),
            b64encode(self.ciphertext),
            [(k.recipient, b64encode(k.wrapped_key)) for k in self.keys],
            b64encode(self.signature),
        )

    @classmethod
    def from_wire(cls, data: object) -> Envelope:
        """Parse strictly: exact fields, strict base64, sizes, sorted unique recipients."""
        if not isinstance(data, dict):
            raise MalformedInput("envelope must be an object")
        if set(data) != ENVELOPE_FIELDS:
            raise MalformedInput("envelope fields do not match protocol v1")
        version = data["v"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedInput("v must be an integer")
        if version != ENVELOPE_VERSION:
            raise UnsupportedVersion("unsupported envelope version")
        sent_at = data["sent_at"]
        if not isinstance(sent_at, int) or isinstance(sent_at, bool) or not 0 <= sent_at < 2**53:
            raise MalformedInput("sent_at must be a non-negative integer (ms)")
        header = Header(
            version=version,
            message_id=parse_message_id(data["message_id"]),
            conversation_id=parse_conversation_id(data["conversation_id"]),
            sender=parse_username(data["sender"]),
            sent_at=sent_at,
        )
        if header.sender != data["sender"]:
            raise MalformedInput("sender must be in normalised form")
        iv_text = _string(data, "iv")
        iv = b64decode(iv_text, max_bytes=GCM_IV_BYTES)
        if len(iv) != GCM_IV_BYTES:
            raise MalformedInput("iv must be 12 bytes")
        ciphertext_text = _string(data, "ciphertext")
        ciphertext = b64decode(ciphertext_text, max_bytes=MAX_CIPHERTEXT_BYTES)
        signature_text = _string(data, "signature")
        signature = b64decode(signature_text, max_bytes=64)
        if len(signature) != 64:
            raise MalformedInput("signature must be 64 bytes")
        raw_keys = data["keys"]
        if not isinstance(raw_keys, list) or not 1 <= len(raw_keys) <= MAX_MEMBERS:
            raise MalformedInput(f"keys must list 1 to {MAX_MEMBERS} recipients")
        keys: list[WrappedKey] = []
        key_texts: list[tuple[str, str]] = []
        for item in raw_keys:
            if not isinstance(item, dict) or set(item) != {"recipient", "wrapped_key"}:
                raise MalformedInput("each key must have exactly recipient and wrapped_key")
            recipient = parse_username(item["recipient"])
            if recipient != item["recipient"]:
                raise MalformedInput("recipient must be in normalised form")
            wrapped_text = _string(item, "wrapped_key")
            wrapped = b64decode(wrapped_text, max_bytes=MAX_WRAPPED_KEY_BYTES)
            keys.append(WrappedKey(recipient, wrapped))
            key_texts.append((recipient, wrapped_text))
        names = [k.recipient for k in keys]
        if names != sorted(set(names)):
            raise MalformedInput("keys must be sorted by recipient, without duplicates")
        envelope = cls(header, iv, ciphertext, tuple(keys), signature)
        text = _envelope_json(header, iv_text, ciphertext_text, key_texts, signature_text)
        object.__setattr__(envelope, "wire_json", text)
        return envelope


def _envelope_json(
    header: Header, iv: str, ciphertext: str, keys: list[tuple[str, str]], signature: str
) -> str:
    """Compact JSON of an envelope from its fields, base64 already applied."""
    key_list = ",".join(f'{{"recipient":"{name}","wrapped_key":"{wrapped}"}}' for name, wrapped in keys)
    return (
        f'{{"v":{header.version},"message_id":"{header.message_id}",'
        f'"conversation_id":"{header.conversation_id}","sender":"{header.sender}",'
        f'"sent_at":{header.sent_at},"iv":"{iv}",'
        f'"ciphertext":"{ciphertext}","keys":[{key_list}],'
        f'"signature":"{signature}"}}'
    )


def _string(data: Mapping[str, object], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise MalformedInput(f"{name} must be a string")
    return value


def wrapped_key_label(message_id: str, recipient: str) -> bytes:
    """The OAEP label: a wrapped key only unwraps for this message and this recipient."""
    return canonical(WRAPPED_KEY_LABEL, [message_id, recipient])


def signature_input(header: Header, iv: bytes, ciphertext: bytes, keys: tuple[WrappedKey, ...]) -> bytes:
    fields: list[bytes | str] = [header.canonical(), iv, ciphertext, u64(len(keys))]
    for key in sorted(keys, key=lambda k: k.recipient):
        fields.extend((key.recipient, key.wrapped_key))
    return canonical(MESSAGE_SIGNATURE, fields)


def check_group_name(name: object) -> str:
    """A group's name (PROTOCOL.md 13.5): 1 to 100 code points, no NUL, valid Unicode."""
    if not isinstance(name, str) or not name:
        raise MalformedInput("a group name is a non-empty string")
    return check_text(name, field="name", max_chars=MAX_GROUP_NAME_CHARS)


def padded_size(length: int) -> int:
    """Smallest power of two >= length, at least 256 bytes: lengths leak only a bucket."""
    size = MIN_PADDED_BYTES
    while size < length:
        size *= 2
    return size


def pad(payload: bytes) -> bytes:
    framed = struct.pack(">I", len(payload)) + payload
    return framed + bytes(padded_size(len(framed)) - len(framed))


def unpad(padded: bytes) -> bytes:
    if len(padded) < 4 or len(padded) != padded_size(len(padded)):
        raise VerificationFailed()
    (length,) = struct.unpack_from(">I", padded)
    if 4 + length > len(padded) or any(padded[4 + length :]):
        raise VerificationFailed()
    return padded[4 : 4 + length]


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Payload JSON: compact UTF-8. Its exact bytes do not matter; it is only encrypted."""
    if not isinstance(payload.get("type"), str):
        raise MalformedInput("payload needs a type")
    text = payload.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise MalformedInput("payload text must be a string")
        check_text(text, field="text", max_chars=MAX_TEXT_CHARS)
    if payload["type"] == "file":
        FileDescriptor._parse(payload.get("file"))
    if payload["type"] == "group_info":
        check_group_name(payload.get("name"))
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and JavaScript cannot parse them.
        encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8"
        )
    except UnicodeEncodeError as exc:
        # A lone surrogate in any string field (check_text covers only "text").
        raise MalformedInput("payload is not valid Unicode") from exc
    except ValueError as exc:
        raise MalformedInput("payload contains a number JSON cannot represent") from exc
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise MalformedInput("payload too large")
    return encoded


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_payload(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # RecursionError: a hostile sender can nest arrays deeply enough to exhaust
        # the JSON parser's recursion limit; that must look like any other failure.
        raise VerificationFailed() from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise VerificationFailed()
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        raise VerificationFailed()
    if payload["type"] == "file":
        FileDescriptor.from_payload(payload)
    if payload["type"] == "group_info":
        try:
            check_group_name(payload.get("name"))
        except MalformedInput as exc:
            raise VerificationFailed() from exc
    return payload


def seal_message(
    sender: PrivateIdentity,
    conversation_id: ConversationId,
    recipients: Mapping[Username, PublicIdentity],
    payload: Mapping[str, Any],
    *,
    message_id: MessageId | None = None,
    sent_at: int | None = None,
    message_key: bytes | None = None,
    iv: bytes | None = None,
) -> Envelope:
    """Encrypt a payload for every member of a conversation (the sender included).

    ``message_id``, ``sent_at``, ``message_key`` and ``iv`` are injectable so that test
    vectors are deterministic; in use they are fresh and random.
    """
    if sender.username not in recipients:
        raise MalformedInput("the sender must be among the recipients")
    if len(recipients) > MAX_MEMBERS:
        raise MalformedInput("too many recipients")
    header = Header(
        version=ENVELOPE_VERSION,
        message_id=message_id or new_message_id(),
        conversation_id=conversation_id,
        sender=sender.username,
        sent_at=sent_at if sent_at is not None else int(time.time() * 1000),
    )
    message_key = message_key if message_key is not None else os.urandom(AES_KEY_BYTES)
    iv = iv if iv is not None else os.urandom(GCM_IV_BYTES)
    ciphertext = aes_gcm_encrypt(message_key, iv, pad(encode_payload(payload)), header.canonical())
    keys = tuple(
        WrappedKey(
            name,
            rsa_oaep_encrypt(
                load_rsa_public_key(recipients[name].encryption_key),
                message_key,
                wrapped_key_label(header.message_id, name),
            ),
        )
        for name in sorted(recipients)
    )
    signature = ed25519_sign(sender.signing_private, signature_input(header, iv, ciphertext, keys))
    return Envelope(header, iv, ciphertext, keys, signature)


@dataclass(frozen=True)
class OpenedMessage:
    header: Header
    payload: dict[str, Any]


def verify_signature(envelope: Envelope, sender_identity: PublicIdentity) -> None:
    """7.9 step 3: the signature with the sender's pinned keys; VerificationFailed if not."""
    try:
        signing_key = load_ed25519_public_key(sender_identity.signing_key)
    except MalformedInput as exc:
        raise VerificationFailed() from exc
    if sender_identity.username != envelope.header.sender:
        raise VerificationFailed()
    ed25519_verify(signing_key, envelope.signature, envelope.signed_bytes())


def decrypt_padded_payload(envelope: Envelope, me: PrivateIdentity) -> bytes:
    """7.9 steps 6-8: unwrap my message key, decrypt and unpad; the payload's bytes.

    VerificationFailed if ``me`` has not exactly one wrapped key, or any step fails.
    """
    header = envelope.header
    mine = [k for k in envelope.keys if k.recipient == me.username]
    if len(mine) != 1:
        raise VerificationFailed()
    message_key = rsa_oaep_decrypt(
        me.encryption_private, mine[0].wrapped_key, wrapped_key_label(header.message_id, me.username)
    )
    if len(message_key) != AES_KEY_BYTES:
        raise VerificationFailed()
    return unpad(aes_gcm_decrypt(message_key, envelope.iv, envelope.ciphertext, header.canonical()))


def open_message(
    envelope: Envelope,
    *,
    me: PrivateIdentity,
    sender_identity: PublicIdentity,
    conversation_id: ConversationId,
    members: frozenset[Username] | set[Username],
) -> OpenedMessage:
    """Verify and decrypt an envelope; raise VerificationFailed on any failed check.

    ``sender_identity`` must be the sender's pinned keys, and ``conversation_id`` and
    ``members`` what this client knows of the conversation, never the envelope's word.
    The client's decisions (PROTOCOL.md 14.1) run the same steps one by one, to say which
    failed; this is the all-or-nothing form.
    """
    header = envelope.header
    verify_signature(envelope, sender_identity)
    if header.conversation_id != conversation_id:
        raise VerificationFailed()
    if set(envelope.recipients) != set(members) or header.sender not in members:
        raise VerificationFailed()
    return OpenedMessage(header=header, payload=decode_payload(decrypt_padded_payload(envelope, me)))
