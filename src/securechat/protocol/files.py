"""Encrypted files (protocol v1, PROTOCOL.md section 12).

A file is encrypted on the sender with a fresh AES-256-GCM key in chunks of exactly
``FILE_CHUNK_BYTES`` plaintext bytes (the last one shorter, possibly empty). Each
chunk's nonce and associated data name the file, the chunk's index and whether it is
the last chunk, so a chunk cannot be reordered, dropped, moved to another file or the
file cut short without a failed tag. The key, name, media type, size and SHA-256 of
the plaintext travel inside a signed, encrypted message payload of type ``file``.

Encryption and decryption work one chunk at a time so neither side ever holds more
than a chunk; :class:`FileDecryptor` checks the order, the sizes and, at the end, the
hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .encoding import b64decode, b64encode, canonical, u64
from .errors import MalformedInput, VerificationFailed
from .identifiers import check_text, new_message_id, parse_message_id
from .labels import FILE_CHUNK
from .primitives import AES_KEY_BYTES, GCM_TAG_BYTES, aes_gcm_decrypt, aes_gcm_encrypt

FILE_CHUNK_BYTES = 1024 * 1024
MAX_FILE_BYTES = 2**53 - 1  # the protocol's bound; servers set a much lower limit
MAX_FILE_NAME_CHARS = 255
MAX_MEDIA_TYPE_CHARS = 255
DEFAULT_MEDIA_TYPE = "application/octet-stream"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Inline previews only for raster formats a browser decodes without running code.
PREVIEWABLE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def chunk_count(size: int) -> int:
    """Number of chunks for a file of ``size`` bytes; an empty file is one empty chunk."""
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
        raise MalformedInput("file size out of range")
    return max(1, -(-size // FILE_CHUNK_BYTES))


def chunk_plaintext_size(size: int, index: int) -> int:
    """Plaintext bytes in chunk ``index`` of a file of ``size`` bytes."""
    count = chunk_count(size)
    if not 0 <= index < count:
        raise MalformedInput("chunk index out of range")
    if index < count - 1:
        return FILE_CHUNK_BYTES
    return size - (count - 1) * FILE_CHUNK_BYTES


def chunk_ciphertext_size(size: int, index: int) -> int:
    return chunk_plaintext_size(size, index) + GCM_TAG_BYTES


def chunk_nonce(index: int, last: bool) -> bytes:
    """u64(index) || u32(last): unique per chunk under a key used for one file only."""
    return u64(index) + struct.pack(">I", 1 if last else 0)


def chunk_aad(file_id: str, index: int, last: bool) -> bytes:
    return canonical(FILE_CHUNK, [file_id, u64(index), u64(1 if last else 0)])


def encrypt_chunk(key: bytes, file_id: str, index: int, last: bool, plaintext: bytes) -> bytes:
    return aes_gcm_encrypt(key, chunk_nonce(index, last), plaintext, chunk_aad(file_id, index, last))


def decrypt_chunk(key: bytes, file_id: str, index: int, last: bool, ciphertext: bytes) -> bytes:
    """Raise VerificationFailed for a chunk from another file, position or length."""
    return aes_gcm_decrypt(key, chunk_nonce(index, last), ciphertext, chunk_aad(file_id, index, last))


@dataclass(frozen=True)
class FileDescriptor:
    """What a ``file`` message payload says about the file; the key is the secret."""

    file_id: str
    key: bytes
    name: str
    media_type: str
    size: int
    sha256: bytes

    @property
    def chunks(self) -> int:
        return chunk_count(self.size)

    def to_payload(self, caption: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": "file",
            "file": {
                "id": self.file_id,
                "key": b64encode(self.key),
                "name": self.name,
                "media_type": self.media_type,
                "size": self.size,
                "sha256": self.sha256.hex(),
            },
        }
        if caption:
            payload["text"] = caption
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FileDescriptor:
        """Parse a received ``file`` payload; any fault is VerificationFailed (7.9 step 9)."""
        try:
            return cls._parse(payload.get("file"))
        except MalformedInput as exc:
            raise VerificationFailed() from exc

    @classmethod
    def _parse(cls, data: object) -> FileDescriptor:
        if not isinstance(data, Mapping):
            raise MalformedInput("file must be an object")
        file_id = parse_message_id(data.get("id"))
        key = b64decode(_str(data, "key"), max_bytes=AES_KEY_BYTES)
        if len(key) != AES_KEY_BYTES:
            raise MalformedInput("file key must be 32 bytes")
        name = check_file_name(_str(data, "name"))
        media_type = check_text(_str(data, "media_type"), field="media_type", max_chars=MAX_MEDIA_TYPE_CHARS)
        size = data.get("size")
        chunk_count(size)  # type: ignore[arg-type]
        digest = _str(data, "sha256")
        if not _SHA256_HEX.fullmatch(digest):
            raise MalformedInput("sha256 must be 64 lower-case hex digits")
        return cls(file_id, key, name, media_type, size, bytes.fromhex(digest))  # type: ignore[arg-type]


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedInput(f"{name} must be a string")
    return value


def check_file_name(name: str) -> str:
    check_text(name, field="name", max_chars=MAX_FILE_NAME_CHARS)
    if not name:
        raise MalformedInput("name must not be empty")
    return name


class FileEncryptor:
    """Encrypt a file of known size chunk by chunk, hashing the plaintext as it goes."""

    def __init__(self, size: int, *, file_id: str | None = None, key: bytes | None = None) -> None:
        self.size = size
        self.chunks = chunk_count(size)
        self.file_id = parse_message_id(file_id) if file_id is not None else new_message_id()
        self.key = key if key is not None else os.urandom(AES_KEY_BYTES)
        self._hash = hashlib.sha256()
        self._next = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt the next chunk, which must have exactly its expected length."""
        index = self._next
        if len(plaintext) != chunk_plaintext_size(self.size, index):
            raise MalformedInput("chunk length does not match the declared size")
        self._hash.update(plaintext)
        self._next += 1
        return encrypt_chunk(self.key, self.file_id, index, index == self.chunks - 1, plaintext)

    def descriptor(self, name: str, media_type: str = DEFAULT_MEDIA_TYPE) -> FileDescriptor:
        """The payload's description, once every chunk has been encrypted."""
        if self._next != self.chunks:
            raise MalformedInput("not every chunk has been encrypted")
        check_text(media_type, field="media_type", max_chars=MAX_MEDIA_TYPE_CHARS)
        return FileDescriptor(
            self.file_id, self.key, check_file_name(name), media_type, self.size, self._hash.digest()
        )


class FileDecryptor:
    """Decrypt a file's chunks in order; :meth:`finish` checks that the hash matches."""

    def __init__(self, descriptor: FileDescriptor) -> None:
        self.descriptor = descriptor
        self._hash = hashlib.sha256()
        self._next = 0

    @property
    def next_index(self) -> int:
        return self._next

    def decrypt(self, ciphertext: bytes) -> bytes:
        d = self.descriptor
        index = self._next
        if index >= d.chunks or len(ciphertext) != chunk_ciphertext_size(d.size, index):
            raise VerificationFailed()
        plaintext = decrypt_chunk(d.key, d.file_id, index, index == d.chunks - 1, ciphertext)
        self._hash.update(plaintext)
        self._next += 1
        return plaintext

    def finish(self) -> None:
        """Raise VerificationFailed unless every chunk was read and the hash matches."""
        if self._next != self.descriptor.chunks or self._hash.digest() != self.descriptor.sha256:
            raise VerificationFailed()
