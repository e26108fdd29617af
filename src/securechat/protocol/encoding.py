"""Strict base64 and the canonical byte strings that get signed or authenticated.

Canonical bytes (PROTOCOL.md, "Canonical encoding"): a sequence of fields, each
written as a 4-byte big-endian length followed by the field's bytes. The first field
is always a context label such as ``securechat/v1/message-header``, so a byte string
made for one purpose can never verify for another, and the version is inside it.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable

from .errors import MalformedInput

_MAX_FIELD = 0xFFFFFFFF


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as PROTOCOL.md specifies."""
    return base64.b64encode(data).decode("ascii")


# The last character before padding may only carry zero bits past the data: after "=",
# the character's two low bits; after "==", its four low bits.
_LAST_BEFORE_ONE_PAD = frozenset("AEIMQUYcgkosw048")
_LAST_BEFORE_TWO_PADS = frozenset("AQgw")


def b64decode(text: str, *, max_bytes: int | None = None) -> bytes:
    """Decode standard padded base64 strictly.

    Rejects characters outside the alphabet, missing or extra padding, whitespace,
    and non-canonical encodings (non-zero trailing bits), so one value has one form.
    """
    if not isinstance(text, str):
        raise MalformedInput("base64 value must be a string")
    if max_bytes is not None and len(text) > 4 * ((max_bytes + 2) // 3):
        raise MalformedInput("base64 value too long")
    if len(text) % 4 != 0:
        raise MalformedInput("base64 length must be a multiple of 4")
    try:
        # Strict mode refuses characters outside the alphabet and anything after or
        # between padding; it does not look at the unused bits checked below.
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: a non-ASCII character
        raise MalformedInput("invalid base64") from exc
    if text.endswith("=="):
        if text[-3] not in _LAST_BEFORE_TWO_PADS:
            raise MalformedInput("non-canonical base64")
    elif text.endswith("=") and text[-2] not in _LAST_BEFORE_ONE_PAD:
        raise MalformedInput("non-canonical base64")
    # The length check above works in whole 4-character groups, so it lets through
    # up to two bytes more than max_bytes; this makes the limit exact.
    if max_bytes is not None and len(raw) > max_bytes:
        raise MalformedInput("base64 value too long")
    return raw


def u64(value: int) -> bytes:
    """An unsigned integer as 8 big-endian bytes."""
    if not 0 <= value < 2**64:
        raise MalformedInput("integer out of range")
    return struct.pack(">Q", value)


def canonical(label: str, fields: Iterable[bytes | str]) -> bytes:
    """Length-prefixed concatenation of a context label and fields.

    Strings are encoded as UTF-8. Every field, the label included, is preceded by
    its length as a 4-byte big-endian integer.
    """
    parts: list[bytes] = []
    for item in (label, *fields):
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        if len(data) > _MAX_FIELD:
            raise MalformedInput("field too long")
        parts.append(struct.pack(">I", len(data)))
        parts.append(data)
    return b"".join(parts)


def split_canonical(data: bytes, label: str) -> list[bytes]:
    """Parse bytes made by :func:`canonical`, checking the label; return the fields."""
    fields: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise MalformedInput("truncated length prefix")
        (length,) = struct.unpack_from(">I", data, offset)
        offset += 4
        if offset + length > len(data):
            raise MalformedInput("truncated field")
        fields.append(data[offset : offset + length])
        offset += length
    if not fields or fields[0] != label.encode("utf-8"):
        raise MalformedInput("unexpected context label")
    return fields[1:]
