"""Strict base64 and canonical (length-prefixed) byte strings."""

from __future__ import annotations

import base64
import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.protocol import encoding
from securechat.protocol.encoding import b64decode, b64encode, canonical, split_canonical, u64
from securechat.protocol.errors import MalformedInput

BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

fields = st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=20)), max_size=6)


# --- base64 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", b""), ("QQ==", b"A"), ("QUI=", b"AB"), ("QUJD", b"ABC"), ("+/8=", b"\xfb\xff")],
)
def test_b64decode_accepts_standard_padded_base64(text: str, expected: bytes) -> None:
    assert b64decode(text) == expected
    assert b64encode(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("QUJ!", id="bad-char"),
        pytest.param("-_8=", id="url-safe-alphabet"),
        pytest.param("QUJ€", id="non-ascii"),
        pytest.param("QUJD\n", id="trailing-newline"),
        pytest.param(" QUJ", id="leading-space"),
        pytest.param("QU JD", id="inner-space"),
        pytest.param("QU\tJ", id="inner-tab"),
        pytest.param("QQ", id="missing-padding-2"),
        pytest.param("QUI", id="missing-padding-1"),
        pytest.param("Q===", id="too-much-padding"),
        pytest.param("====", id="only-padding"),
        pytest.param("QQ=A", id="padding-in-middle"),
        pytest.param("QQ==QQ==", id="data-after-padding"),
        pytest.param("QR==", id="non-zero-trailing-bits-1-byte"),
        pytest.param("QUJ=", id="non-zero-trailing-bits-2-bytes"),
    ],
)
def test_b64decode_rejects_non_strict_input(text: str) -> None:
    with pytest.raises(MalformedInput):
        b64decode(text)


@pytest.mark.parametrize("value", [b"QUJD", None, 123, ["QUJD"]])
def test_b64decode_rejects_non_strings(value: object) -> None:
    with pytest.raises(MalformedInput):
        b64decode(value)  # type: ignore[arg-type]


def test_b64decode_max_bytes_is_checked_before_decoding() -> None:
    assert b64decode(b64encode(bytes(12)), max_bytes=12) == bytes(12)
    assert b64decode(b64encode(bytes(10)), max_bytes=12) == bytes(10)
    with pytest.raises(MalformedInput, match="too long"):
        b64decode(b64encode(bytes(13)), max_bytes=12)
    with pytest.raises(MalformedInput, match="too long"):
        b64decode("A" * 1_000_000, max_bytes=64)


@pytest.mark.parametrize("size", [65, 66])
def test_b64decode_max_bytes_is_exact(size: int) -> None:
    """64 bytes and 65 or 66 bytes all take 88 characters; only the byte count tells."""
    assert len(b64encode(bytes(64))) == len(b64encode(bytes(size))) == 88
    assert b64decode(b64encode(bytes(64)), max_bytes=64) == bytes(64)
    with pytest.raises(MalformedInput, match="too long"):
        b64decode(b64encode(bytes(size)), max_bytes=64)


@given(st.binary(max_size=300))
def test_b64_round_trip(data: bytes) -> None:
    text = b64encode(data)
    assert text == base64.b64encode(data).decode()
    assert b64decode(text) == data


@given(st.text(alphabet=BASE64_ALPHABET + " \n-_", max_size=16))
def test_b64decode_accepts_only_the_canonical_form(text: str) -> None:
    """Whatever decodes, re-encodes to exactly the same text: one value, one form."""
    try:
        data = b64decode(text)
    except MalformedInput:
        return
    assert b64encode(data) == text


# --- u64 --------------------------------------------------------------------------


def test_u64_is_eight_big_endian_bytes() -> None:
    assert u64(0) == bytes(8)
    assert u64(1) == bytes(7) + b"\x01"
    assert u64(2**64 - 1) == b"\xff" * 8


@pytest.mark.parametrize("value", [-1, 2**64])
def test_u64_rejects_out_of_range(value: int) -> None:
    with pytest.raises(MalformedInput):
        u64(value)


# --- canonical bytes ---------------------------------------------------------------


def test_canonical_layout_is_length_prefixed() -> None:
    assert canonical("ab", [b"", "é", b"\x00\x01"]) == (
        b"\x00\x00\x00\x02ab"
        + b"\x00\x00\x00\x00"
        + b"\x00\x00\x00\x02\xc3\xa9"
        + b"\x00\x00\x00\x02\x00\x01"
    )


def test_canonical_separates_what_concatenation_would_merge() -> None:
    assert canonical("l", ["ab", "c"]) != canonical("l", ["a", "bc"])
    assert canonical("l", ["abc"]) != canonical("l", ["abc", ""])
    assert canonical("l", [b"x"]) != canonical("lx", [])


def test_canonical_strings_and_bytes_are_the_same_field() -> None:
    assert canonical("label", ["alice"]) == canonical("label", [b"alice"])


@given(st.text(max_size=10), fields, st.text(max_size=10), fields)
def test_canonical_is_injective(label_a: str, fields_a: list, label_b: str, fields_b: list) -> None:
    """Different (label, fields) never give the same bytes."""

    def as_bytes(items: list) -> list[bytes]:
        return [item.encode() if isinstance(item, str) else item for item in items]

    same_input = label_a.encode() == label_b.encode() and as_bytes(fields_a) == as_bytes(fields_b)
    assert (canonical(label_a, fields_a) == canonical(label_b, fields_b)) == same_input


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@given(
    st.binary(max_size=24), st.lists(st.integers(0, 24), max_size=4), st.lists(st.integers(0, 24), max_size=4)
)
def test_canonical_distinguishes_every_split_of_the_same_bytes(
    data: bytes, cuts_a: list[int], cuts_b: list[int]
) -> None:
    """The hard case for injectivity: field lists whose plain concatenation is equal."""
    fields_a, fields_b = _cut(data, cuts_a), _cut(data, cuts_b)
    assert b"".join(fields_a) == b"".join(fields_b)
    assert (canonical("l", fields_a) == canonical("l", fields_b)) == (fields_a == fields_b)


@given(st.text(max_size=10), fields)
def test_split_canonical_round_trip(label: str, items: list) -> None:
    encoded = [item.encode() if isinstance(item, str) else item for item in items]
    assert split_canonical(canonical(label, items), label) == encoded


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(canonical("label", [b"x"])[:-1], id="truncated-field"),
        pytest.param(canonical("label", [b"x"]) + b"\x00\x00", id="truncated-length-prefix"),
        pytest.param(struct.pack(">I", 2**32 - 1) + b"label", id="huge-length"),
        pytest.param(canonical("other", [b"x"]), id="wrong-label"),
        pytest.param(canonical("labe", [b"lx"]), id="label-prefix"),
    ],
)
def test_split_canonical_rejects_malformed_input(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        split_canonical(data, "label")


def test_split_canonical_allows_no_fields_after_the_label() -> None:
    assert split_canonical(canonical("label", []), "label") == []


def test_canonical_refuses_a_field_too_long_for_its_length_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real limit is 2**32 - 1 bytes; lower it rather than allocate 4 GiB.
    monkeypatch.setattr(encoding, "_MAX_FIELD", 3)
    assert canonical("abc", [b"xyz"])
    with pytest.raises(MalformedInput, match="too long"):
        canonical("abc", [b"wxyz"])
