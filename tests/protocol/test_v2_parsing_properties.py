"""Hostile input to the v2 parsers (hypothesis): whatever the bytes or JSON, a parser
either returns a value or raises MalformedInput / UnsupportedVersion, never another
exception, and what it returns serialises back to the same input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from v2_support import counter_random, device_list, make_device, start

from securechat.protocol.errors import MalformedInput, UnsupportedVersion
from securechat.protocol.v2.devices import parse_device_list
from securechat.protocol.v2.ratchet import RatchetMessage, SessionState, SetupMessage, ratchet_encrypt

ALICE, BOB = make_device("alice", "laptop"), make_device("bob", "phone")
STATE = start(ALICE, BOB)
MESSAGE, _ = ratchet_encrypt(STATE, b"hello", b"", counter_random("parse"))
LIST_WIRE = device_list([ALICE, make_device("alice", "phone")]).to_wire()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=60),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def mutated(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    wire = dict(base)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*sorted(wire), "extra"]))
        if data.draw(st.booleans()) and key in wire:
            del wire[key]
        else:
            wire[key] = data.draw(json_values)
    return wire


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_state_bytes_parse_or_are_malformed(raw: bytes) -> None:
    try:
        state = SessionState.from_bytes(raw)
    except MalformedInput:
        return
    assert state.to_bytes() == raw


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_serialised_state_parses_or_is_malformed(data: st.DataObject) -> None:
    raw = bytearray(STATE.to_bytes())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    try:
        state = SessionState.from_bytes(bytes(raw))
    except MalformedInput:
        return
    assert state.to_bytes() == bytes(raw)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_ratchet_messages_parse_or_are_malformed(data: st.DataObject) -> None:
    base = MESSAGE.to_wire()
    wire = mutated(base, data) if data.draw(st.booleans()) else data.draw(json_values)
    try:
        message = RatchetMessage.from_wire(wire)
    except MalformedInput:
        return
    assert message.to_wire() == wire


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_setup_messages_parse_or_are_malformed(data: st.DataObject) -> None:
    assert MESSAGE.setup is not None
    wire = mutated(MESSAGE.setup.to_wire(), data)
    try:
        setup = SetupMessage.from_wire(wire)
    except MalformedInput:
        return
    assert setup.to_wire() == wire


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_device_lists_parse_or_are_refused_as_malformed(data: st.DataObject) -> None:
    wire = mutated(LIST_WIRE, data)
    if data.draw(st.booleans()):
        entry = mutated(LIST_WIRE["devices"][0], data)  # type: ignore[index]
        wire = dict(LIST_WIRE) | {"devices": [entry]}
    try:
        parsed = parse_device_list(wire)
    except (MalformedInput, UnsupportedVersion):
        return
    assert parsed.to_wire() == wire
