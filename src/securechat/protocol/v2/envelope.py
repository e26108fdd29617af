"""The fan-out envelope of a direct message (PROTOCOL.md 15.8).

The body is encrypted once under a fresh content key. Each target device (the peer's
devices and the sender's other devices) gets, in its own ratchet message, the content
key and a hash binding the body to the header; the sender device signs the header, which
names every target device and the device-list version it came from.

Opening is split so that the caller can keep its ratchet state until everything has
passed: verify the signature (:func:`verify_envelope`), decrypt the slot with the session
(``ratchet_decrypt`` or ``accept_session`` with ``extra_ad = envelope.binding``), then
:func:`open_key_slot` and :func:`open_body`. Only then does the caller store the new state.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from ..encoding import b64decode, b64encode, canonical, split_canonical, u64
from ..envelope import MAX_CIPHERTEXT_BYTES, pad, unpad
from ..errors import MalformedInput, VerificationFailed
from ..identifiers import (
    ConversationId,
    MessageId,
    Username,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)
from ..primitives import GCM_IV_BYTES, aes_gcm_decrypt, aes_gcm_encrypt, ed25519_verify
from .devices import MAX_DEVICES, Device
from .errors import Refusal
from .labels import BODY_BINDING, KEY_SLOT, MESSAGE_HEADER_V2, MESSAGE_SIGNATURE_V2
from .primitives import KEY_BYTES, SIGNATURE_BYTES, ed25519_sign_raw
from .ratchet import RandomSource, RatchetMessage, SessionState, ratchet_encrypt
from .wire import exact_bytes, integer, members, version_two

MAX_TARGET_ACCOUNTS = 256
_DEVICE_ID = re.compile(r"[0-9a-f]{32}")
_FIELDS = (
    "v",
    "message_id",
    "conversation_id",
    "sender",
    "sender_device",
    "sent_at",
    "targets",
    "iv",
    "body",
    "slots",
    "signature",
)


@dataclass(frozen=True)
class Target:
    """One account of the conversation and the devices of its list that get the key."""

    username: Username
    device_list_version: int
    devices: tuple[str, ...]


@dataclass(frozen=True)
class HeaderV2:
    message_id: MessageId
    conversation_id: ConversationId
    sender: Username
    sender_device: str
    sent_at: int
    targets: tuple[Target, ...]

    def to_bytes(self) -> bytes:
        return self._bytes

    @cached_property
    def _bytes(self) -> bytes:
        # Cached: a receiver needs these bytes four times (signature, binding, slot, body).
        fields: list[bytes | str] = [
            u64(2),
            self.message_id,
            self.conversation_id,
            self.sender,
            self.sender_device,
            u64(self.sent_at),
            u64(len(self.targets)),
        ]
        for target in self.targets:
            fields += [
                target.username,
                u64(target.device_list_version),
                u64(len(target.devices)),
                *target.devices,
            ]
        return canonical(MESSAGE_HEADER_V2, fields)

    def target_devices(self) -> list[tuple[str, str]]:
        return [(target.username, device) for target in self.targets for device in target.devices]


@dataclass(frozen=True)
class Slot:
    username: Username
    device_id: str
    message: RatchetMessage


@dataclass(frozen=True)
class EnvelopeV2:
    header: HeaderV2
    iv: bytes
    body: bytes
    slots: tuple[Slot, ...]
    signature: bytes

    @cached_property
    def binding(self) -> bytes:
        return body_binding(self.header.to_bytes(), self.iv, self.body)

    def slot_for(self, username: str, device_id: str) -> Slot | None:
        for slot in self.slots:
            if slot.username == username and slot.device_id == device_id:
                return slot
        return None

    def to_wire(self) -> dict[str, object]:
        h = self.header
        return {
            "v": 2,
            "message_id": h.message_id,
            "conversation_id": h.conversation_id,
            "sender": h.sender,
            "sender_device": h.sender_device,
            "sent_at": h.sent_at,
            "targets": [
                {
                    "username": t.username,
                    "device_list_version": t.device_list_version,
                    "devices": list(t.devices),
                }
                for t in h.targets
            ],
            "iv": b64encode(self.iv),
            "body": b64encode(self.body),
            "slots": [
                {"username": s.username, "device_id": s.device_id, "message": s.message.to_wire()}
                for s in self.slots
            ],
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_wire(cls, data: object) -> EnvelopeV2:
        """Parse (15.8): the exact member set, sizes, orders, and slots only for targets."""
        obj = members(data, _FIELDS)
        version_two(obj["v"])
        sent_at = integer(obj["sent_at"])
        message_id = parse_message_id(obj["message_id"])
        conversation_id = parse_conversation_id(obj["conversation_id"])
        sender = _normalised(obj["sender"])
        sender_device = _device_id(obj["sender_device"])
        raw_targets = obj["targets"]
        if not isinstance(raw_targets, list) or not 1 <= len(raw_targets) <= MAX_TARGET_ACCOUNTS:
            raise MalformedInput("targets")
        targets = []
        for raw in raw_targets:
            entry = members(raw, ("username", "device_list_version", "devices"))
            devices = entry["devices"]
            if not isinstance(devices, list) or len(devices) > MAX_DEVICES:
                raise MalformedInput("target devices")
            ids = tuple(_device_id(device) for device in devices)
            if not _ascending(ids):
                raise MalformedInput("target devices must be strictly ascending")
            targets.append(
                Target(_normalised(entry["username"]), integer(entry["device_list_version"], minimum=1), ids)
            )
        if not _ascending([target.username for target in targets]):
            raise MalformedInput("targets must be strictly ascending")
        header = HeaderV2(message_id, conversation_id, sender, sender_device, sent_at, tuple(targets))
        target_devices = header.target_devices()
        if (sender, sender_device) in target_devices:
            raise MalformedInput("the sender's own device is not a target")
        iv = exact_bytes(obj["iv"], GCM_IV_BYTES)
        body_text = obj["body"]
        if not isinstance(body_text, str):
            raise MalformedInput("body")
        body = b64decode(body_text, max_bytes=MAX_CIPHERTEXT_BYTES)
        raw_slots = obj["slots"]
        if not isinstance(raw_slots, list) or not 1 <= len(raw_slots) <= len(target_devices):
            raise MalformedInput("slots")
        slots = []
        for raw in raw_slots:
            entry = members(raw, ("username", "device_id", "message"))
            slots.append(
                Slot(
                    _normalised(entry["username"]),
                    _device_id(entry["device_id"]),
                    RatchetMessage.from_wire(entry["message"]),
                )
            )
        keys = [(slot.username, slot.device_id) for slot in slots]
        if not _ascending(keys) or not set(keys) <= set(target_devices):
            raise MalformedInput("slots must be strictly ascending and for target devices")
        signature = exact_bytes(obj["signature"], SIGNATURE_BYTES)
        return cls(header, iv, body, tuple(slots), signature)


_Key = TypeVar("_Key", str, tuple[str, str])


def _ascending(values: Sequence[_Key]) -> bool:
    """Strictly ascending; one value (a direct message's usual case) needs no pairs."""
    return len(values) < 2 or all(a < b for a, b in itertools.pairwise(values))


def _normalised(value: object) -> Username:
    name = parse_username(value)
    if name != value:
        raise MalformedInput("username must be normalised")
    return name


def _device_id(value: object) -> str:
    if not isinstance(value, str) or not _DEVICE_ID.fullmatch(value):
        raise MalformedInput("device id")
    return value


def body_binding(header_bytes: bytes, iv: bytes, body: bytes) -> bytes:
    return hashlib.sha256(canonical(BODY_BINDING, [header_bytes, iv, body])).digest()


def key_slot_plaintext(content_key: bytes, binding: bytes) -> bytes:
    return canonical(KEY_SLOT, [content_key, binding])


def envelope_signature_input(header_bytes: bytes, binding: bytes) -> bytes:
    return canonical(MESSAGE_SIGNATURE_V2, [header_bytes, binding])


def seal_envelope(
    header: HeaderV2,
    payload: bytes,
    content_key: bytes,
    iv: bytes,
    sessions: Mapping[tuple[str, str], SessionState],
    sender_signing_seed: bytes,
    random: RandomSource,
) -> tuple[EnvelopeV2, dict[tuple[str, str], SessionState]]:
    """Seal ``payload`` (encoded payload bytes, 7.2) once and give every target device its
    slot through its session; returns the envelope and the sessions' new states.

    A target device without a session is ``session_unknown``: the caller sets one up first.
    """
    if len(content_key) != KEY_BYTES:
        raise MalformedInput("a content key is 32 bytes")
    header_bytes = header.to_bytes()
    body = aes_gcm_encrypt(content_key, iv, pad(payload), header_bytes)
    binding = body_binding(header_bytes, iv, body)
    new_states: dict[tuple[str, str], SessionState] = {}
    slots = []
    for key in sorted(header.target_devices()):
        state = sessions.get(key)
        if state is None:
            raise Refusal("session_unknown")
        message, new_states[key] = ratchet_encrypt(
            state, key_slot_plaintext(content_key, binding), binding, random
        )
        slots.append(Slot(Username(key[0]), key[1], message))
    signature = ed25519_sign_raw(sender_signing_seed, envelope_signature_input(header_bytes, binding))
    return EnvelopeV2(header, iv, body, tuple(slots), signature), new_states


def verify_envelope(envelope: EnvelopeV2, sender_device: Device) -> None:
    """The sender device's signature (VerificationFailed: ``bad_signature`` in the core).
    ``sender_device`` comes from the sender's accepted device list (``device_not_listed``
    when it is not there is the caller's check)."""
    if envelope.header.sender_device != sender_device.device_id:
        raise VerificationFailed()
    signed = envelope_signature_input(envelope.header.to_bytes(), envelope.binding)
    ed25519_verify(sender_device.verification_key, envelope.signature, signed)


def open_key_slot(envelope: EnvelopeV2, slot_plaintext: bytes) -> bytes:
    """The content key from a decrypted slot, whose binding must be this envelope's."""
    try:
        fields = split_canonical(slot_plaintext, KEY_SLOT)
    except MalformedInput as exc:
        raise VerificationFailed() from exc
    if len(fields) != 2 or len(fields[0]) != KEY_BYTES or fields[1] != envelope.binding:
        raise VerificationFailed()
    return fields[0]


def open_body(envelope: EnvelopeV2, content_key: bytes) -> bytes:
    """The payload bytes: AES-256-GCM with the header as AAD, then unpadding (7.3)."""
    return unpad(aes_gcm_decrypt(content_key, envelope.iv, envelope.body, envelope.header.to_bytes()))
