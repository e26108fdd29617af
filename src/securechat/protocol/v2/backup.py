"""History backups under a recovery key (PROTOCOL.md 15.10, backup).

A 256-bit recovery key, made on the device and never derived from the password, is shown
once as 64 Crockford base32 characters (16 groups of 4): the key's 32 bytes followed by
an 8-byte checksum, so a mistyped key is refused here, before any decryption is tried.
A backup is the account's history archive (canonical JSON, padded) sealed with AES-256-GCM
under a key derived from the recovery key for this account and this backup version, with
the same two values as associated data: a blob moved to another account or presented
under another version does not open.

Pure: the IV and the clock are arguments. Refusals raise :class:`BackupRefused` with a
``reason`` the client shows; a wrong key never yields an archive.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from ..encoding import canonical, u64
from ..errors import ProtocolError, VerificationFailed
from ..primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256
from .labels import HISTORY_BACKUP

RECOVERY_KEY_BYTES = 32
CHECKSUM_BYTES = 8
RECOVERY_KEY_CHARACTERS = 64  # (32 + 8) bytes * 8 / 5 bits
GROUP = 4
IV_BYTES = 12
TAG_BYTES = 16
# The archive's padded plaintext is at least this long, so a short history's size says
# nothing about how short it is.
MIN_PADDED_BYTES = 4096
# A client refuses to seal or open more than this (the server's own cap,
# HISTORY_BACKUP_MAX_BYTES, is usually lower).
MAX_SEALED_BYTES = 256 * 1024 * 1024
ARCHIVE_FORMAT = "securechat/v2/history-archive"
MAX_SAFE_INTEGER = 2**53

# Crockford's base32: digits and upper-case letters without I, L, O, U. Reading is
# case-insensitive and takes O as 0 and I, L as 1, the usual misreadings.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: index for index, char in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})

BackupReason = Literal[
    "recovery_key_malformed",  # wrong length or a character outside the alphabet
    "recovery_key_checksum",  # well-formed, but the checksum does not match: a typo
    "backup_failed",  # the blob does not open under this key, account and version
    "backup_malformed",  # it opened, but is not an archive of this account and version
    "backup_rollback",  # a version below one this client has already seen
    "backup_too_large",
]


class BackupRefused(ProtocolError):
    def __init__(self, reason: BackupReason) -> None:
        super().__init__(reason)
        self.reason: BackupReason = reason


def _checksum(key: bytes) -> bytes:
    return hashlib.sha256(canonical(HISTORY_BACKUP, ["recovery-key-checksum", key])).digest()[:CHECKSUM_BYTES]


def format_recovery_key(key: bytes) -> str:
    """The 64-character form shown to the user, in groups of 4 separated by spaces."""
    if len(key) != RECOVERY_KEY_BYTES:
        raise BackupRefused("recovery_key_malformed")
    number = int.from_bytes(key + _checksum(key), "big")
    chars = [ALPHABET[(number >> (5 * (RECOVERY_KEY_CHARACTERS - 1 - i))) & 31] for i in range(64)]
    text = "".join(chars)
    return " ".join(text[i : i + GROUP] for i in range(0, RECOVERY_KEY_CHARACTERS, GROUP))


def parse_recovery_key(text: str) -> bytes:
    """The key from what the user typed: spaces and hyphens ignored, any case; refused
    with ``recovery_key_malformed`` or, for a typo, ``recovery_key_checksum``."""
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != RECOVERY_KEY_CHARACTERS or any(char not in _DECODE for char in compact):
        raise BackupRefused("recovery_key_malformed")
    number = 0
    for char in compact:
        number = (number << 5) | _DECODE[char]
    raw = number.to_bytes(RECOVERY_KEY_BYTES + CHECKSUM_BYTES, "big")
    key, check = raw[:RECOVERY_KEY_BYTES], raw[RECOVERY_KEY_BYTES:]
    if check != _checksum(key):
        raise BackupRefused("recovery_key_checksum")
    return key


def backup_aad(username: str, version: int) -> bytes:
    return canonical(HISTORY_BACKUP, [username, u64(version)])


def backup_key(recovery_key: bytes, username: str, version: int) -> bytes:
    """HKDF-SHA256(recovery_key, salt = 32 zero bytes, info = the AAD): one key per
    account and version, so no two backups ever share a key, whatever their IVs."""
    if len(recovery_key) != RECOVERY_KEY_BYTES:
        raise BackupRefused("recovery_key_malformed")
    return hkdf_sha256(
        recovery_key, salt=bytes(32), info=backup_aad(username, version), length=RECOVERY_KEY_BYTES
    )


@dataclass(frozen=True)
class BackupMessage:
    """One verified message of the history, as the client shows it."""

    message_id: str
    conversation_id: str
    sender: str
    peer: str
    sent_at: int
    server_ts: int
    text: str

    def to_json(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "sender": self.sender,
            "peer": self.peer,
            "sent_at": self.sent_at,
            "server_ts": self.server_ts,
            "text": self.text,
        }


@dataclass(frozen=True)
class Archive:
    username: str
    version: int
    created_at: int
    messages: tuple[BackupMessage, ...]


def padded_length(length: int) -> int:
    """Padmé (Nikitin et al., 2019): at most 12 % more, and the size says only about
    log log of the length; never below MIN_PADDED_BYTES."""
    length = max(length, MIN_PADDED_BYTES)
    exponent = length.bit_length() - 1
    bits = exponent.bit_length()
    mask = (1 << (exponent - bits)) - 1
    return (length + mask) & ~mask


def encode_archive(archive: Archive) -> bytes:
    """``u64(len(json)) ‖ json ‖ zeros`` to the padded length; the JSON has its keys in
    the order written here, no spaces, and non-ASCII text as UTF-8."""
    document = {
        "format": ARCHIVE_FORMAT,
        "username": archive.username,
        "version": archive.version,
        "created_at": archive.created_at,
        "messages": [message.to_json() for message in archive.messages],
    }
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    total = padded_length(8 + len(data))
    return u64(len(data)) + data + bytes(total - 8 - len(data))


def seal_backup(recovery_key: bytes, archive: Archive, iv: bytes) -> bytes:
    """``iv ‖ AES-256-GCM(backup_key, iv, padded archive, aad)``; the IV must be fresh."""
    if len(iv) != IV_BYTES:
        raise BackupRefused("backup_malformed")
    plaintext = encode_archive(archive)
    if len(plaintext) + IV_BYTES + TAG_BYTES > MAX_SEALED_BYTES:
        raise BackupRefused("backup_too_large")
    key = backup_key(recovery_key, archive.username, archive.version)
    return iv + aes_gcm_encrypt(key, iv, plaintext, backup_aad(archive.username, archive.version))


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise BackupRefused("backup_malformed")
    return value


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_SAFE_INTEGER:
        raise BackupRefused("backup_malformed")
    return value


def _message(value: object) -> BackupMessage:
    if not isinstance(value, dict) or set(value) != {
        "message_id",
        "conversation_id",
        "sender",
        "peer",
        "sent_at",
        "server_ts",
        "text",
    }:
        raise BackupRefused("backup_malformed")
    return BackupMessage(
        _string(value["message_id"]),
        _string(value["conversation_id"]),
        _string(value["sender"]),
        _string(value["peer"]),
        _integer(value["sent_at"]),
        _integer(value["server_ts"]),
        _string(value["text"]),
    )


def open_backup(
    recovery_key: bytes, username: str, version: int, sealed: bytes, *, highest_seen: int = 0
) -> Archive:
    """The archive in ``sealed``, which the server says is ``username``'s backup
    ``version``. Refused below ``highest_seen`` (a rollback), if it does not open under
    this key, account and version, or if what opens is not that account's archive of
    that version."""
    if version < highest_seen:
        raise BackupRefused("backup_rollback")
    if len(sealed) > MAX_SEALED_BYTES:
        raise BackupRefused("backup_too_large")
    if len(sealed) < IV_BYTES + TAG_BYTES:
        raise BackupRefused("backup_failed")
    key = backup_key(recovery_key, username, version)
    try:
        plaintext = aes_gcm_decrypt(key, sealed[:IV_BYTES], sealed[IV_BYTES:], backup_aad(username, version))
    except VerificationFailed as exc:
        raise BackupRefused("backup_failed") from exc
    return decode_archive(plaintext, username, version)


def decode_archive(plaintext: bytes, username: str, version: int) -> Archive:
    """The archive in a padded plaintext, which must be ``username``'s of ``version``;
    else ``backup_malformed`` (also read by a history hand-over, 15.10.2)."""
    if len(plaintext) < 8:
        raise BackupRefused("backup_malformed")
    length = int.from_bytes(plaintext[:8], "big")
    if length > len(plaintext) - 8 or any(plaintext[8 + length :]):
        raise BackupRefused("backup_malformed")
    try:
        document = json.loads(plaintext[8 : 8 + length].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupRefused("backup_malformed") from exc
    if not isinstance(document, dict) or set(document) != {
        "format",
        "username",
        "version",
        "created_at",
        "messages",
    }:
        raise BackupRefused("backup_malformed")
    if document["format"] != ARCHIVE_FORMAT or document["username"] != username:
        raise BackupRefused("backup_malformed")
    if _integer(document["version"]) != version or not isinstance(document["messages"], list):
        raise BackupRefused("backup_malformed")
    messages = tuple(_message(item) for item in document["messages"])
    return Archive(username, version, _integer(document["created_at"]), messages)
