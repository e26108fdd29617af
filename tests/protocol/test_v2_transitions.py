"""Identity transitions (PROTOCOL.md 15.11): making, strict parsing and both signatures."""

from __future__ import annotations

import hashlib

import pytest

from securechat.protocol.encoding import b64encode, canonical, u64
from securechat.protocol.errors import MalformedInput, UnsupportedVersion, VerificationFailed
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.labels import IDENTITY_TRANSITION
from securechat.protocol.v2.primitives import ed25519_raw_public, ed25519_sign_raw
from securechat.protocol.v2.transitions import (
    MAX_TRANSITIONS,
    IdentityTransition,
    make_transition,
    parse_transition,
    parse_transition_chain,
    transition_bytes,
    verify_transition,
)

OLD, NEW, OTHER = (hashlib.sha256(name.encode()).digest() for name in ("old", "new", "other"))
ALICE = Username("alice")
AT = 1_767_225_600_000
SMALL_ORDER = bytes(32)


def wire() -> dict[str, object]:
    return make_transition(OLD, NEW, ALICE, AT).to_wire()


def test_a_transition_is_signed_by_both_keys_over_the_spec_bytes() -> None:
    made = make_transition(OLD, NEW, ALICE, AT)
    old_key, new_key = ed25519_raw_public(OLD), ed25519_raw_public(NEW)
    expected = canonical(IDENTITY_TRANSITION, ["alice", old_key, new_key, u64(AT)])
    assert made.signed_bytes == expected == transition_bytes(ALICE, old_key, new_key, AT)
    assert made.old_signature == ed25519_sign_raw(OLD, expected)
    assert made.new_signature == ed25519_sign_raw(NEW, expected)
    assert parse_transition(made.to_wire()) == made
    verify_transition(made)


@pytest.mark.parametrize("member", ["old_signature", "new_signature"])
def test_either_signature_by_another_key_fails(member: str) -> None:
    forged = wire() | {
        member: b64encode(ed25519_sign_raw(OTHER, make_transition(OLD, NEW, ALICE, AT).signed_bytes))
    }
    with pytest.raises(VerificationFailed):
        verify_transition(parse_transition(forged))


@pytest.mark.parametrize("member", ["username", "at", "new_key"])
def test_a_changed_field_breaks_both_signatures(member: str) -> None:
    changed = {"username": "bob", "at": AT + 1, "new_key": b64encode(ed25519_raw_public(OTHER))}[member]
    with pytest.raises(VerificationFailed):
        verify_transition(parse_transition(wire() | {member: changed}))


@pytest.mark.parametrize(
    "change",
    [
        {"at": -1},
        {"at": 2**53},
        {"at": True},
        {"at": 1.5},
        {"username": "Alice"},
        {"username": 7},
        {"old_key": b64encode(SMALL_ORDER)},
        {"new_key": b64encode(bytes([1]) + bytes(31))},
        {"new_key": b64encode(bytes(31))},
        {"old_signature": b64encode(bytes(63))},
        {"new_signature": "not base64!"},
        {"v": "2"},
        {"extra": 1},
    ],
    ids=lambda change: "-".join(f"{k}={v!r}"[:24] for k, v in change.items()),
)
def test_parsing_is_strict(change: dict[str, object]) -> None:
    with pytest.raises(MalformedInput):
        parse_transition(wire() | change)


def test_missing_members_other_versions_and_no_change_are_refused() -> None:
    for member in ("new_signature", "old_signature", "at"):
        partial = wire()
        del partial[member]
        with pytest.raises(MalformedInput):
            parse_transition(partial)
    with pytest.raises(UnsupportedVersion):
        parse_transition(wire() | {"v": 1})
    with pytest.raises(MalformedInput):
        parse_transition(wire() | {"new_key": wire()["old_key"]})


def test_a_chain_is_a_list_of_at_most_16() -> None:
    assert parse_transition_chain([]) == ()
    assert len(parse_transition_chain([wire()] * MAX_TRANSITIONS)) == MAX_TRANSITIONS
    for bad in ([wire()] * (MAX_TRANSITIONS + 1), {"0": wire()}, None, [wire(), 1]):
        with pytest.raises(MalformedInput):
            parse_transition_chain(bad)
    assert isinstance(parse_transition_chain([wire()])[0], IdentityTransition)
