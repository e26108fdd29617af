"""The v2 fan-out envelope (PROTOCOL.md 15.8): one body, one slot per target device."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from v2_support import T0, DeviceKeys, counter_random, make_device, start

from securechat.protocol.envelope import encode_payload
from securechat.protocol.errors import MalformedInput, UnsupportedVersion, VerificationFailed
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    HeaderV2,
    Target,
    key_slot_plaintext,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.errors import Refusal
from securechat.protocol.v2.ratchet import SessionState
from securechat.protocol.v2.setup import accept_session

LAPTOP = make_device("alice", "laptop")
PHONE = make_device("alice", "phone")
BOB = make_device("bob", "phone")
MESSAGE_ID = MessageId("3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f")
CONVERSATION = direct_conversation_id(Username("alice"), Username("bob"))
PAYLOAD = encode_payload({"type": "text", "text": "Hello, Bob!"})


def header(**changes: Any) -> HeaderV2:
    base = HeaderV2(
        MESSAGE_ID,
        ConversationId(CONVERSATION),
        Username("alice"),
        LAPTOP.device.device_id,
        T0,
        (
            Target(Username("alice"), 2, (PHONE.device.device_id,)),
            Target(Username("bob"), 1, (BOB.device.device_id,)),
        ),
    )
    return replace(base, **changes)


def sealed() -> tuple[EnvelopeV2, dict[tuple[str, str], SessionState]]:
    sessions = {
        ("alice", PHONE.device.device_id): start(LAPTOP, PHONE),
        ("bob", BOB.device.device_id): start(LAPTOP, BOB),
    }
    return seal_envelope(
        header(), PAYLOAD, bytes(range(32)), bytes(12), sessions, LAPTOP.signing_seed, counter_random("seal")
    )


def open_as(envelope: EnvelopeV2, me: DeviceKeys) -> bytes:
    """What a receiving client does, in 15.8's order, for a first message with a setup."""
    verify_envelope(envelope, LAPTOP.device)
    slot = envelope.slot_for(me.username, me.device.device_id)
    assert slot is not None
    accepted = accept_session(
        me.party,
        me.dh_private,
        LAPTOP.party,
        slot.message,
        {1: me.signed_prekey_private},
        me.one_time_privates,
        envelope.binding,
        T0,
    )
    return open_body(envelope, open_key_slot(envelope, accepted.plaintext))


def test_every_target_device_opens_the_one_body() -> None:
    envelope, states = sealed()
    assert EnvelopeV2.from_wire(envelope.to_wire()) == envelope
    assert len(states) == 2
    assert open_as(envelope, BOB) == PAYLOAD
    assert open_as(envelope, PHONE) == PAYLOAD


def test_an_altered_body_fails_in_the_slot_and_the_signature() -> None:
    envelope, _ = sealed()
    altered = replace(envelope, body=bytes([envelope.body[0] ^ 1]) + envelope.body[1:])
    with pytest.raises(VerificationFailed):
        verify_envelope(altered, LAPTOP.device)
    # The slot's ratchet message has the binding as associated data, so a receiver that
    # skipped the signature still could not open an altered body's slot.
    with pytest.raises(Refusal) as caught:
        accept_session(
            BOB.party,
            BOB.dh_private,
            LAPTOP.party,
            altered.slots[1].message,
            {1: BOB.signed_prekey_private},
            BOB.one_time_privates,
            altered.binding,
            T0,
        )
    assert caught.value.reason == "ratchet_failed"


def test_a_slot_moved_to_another_device_does_not_open() -> None:
    envelope, _ = sealed()
    with pytest.raises(Refusal) as caught:
        accept_session(
            BOB.party,
            BOB.dh_private,
            LAPTOP.party,
            envelope.slots[0].message,
            {1: BOB.signed_prekey_private},
            BOB.one_time_privates,
            envelope.binding,
            T0,
        )
    assert caught.value.reason == "ratchet_failed"


def test_the_signature_binds_the_target_devices_and_the_sender_device() -> None:
    envelope, _ = sealed()
    fewer = replace(envelope, header=header(targets=(Target(Username("bob"), 1, (BOB.device.device_id,)),)))
    with pytest.raises(VerificationFailed):
        verify_envelope(fewer, LAPTOP.device)
    with pytest.raises(VerificationFailed):
        verify_envelope(envelope, PHONE.device)
    with pytest.raises(VerificationFailed):
        verify_envelope(replace(envelope, header=header(sender_device=PHONE.device.device_id)), PHONE.device)


def test_a_slot_with_another_binding_is_refused() -> None:
    envelope, _ = sealed()
    other, _ = seal_envelope(
        header(sent_at=T0 + 1),
        PAYLOAD,
        bytes(range(32)),
        bytes(12),
        {
            ("alice", PHONE.device.device_id): start(LAPTOP, PHONE),
            ("bob", BOB.device.device_id): start(LAPTOP, BOB),
        },
        LAPTOP.signing_seed,
        counter_random("seal"),
    )
    with pytest.raises(VerificationFailed):
        open_key_slot(envelope, b"not canonical")
    with pytest.raises(VerificationFailed):
        open_key_slot(envelope, key_slot_plaintext(bytes(range(32)), other.binding))


def test_a_target_without_a_session_is_session_unknown() -> None:
    with pytest.raises(Refusal) as caught:
        seal_envelope(header(), PAYLOAD, bytes(32), bytes(12), {}, LAPTOP.signing_seed, counter_random("x"))
    assert caught.value.reason == "session_unknown"


@pytest.mark.parametrize(
    "change",
    [
        lambda w: w | {"v": 3},
        lambda w: w | {"extra": 1},
        lambda w: w | {"slots": list(reversed(w["slots"]))},
        lambda w: w | {"targets": list(reversed(w["targets"]))},
        lambda w: w | {"slots": []},
        lambda w: w | {"sender_device": w["targets"][0]["devices"][0]},
        lambda w: w | {"slots": [w["slots"][0] | {"device_id": "0" * 32}]},
        lambda w: w | {"iv": "AAAA"},
        lambda w: w | {"sender": "Alice"},
    ],
    ids=[
        "other_version",
        "extra_member",
        "slots_unsorted",
        "targets_unsorted",
        "no_slots",
        "sender_device_is_a_target",
        "slot_for_no_target",
        "short_iv",
        "sender_not_normalised",
    ],
)
def test_envelopes_parse_strictly(change: Any) -> None:
    envelope, _ = sealed()
    with pytest.raises((MalformedInput, UnsupportedVersion)):
        EnvelopeV2.from_wire(change(envelope.to_wire()))
