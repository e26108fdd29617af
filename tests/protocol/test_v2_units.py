"""Protocol v2 edge cases the vectors and properties do not reach: parsing of states and
messages, refusals before any key is derived, small-order keys, and the sizes of 15.7.6."""

from __future__ import annotations

from dataclasses import replace

import pytest
from v2_support import T0, counter_random, device_list, make_device, start

from securechat.protocol.encoding import canonical, u64
from securechat.protocol.errors import MalformedInput, UnsupportedVersion
from securechat.protocol.v2.devices import Device, parse_device_list
from securechat.protocol.v2.errors import Refusal
from securechat.protocol.v2.prekeys import DAY_MS, signed_prekey_private_expired
from securechat.protocol.v2.ratchet import (
    MAX_SKIP,
    SKIPPED_KEY_TTL_MS,
    RatchetMessage,
    SessionState,
    SetupMessage,
    expire_skipped_keys,
    ratchet_decrypt,
    ratchet_encrypt,
)
from securechat.protocol.v2.setup import accept_session, initiate_session

AD = b"ad"
ALICE = make_device("alice", "laptop")
BOB = make_device("bob", "phone")


def pair(one_time: int | None = 1000) -> tuple[SessionState, SessionState, list[RatchetMessage]]:
    """Alice sends three messages; bob accepts the first. Returns both states and the messages."""
    alice = start(ALICE, BOB, one_time=one_time)
    rng = counter_random("alice")
    messages = []
    for text in (b"one", b"two", b"three"):
        message, alice = ratchet_encrypt(alice, text, AD, rng)
        messages.append(message)
    accepted = accept_session(
        BOB.party,
        BOB.dh_private,
        ALICE.party,
        messages[0],
        {1: BOB.signed_prekey_private},
        BOB.one_time_privates,
        AD,
        T0,
    )
    return alice, accepted.state, messages


def refused(reason: str, state: SessionState, message: RatchetMessage, now: int = T0) -> None:
    before = state.to_bytes()
    with pytest.raises(Refusal) as caught:
        ratchet_decrypt(state, message, AD, now)
    assert caught.value.reason == reason
    assert state.to_bytes() == before


def test_state_sizes_stay_far_below_4_kb() -> None:
    """15.7.6: at most 347 bytes with every key present, plus the pending setup (107
    bytes with a one-time prekey, 99 without) and 96 bytes per skipped key."""
    alice, bob, messages = pair()
    # A new initiator: no own ratchet key and no chains yet (3 empty 32-byte fields).
    assert len(start(ALICE, BOB).to_bytes()) == 347 - 3 * 32 + 107
    assert len(start(ALICE, BOB, one_time=None).to_bytes()) == 347 - 3 * 32 + 99
    assert len(alice.to_bytes()) == 347 - 32 + 107  # sending chain, no receiving chain yet
    _, bob = ratchet_decrypt(bob, messages[2], AD, T0)
    assert len(bob.skipped) == 1
    reply, bob = ratchet_encrypt(bob, b"reply", AD, counter_random("bob"))
    assert len(bob.to_bytes()) == 347 + 96
    _, alice = ratchet_decrypt(alice, reply, AD, T0)
    assert len(alice.to_bytes()) == 347 - 32  # the turn empties cks until the next send
    _, alice = ratchet_encrypt(alice, b"again", AD, counter_random("alice-2"))
    assert len(alice.to_bytes()) == 347
    assert SessionState.from_bytes(alice.to_bytes()) == alice


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: canonical("securechat/v2/other", []) + b[36:],
        lambda b: b.replace(u64(2), u64(3), 1),
    ],
    ids=["truncated", "trailing", "other_label", "other_version"],
)
def test_serialised_state_parses_only_its_own_layout(mutate: object) -> None:
    alice, _, _ = pair()
    with pytest.raises(MalformedInput):
        SessionState.from_bytes(mutate(alice.to_bytes()))  # type: ignore[operator]


def test_a_state_with_a_short_key_or_a_wrong_count_is_malformed() -> None:
    alice, _, _ = pair()
    with pytest.raises(MalformedInput):
        SessionState.from_bytes(replace(alice, root_key=b"short").to_bytes())
    with pytest.raises(MalformedInput):
        SessionState.from_bytes(replace(alice, session_id=b"").to_bytes())


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"n": True},
        {"n": 2**32},
        {"pn": -1},
        {"ciphertext": "AAAA"},
        {"dh": "AAAA"},
    ],
    ids=["extra_member", "boolean_n", "n_too_big", "negative_pn", "short_ciphertext", "short_dh"],
)
def test_ratchet_messages_parse_strictly(change: dict[str, object]) -> None:
    _, _, messages = pair()
    wire = messages[1].to_wire() | change
    with pytest.raises(MalformedInput):
        RatchetMessage.from_wire(wire)


