"""The loaded-key caches of protocol v2 (a session's ratchet key, a device's signing key)
change no result: a cached key is used only for the very key it was loaded from."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
from test_v2_envelope import LAPTOP, sealed
from v2_support import T0, counter_random, make_device, secret, start

from securechat.protocol.errors import MalformedInput, VerificationFailed
from securechat.protocol.v2.devices import Device
from securechat.protocol.v2.envelope import verify_envelope
from securechat.protocol.v2.errors import Refusal
from securechat.protocol.v2.primitives import X25519Key, x25519, x25519_public
from securechat.protocol.v2.ratchet import SessionState, ratchet_decrypt, ratchet_encrypt
from securechat.protocol.v2.setup import accept_session
from securechat.protocol.v2.wire import members

AD = b"ad"
ALICE = make_device("alice", "laptop")
BOB = make_device("bob", "phone")
# An X25519 point of small order (u = 0): every exchange with it gives zero.
SMALL_ORDER = bytes(32)


def turned() -> tuple[SessionState, SessionState]:
    """alice set up a session and sent; bob accepted and replied (his ratchet key, loaded
    once, is in his state's cache); alice opened the reply. Both states after that."""
    alice = start(ALICE, BOB)
    first, alice = ratchet_encrypt(alice, b"hello", AD, counter_random("alice"))
    bob = accept_session(
        BOB.party,
        BOB.dh_private,
        ALICE.party,
        first,
        {1: BOB.signed_prekey_private},
        BOB.one_time_privates,
        AD,
        T0,
    ).state
    reply, bob = ratchet_encrypt(bob, b"hi", AD, counter_random("bob"))
    _, alice = ratchet_decrypt(alice, reply, AD, T0)
    return alice, bob


def test_a_state_given_another_ratchet_key_does_not_use_the_cached_one() -> None:
    alice, bob = turned()
    # Shares bob's cache (replace copies it), which holds bob's real ratchet key.
    other = replace(bob, dhs_private=secret("bob", "another ratchet key"))
    message, _ = ratchet_encrypt(alice, b"turn", AD, counter_random("alice-2"))
    before = other.to_bytes()
    with pytest.raises(Refusal) as caught:
        ratchet_decrypt(other, message, AD, T0)
    assert caught.value.reason == "ratchet_failed"
    assert other.to_bytes() == before
    # The cache now holds the other key; bob's own state still opens the message.
    plaintext, _ = ratchet_decrypt(bob, message, AD, T0)
    assert plaintext == b"turn"


def test_a_state_sends_with_the_public_key_of_its_own_ratchet_key() -> None:
    alice, bob = turned()
    # bob sends in the chain he started, with the key his cache holds; a state given
    # another key must not send with the cached key's public half.
    other = replace(bob, dhs_private=secret("bob", "another ratchet key"))
    sent_by_other, _ = ratchet_encrypt(other, b"x", AD, counter_random("unused"))
    sent_by_bob, _ = ratchet_encrypt(bob, b"x", AD, counter_random("unused"))
    assert sent_by_other.dh == x25519_public(other.dhs_private) != sent_by_bob.dh
    assert sent_by_bob.dh == x25519_public(bob.dhs_private)
    # Equal bytes in a new object (a state read back from storage) give the same result.
    copied = replace(bob, dhs_private=bytes(bytearray(bob.dhs_private)))
    message, _ = ratchet_encrypt(alice, b"turn", AD, counter_random("alice-3"))
    assert ratchet_decrypt(copied, message, AD, T0)[0] == ratchet_decrypt(bob, message, AD, T0)[0]


def test_the_cache_is_not_part_of_a_states_value_or_form() -> None:
    _, bob = turned()
    reread = SessionState.from_bytes(bob.to_bytes())
    assert reread == bob
    assert reread.to_bytes() == bob.to_bytes()
    assert "X25519" not in repr(bob) and "_ratchet_key" not in repr(bob)


def test_a_loaded_x25519_key_refuses_what_the_function_refuses() -> None:
    key = X25519Key(secret("k"))
    assert key.exchange(SMALL_ORDER) is None
    assert x25519(secret("k"), SMALL_ORDER) is None
    with pytest.raises(MalformedInput):
        key.exchange(bytes(31))
    with pytest.raises(MalformedInput):
        X25519Key(bytes(31))
    peer = x25519_public(secret("peer"))
    assert key.exchange(peer) == x25519(secret("k"), peer) == X25519Key(secret("peer")).exchange(key.public)


def test_a_device_with_a_small_order_signing_key_verifies_nothing() -> None:
    envelope, _ = sealed()
    identity_point = bytes([1]) + bytes(31)  # the Ed25519 neutral element, of small order
    device = replace(LAPTOP.device, signing_key=identity_point)
    for _ in range(2):  # nothing is cached by the failure
        with pytest.raises(MalformedInput):
            verify_envelope(envelope, device)


def test_a_devices_loaded_key_is_its_own_not_another_devices() -> None:
    envelope, _ = sealed()
    verify_envelope(envelope, LAPTOP.device)  # loads and keeps LAPTOP's key
    impostor = Device(
        LAPTOP.device.device_id,
        BOB.device.signing_key,
        LAPTOP.device.dh_key,
        LAPTOP.device.created_at,
        LAPTOP.device.certificate,
    )
    with pytest.raises(VerificationFailed):
        verify_envelope(envelope, impostor)
    verify_envelope(envelope, LAPTOP.device)


class _Object(Mapping[str, object]):
    """A JSON object that is not a dict (as a caller's own parser might give)."""

    def __init__(self, data: dict[str, object]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1},
        {"a": 1, "b": 2, "c": 3, "e": 5},
        {"b": 2},
        {"a": 1, "d": 4},
        _Object({"a": 1, "d": 4}),
        [("a", 1)],
        None,
    ],
)
def test_member_sets_are_still_checked_exactly(data: object) -> None:
    with pytest.raises(MalformedInput):
        members(data, ("a", "b"), ("c",))


@pytest.mark.parametrize("data", [{"a": 1, "b": 2}, {"b": 2, "a": 1, "c": 3}, _Object({"a": 1, "b": 2})])
def test_member_sets_that_fit_are_accepted(data: object) -> None:
    assert members(data, ("a", "b"), ("c",)) is data
    assert members(data, ["a", "b"], {"c"}) is data
