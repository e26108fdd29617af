"""Linking a device: its link code and the hand-over archive (PROTOCOL.md 15.10.2).

A new device shows a *link code*: 104 bits of SHA-256 over the account and the device's
signing and DH keys, with a 16-bit checksum, as 24 Crockford base32 characters in groups
of 4. The user types it on an old device, which hands its history only to the device in
its accepted list whose code matches, so a device certified by someone else who knows the
password (or keys swapped in a list) never matches the code on the user's own screen.

The archive is 15.10.1's, with version 0, sent as an encrypted file (12.2); reading it
back checks it is this account's. Refusals raise :class:`LinkRefused`.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from ..encoding import canonical
from ..errors import ProtocolError
from .backup import ALPHABET, Archive, BackupRefused, decode_archive, encode_archive
from .devices import Device
from .labels import HISTORY_LINK

VALUE_BYTES = 13  # 104 bits: a second preimage of the code is out of reach
CHECK_BYTES = 2
CODE_CHARACTERS = 24  # (13 + 2) bytes * 8 / 5 bits
GROUP = 4
# A hand-over archive is no backup version (15.10.1's version counts backups).
LINK_ARCHIVE_VERSION = 0
# The most a device downloads for a hand-over (15.10.1's cap on a backup).
MAX_LINK_ARCHIVE_BYTES = 256 * 1024 * 1024

_DECODE = {char: index for index, char in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})

LinkCodeReason = Literal["link_code_malformed", "link_code_checksum", "link_archive_malformed"]


class LinkRefused(ProtocolError):
    def __init__(self, reason: LinkCodeReason) -> None:
        super().__init__(reason)
        self.reason: LinkCodeReason = reason


def link_value(username: str, device: Device) -> bytes:
    """The 13 bytes a device's code stands for: its account, id, signing and DH keys."""
    data = canonical(
        HISTORY_LINK, ["link-code", username, device.device_id, device.signing_key, device.dh_key]
    )
    return hashlib.sha256(data).digest()[:VALUE_BYTES]


def _check(value: bytes) -> bytes:
    return hashlib.sha256(canonical(HISTORY_LINK, ["link-code-checksum", value])).digest()[:CHECK_BYTES]


def format_link_code(value: bytes) -> str:
    """The 24 characters shown, in 6 groups of 4 joined by hyphens."""
    if len(value) != VALUE_BYTES:
        raise LinkRefused("link_code_malformed")
    number = int.from_bytes(value + _check(value), "big")
    text = "".join(ALPHABET[(number >> (5 * (CODE_CHARACTERS - 1 - i))) & 31] for i in range(CODE_CHARACTERS))
    return "-".join(text[i : i + GROUP] for i in range(0, CODE_CHARACTERS, GROUP))


def link_code(username: str, device: Device) -> str:
    return format_link_code(link_value(username, device))


def parse_link_code(text: str) -> bytes:
    """The 13-byte value from what the user typed (spaces and hyphens ignored, any case,
    O as 0, I and L as 1); ``link_code_malformed`` or, for a typo, ``link_code_checksum``."""
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != CODE_CHARACTERS or any(char not in _DECODE for char in compact):
        raise LinkRefused("link_code_malformed")
    number = 0
    for char in compact:
        number = (number << 5) | _DECODE[char]
    raw = number.to_bytes(VALUE_BYTES + CHECK_BYTES, "big")
    value, check = raw[:VALUE_BYTES], raw[VALUE_BYTES:]
    if check != _check(value):
        raise LinkRefused("link_code_checksum")
    return value


def encode_link_archive(archive: Archive) -> bytes:
    """The padded archive (15.10.1) that is encrypted as a file; its version must be 0."""
    if archive.version != LINK_ARCHIVE_VERSION:
        raise LinkRefused("link_archive_malformed")
    return encode_archive(archive)


def open_link_archive(plaintext: bytes, username: str) -> Archive:
    """The archive in a downloaded, checked file: ``username``'s, version 0, else
    ``link_archive_malformed``."""
    try:
        return decode_archive(plaintext, username, LINK_ARCHIVE_VERSION)
    except BackupRefused as exc:
        raise LinkRefused("link_archive_malformed") from exc