def test_setup_bytes_round_trip_and_refuse_other_layouts() -> None:
    setup = SetupMessage(bytes(range(32)), 7, None)
    assert SetupMessage.from_bytes(setup.to_bytes()) == setup
    assert SetupMessage.from_wire(setup.to_wire()) == setup
    with pytest.raises(MalformedInput):
        SetupMessage.from_bytes(
            canonical("securechat/v2/session-setup", [u64(3), bytes(32), u64(7), b"", b""])
        )
    with pytest.raises(MalformedInput):
        SetupMessage.from_bytes(
            canonical("securechat/v2/session-setup", [u64(2), bytes(32), u64(7), b"x", b""])
        )


def test_a_small_order_ratchet_key_is_refused_without_change() -> None:
    _, bob, messages = pair()
    refused("ratchet_failed", bob, replace(messages[1], dh=bytes(32), pn=0, n=0))


def test_the_initiator_cannot_receive_on_the_signed_prekey_chain() -> None:
    alice, _, messages = pair()
    refused("ratchet_failed", alice, replace(messages[0], dh=alice.dhr))


def test_a_responder_without_a_peer_ratchet_key_cannot_send() -> None:
    _, bob, _ = pair()
    silent = replace(bob, dhr=b"", cks=b"")
    with pytest.raises(Refusal) as caught:
        ratchet_encrypt(silent, b"x", AD, counter_random("bob"))
    assert caught.value.reason == "session_unknown"


def test_a_long_plaintext_is_refused_before_encrypting() -> None:
    alice, _, _ = pair()
    with pytest.raises(MalformedInput):
        ratchet_encrypt(alice, bytes(65_537), AD, counter_random("x"))


def test_a_jump_in_the_previous_chain_is_refused_before_deriving() -> None:
    """A header whose pn claims more than 25,000 unseen messages of the old chain."""
    alice, bob, _ = pair()
    reply, bob = ratchet_encrypt(bob, b"reply", AD, counter_random("bob"))
    _, alice = ratchet_decrypt(alice, reply, AD, T0)
    turned, _ = ratchet_encrypt(replace(alice, ns=MAX_SKIP + 2), b"turned", AD, counter_random("alice-2"))
    assert turned.pn == MAX_SKIP + 2
    refused("ratchet_too_far", bob, turned)
    # A new chain whose first position is beyond the bound.
    refused("ratchet_too_far", bob, replace(turned, pn=3, n=MAX_SKIP + 1))


def test_expired_skipped_keys_are_dropped_by_expiry_and_by_the_next_success() -> None:
    alice, bob, messages = pair()
    _, bob = ratchet_decrypt(bob, messages[2], AD, T0)
    assert [k.n for k in bob.skipped] == [1]
    assert expire_skipped_keys(bob, T0 + SKIPPED_KEY_TTL_MS - 1) == bob
    assert expire_skipped_keys(bob, T0 + SKIPPED_KEY_TTL_MS).skipped == ()
    more, alice = ratchet_encrypt(alice, b"four", AD, counter_random("a"))
    _, later = ratchet_decrypt(bob, more, AD, T0 + SKIPPED_KEY_TTL_MS)
    assert later.skipped == ()


def test_a_setup_with_a_small_order_signed_prekey_is_refused() -> None:
    bad = replace(BOB.signed_prekey, public_key=bytes(32))
    with pytest.raises(Refusal) as caught:
        initiate_session(ALICE.party, ALICE.dh_private, BOB.party, bad, None, bytes(range(32)))
    assert caught.value.reason == "prekey_invalid"


def test_signed_prekey_private_halves_go_30_days_after_replacement() -> None:
    assert not signed_prekey_private_expired(None, T0)
    assert not signed_prekey_private_expired(T0, T0 + 30 * DAY_MS - 1)
    assert signed_prekey_private_expired(T0, T0 + 30 * DAY_MS)


def test_device_lists_round_trip_and_name_their_devices() -> None:
    listed = device_list([ALICE, make_device("alice", "phone")], version=4)
    assert parse_device_list(listed.to_wire()) == listed
    assert listed.device(ALICE.device.device_id) == ALICE.device
    with pytest.raises(Refusal) as caught:
        listed.device(BOB.device.device_id)
    assert caught.value.reason == "device_not_listed"


@pytest.mark.parametrize(
    "change",
    [
        {"version": True},
        {"version": 0},
        {"devices": []},
        {"username": "Alice"},
        {"v": "2"},
    ],
    ids=["boolean_version", "version_zero", "no_devices", "not_normalised", "string_v"],
)
def test_device_lists_parse_strictly(change: dict[str, object]) -> None:
    wire = device_list([ALICE]).to_wire() | change
    with pytest.raises(MalformedInput):
        parse_device_list(wire)


def test_too_many_devices_or_a_bad_id_is_malformed() -> None:
    wire = device_list([ALICE]).to_wire()
    entry = wire["devices"][0]  # type: ignore[index]
    with pytest.raises(MalformedInput):
        parse_device_list(wire | {"devices": [entry] * 33})
    with pytest.raises(MalformedInput):
        parse_device_list(wire | {"devices": [entry | {"device_id": "ABC"}]})
    with pytest.raises(UnsupportedVersion):
        parse_device_list(wire | {"v": 1})
    assert isinstance(ALICE.device, Device)
