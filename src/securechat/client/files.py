"""Encrypted file transfer: stream a file up or down one chunk at a time.

Neither direction holds more than one chunk in memory. A download is written to a
temporary file beside its destination and renamed only after the last chunk and the
SHA-256 of the whole file have been checked, so a corrupt or cut-short file never
appears under its name.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from ..protocol import errors as protocol_errors
from ..protocol.files import (
    DEFAULT_MEDIA_TYPE,
    FILE_CHUNK_BYTES,
    FileDecryptor,
    FileDescriptor,
    FileEncryptor,
    chunk_plaintext_size,
)
from .api import ApiClient
from .errors import ApiError, FileCorrupt

Progress = Callable[[int, int], None]
"""Called with (bytes done, total bytes) after each chunk."""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def media_type_for(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or DEFAULT_MEDIA_TYPE


async def upload_file(
    api: ApiClient, conversation_id: str, path: Path, progress: Progress | None = None
) -> FileDescriptor:
    """Encrypt and upload ``path`` for a conversation; the descriptor to send in a message."""
    size = path.stat().st_size
    encryptor = FileEncryptor(size)
    await api.create_upload(encryptor.file_id, conversation_id, size)
    done = 0
    with path.open("rb") as handle:
        for index in range(encryptor.chunks):
            plaintext = handle.read(chunk_plaintext_size(size, index))
            if len(plaintext) != chunk_plaintext_size(size, index):
                raise FileCorrupt(f"{path} changed while it was being sent")
            await api.put_chunk(encryptor.file_id, index, encryptor.encrypt(plaintext))
            done += len(plaintext)
            if progress:
                progress(done, size)
        if handle.read(1):
            raise FileCorrupt(f"{path} changed while it was being sent")
    await api.complete_upload(encryptor.file_id)
    return encryptor.descriptor(path.name or "file", media_type_for(path))


def safe_file_name(name: str, fallback: str) -> str:
    """A name to save under: no directories, no control characters, no leading dot."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip().lstrip(".")
    cleaned = cleaned[:200]
    return cleaned if cleaned and cleaned not in {".", ".."} else fallback


def unused_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (1)``, ``name (2)``... if that exists."""
    candidate = directory / name
    stem, suffix = os.path.splitext(name)
    counter = 1
    while candidate.exists():
        candidate = directory / f"{stem} ({counter}){suffix}"
        counter += 1
    return candidate


async def download_file(
    api: ApiClient, descriptor: FileDescriptor, destination: Path, progress: Progress | None = None
) -> Path:
    """Download, decrypt and check a file; write it to ``destination`` only if it is intact."""
    decryptor = FileDecryptor(descriptor)
    partial = destination.with_name(f".{destination.name}.part")
    done = 0
    try:
        with open(partial, "wb", opener=_private_opener) as handle:
            for index in range(descriptor.chunks):
                try:
                    chunk = await api.get_chunk(descriptor.file_id, index)
                    plaintext = decryptor.decrypt(chunk)
                except protocol_errors.VerificationFailed as exc:
                    raise FileCorrupt(f"chunk {index} of {descriptor.name!r} failed its check") from exc
                except ApiError as exc:
                    if exc.status == 404:
                        raise FileCorrupt(f"chunk {index} of {descriptor.name!r} is missing") from exc
                    raise
                handle.write(plaintext)
                done += len(plaintext)
                if progress:
                    progress(done, descriptor.size)
        try:
            decryptor.finish()
        except protocol_errors.VerificationFailed as exc:
            raise FileCorrupt(f"{descriptor.name!r} does not match its SHA-256") from exc
        os.replace(partial, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return destination


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


__all__ = ["FILE_CHUNK_BYTES", "Progress", "download_file", "safe_file_name", "unused_path", "upload_file"]
