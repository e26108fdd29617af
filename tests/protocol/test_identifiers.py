"""Usernames, message ids and conversation ids, parsed once at the edge."""

from __future__ import annotations

import hashlib
import re
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.protocol.errors import MalformedInput
from securechat.protocol.identifiers import (
    USERNAME_MAX,
    USERNAME_MIN,
    Username,
    check_text,
    direct_conversation_id,
    new_group_conversation_id,
    new_message_id,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)

# --- usernames --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("alice", "alice", id="plain"),
        pytest.param("abc", "abc", id="shortest"),
        pytest.param("a" * 32, "a" * 32, id="longest"),
        pytest.param("a.b_c-9", "a.b_c-9", id="punctuation"),
        pytest.param("Alice", "alice", id="upper-case"),
        pytest.param("MALLORY", "mallory", id="all-caps"),
        pytest.param("ａｌｉｃｅ", "alice", id="nfkc-fullwidth"),
        pytest.param("\u212aate", "kate", id="nfkc-kelvin-sign"),
        pytest.param("\ufb01le", "file", id="nfkc-ligature"),
        pytest.param("bob\u2075", "bob5", id="nfkc-superscript"),
    ],
)
def test_parse_username_normalises(raw: str, expected: str) -> None:
    assert parse_username(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("ab", id="too-short"),
        pytest.param("a" * 33, id="too-long"),
        pytest.param("a" * 300, id="far-too-long"),
        pytest.param("al ice", id="space"),
        pytest.param("alice!", id="bang"),
        pytest.param("al@ice", id="at-sign"),
        pytest.param("alice/bob", id="slash"),
        pytest.param("alice\n", id="trailing-newline"),
        pytest.param("alice\x00", id="nul"),
        pytest.param("\ud800abc", id="lone-surrogate"),
        pytest.param("ålice", id="non-ascii-letter"),
        pytest.param("аlice", id="cyrillic-a-homoglyph"),
        # lower() (not casefold) is used, so 'ß' is refused rather than folded to 'ss'.
        pytest.param("straße", id="sharp-s"),
        # NFKC can lengthen a string: U+FDFA becomes 18 characters with spaces.
        pytest.param("ab\ufdfa", id="nfkc-expands-to-bad-chars"),
    ],
)
def test_parse_username_rejects(raw: str) -> None:
    with pytest.raises(MalformedInput):
        parse_username(raw)


@pytest.mark.parametrize("value", [None, 123, b"alice", ["alice"]])
def test_parse_username_rejects_non_strings(value: object) -> None:
    with pytest.raises(MalformedInput, match="must be a string"):
        parse_username(value)


def test_username_length_limits_are_3_to_32() -> None:
    assert (USERNAME_MIN, USERNAME_MAX) == (3, 32)


@given(st.text(max_size=40))
def test_parse_username_is_idempotent_and_ascii(raw: str) -> None:
    try:
        name = parse_username(raw)
    except MalformedInput:
        return
    assert re.fullmatch(r"[a-z0-9._-]{3,32}", name)
    assert parse_username(name) == name


# --- free text --------------------------------------------------------------------


def test_check_text_returns_good_text() -> None:
    assert check_text("héllo 👋", field="text", max_chars=7) == "héllo 👋"


@pytest.mark.parametrize(
    ("value", "message"),
    [("x" * 8, "too long"), ("a\x00b", "NUL"), ("a\udfffb", "not valid Unicode")],
)
def test_check_text_rejects(value: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        check_text(value, field="text", max_chars=7)


# --- message ids ------------------------------------------------------------------


def test_new_message_id_is_a_parseable_uuid4() -> None:
    first, second = new_message_id(), new_message_id()
    assert parse_message_id(first) == first
    assert uuid.UUID(first).version == 4
    assert first != second


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0F8FAD5B-D9CB-469F-A165-70867728950E", id="upper-case"),
        pytest.param("0f8fad5bd9cb469fa16570867728950e", id="no-hyphens"),
        pytest.param("{0f8fad5b-d9cb-469f-a165-70867728950e}", id="braces"),
        pytest.param("0f8fad5b-d9cb-169f-a165-70867728950e", id="version-1"),
        pytest.param("0f8fad5b-d9cb-469f-c165-70867728950e", id="wrong-variant"),
        pytest.param("0f8fad5b-d9cb-469f-a165-70867728950", id="short"),
        pytest.param("0f8fad5b-d9cb-469f-a165-70867728950e\n", id="trailing-newline"),
        pytest.param(None, id="none"),
        pytest.param(7, id="int"),
    ],
)
def test_parse_message_id_rejects(value: object) -> None:
    with pytest.raises(MalformedInput):
        parse_message_id(value)


# --- conversation ids ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["dm-" + "0" * 32, "grp-" + "ab" * 16])
def test_parse_conversation_id_accepts(value: str) -> None:
    assert parse_conversation_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "dm-" + "0" * 31,
        "dm-" + "0" * 33,
        "grp-" + "AB" * 16,
        "chan-" + "0" * 32,
        "dm" + "0" * 32,
        "",
        None,
        1,
    ],
)
def test_parse_conversation_id_rejects(value: object) -> None:
    with pytest.raises(MalformedInput):
        parse_conversation_id(value)


def test_new_group_conversation_id_is_parseable_and_fresh() -> None:
    first, second = new_group_conversation_id(), new_group_conversation_id()
    assert parse_conversation_id(first) == first
    assert first.startswith("grp-")
    assert first != second


def test_direct_conversation_id_is_order_independent_and_well_formed() -> None:
    alice, bob = Username("alice"), Username("bob")
    conversation = direct_conversation_id(alice, bob)
    assert conversation == direct_conversation_id(bob, alice)
    assert parse_conversation_id(conversation) == conversation
    assert conversation.startswith("dm-")


def test_direct_conversation_id_matches_its_definition() -> None:
    """dm- + the first 32 hex digits of SHA-256 over the canonical sorted pair."""

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    expected = hashlib.sha256(
        field(b"securechat/v1/direct-conversation") + field(b"alice") + field(b"bob")
    ).hexdigest()[:32]
    assert direct_conversation_id(Username("bob"), Username("alice")) == "dm-" + expected


def test_direct_conversation_ids_differ_per_pair() -> None:
    names = [Username(name) for name in ("alice", "bob", "carol", "mallory")]
    ids = {direct_conversation_id(a, b) for a in names for b in names if a < b}
    assert len(ids) == 6
    # Length prefixes keep ("abc", "defg") and ("abcd", "efg") apart.
    assert direct_conversation_id(Username("abc"), Username("defg")) != direct_conversation_id(
        Username("abcd"), Username("efg")
    )
