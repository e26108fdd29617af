"""Small strict readers for v2 wire objects (PROTOCOL.md 2.4, 2.5)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache

from ..encoding import b64decode
from ..errors import MalformedInput, UnsupportedVersion

MAX_SAFE_INTEGER = 2**53


def members(data: object, required: Collection[str], optional: Collection[str] = ()) -> Mapping[str, object]:
    """An object whose member set is ``required`` plus any of ``optional``."""
    # A dict first: JSON objects are dicts, and the abstract check is slower.
    if type(data) is not dict and not isinstance(data, Mapping):
        raise MalformedInput("expected an object")
    keys = data.keys()
    need = _names(required)
    # The common case in one set comparison (every envelope parses four objects).
    if keys == need:
        return data
    if not need <= keys or not keys <= need | _names(optional):
        raise MalformedInput("unexpected member set")
    return data


def _names(names: Collection[str]) -> frozenset[str]:
    return _tuple_names(names) if isinstance(names, tuple) else frozenset(names)


@lru_cache(maxsize=256)
def _tuple_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


def integer(value: object, *, below: int = MAX_SAFE_INTEGER, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < below:
        raise MalformedInput("integer out of range")
    return value


def exact_bytes(value: object, size: int) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput("expected a base64 string")
    raw = b64decode(value, max_bytes=size)
    if len(raw) != size:
        raise MalformedInput("wrong length")
    return raw


def version_two(value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedInput("v must be an integer")
    if value != 2:
        raise UnsupportedVersion("only version 2")
