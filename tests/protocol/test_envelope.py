"""Message envelopes: sealing, opening, and every way a server or member might cheat.

The personas: alice sends; bob and carol receive; mallory is another registered user
(or the server pretending to be one). Tampered envelopes are built from the wire
form and re-parsed, so each test shows the change survives the strict parser and is
caught by ``open_message`` itself.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol.encoding import b64decode, b64encode, canonical, u64
from securechat.protocol.envelope import (
    ENVELOPE_FIELDS,
    ENVELOPE_VERSION,
    MAX_CIPHERTEXT_BYTES,
    MAX_MEMBERS,
    MAX_PAYLOAD_BYTES,
    MAX_TEXT_CHARS,
    Envelope,
    Header,
    WrappedKey,
    decode_payload,
    encode_payload,
    open_message,
    pad,
    padded_size,
    seal_message,
    signature_input,
    unpad,
    wrapped_key_label,
)
from securechat.protocol.errors import MalformedInput, UnsupportedVersion, VerificationFailed
from securechat.protocol.identifiers import (
    ConversationId,
    Username,
    direct_conversation_id,
    new_message_id,
    parse_conversation_id,
    parse_message_id,
)
from securechat.protocol.keys import PrivateIdentity, PublicIdentity
from securechat.protocol.primitives import (
    aes_gcm_encrypt,
    ed25519_sign,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
)

MESSAGE_ID = parse_message_id("0f8fad5b-d9cb-469f-a165-70867728950e")
GROUP_ID = parse_conversation_id("grp-" + "ab" * 16)
OTHER_GROUP_ID = parse_conversation_id("grp-" + "cd" * 16)
SENT_AT = 1_700_000_000_000
PAYLOAD = {"type": "text", "text": "hello, group"}


def directory(*people: PrivateIdentity) -> dict[Username, PublicIdentity]:
    """What a client knows of a conversation's members: username -> pinned public keys."""
    return {person.username: person.public for person in people}


def names(*people: PrivateIdentity) -> frozenset[Username]:
    return frozenset(person.username for person in people)


def open_as(
    envelope: Envelope,
    me: PrivateIdentity,
    *,
    sender: PublicIdentity,
    conversation_id: ConversationId,
    members: Iterable[Username],
) -> dict[str, Any]:
    opened = open_message(
        envelope, me=me, sender_identity=sender, conversation_id=conversation_id, members=frozenset(members)
    )
    assert opened.header == envelope.header
    return opened.payload


def flip_bit(data: bytes, index: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def resign(envelope: Envelope, signer: PrivateIdentity) -> Envelope:
    """Sign a (tampered) envelope again, as if the signature check were bypassed.

    Lets a test show that the AEAD's associated data and the OAEP labels catch the
    change on their own: defence in depth behind the signature.
    """
    return replace(envelope, signature=ed25519_sign(signer.signing_private, envelope.signed_bytes()))


def seal_padded(
    sender: PrivateIdentity,
    conversation_id: ConversationId,
    recipients: Iterable[PrivateIdentity],
    padded: bytes,
    *,
    message_key: bytes | None = None,
) -> Envelope:
    """Seal arbitrary padded plaintext, as a hostile member's modified client could."""
    header = Header(ENVELOPE_VERSION, new_message_id(), conversation_id, sender.username, SENT_AT)
    message_key = message_key if message_key is not None else os.urandom(32)
    iv = os.urandom(12)
    ciphertext = aes_gcm_encrypt(message_key, iv, padded, header.canonical())
    keys = tuple(
        WrappedKey(
            person.username,
            rsa_oaep_encrypt(
                person.encryption_private.public_key(),
                message_key,
                wrapped_key_label(header.message_id, person.username),
            ),
        )
        for person in sorted(recipients, key=lambda person: person.username)
    )
    signature = ed25519_sign(sender.signing_private, signature_input(header, iv, ciphertext, keys))
    return Envelope(header, iv, ciphertext, keys, signature)


@pytest.fixture(scope="module")
def group(alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity) -> frozenset[Username]:
    return names(alice, bob, carol)


@pytest.fixture(scope="module")
def group_envelope(alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity) -> Envelope:
    return seal_message(
        alice, GROUP_ID, directory(alice, bob, carol), PAYLOAD, message_id=MESSAGE_ID, sent_at=SENT_AT
    )


@pytest.fixture(scope="module")
def group_wire(group_envelope: Envelope) -> dict[str, Any]:
    return group_envelope.to_wire()


def open_group_as_bob(
    envelope: Envelope, alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset
) -> Any:
    return open_as(envelope, bob, sender=alice.public, conversation_id=GROUP_ID, members=group)


# --- round trips --------------------------------------------------------------------


def test_direct_message_round_trip(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)
    envelope = seal_message(alice, conversation, directory(alice, bob), {"type": "text", "text": "hi bob 👋"})
    for reader in (alice, bob):
        payload = open_as(
            envelope, reader, sender=alice.public, conversation_id=conversation, members=names(alice, bob)
        )
        assert payload == {"type": "text", "text": "hi bob 👋"}


def test_group_message_round_trip(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    carol: PrivateIdentity,
    group: frozenset[Username],
    group_envelope: Envelope,
) -> None:
    assert group_envelope.recipients == ("alice", "bob", "carol")
    for reader in (alice, bob, carol):
        payload = open_as(
            group_envelope, reader, sender=alice.public, conversation_id=GROUP_ID, members=group
        )
        assert payload == PAYLOAD


def test_wire_round_trip_through_json(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    wire = json.loads(json.dumps(group_envelope.to_wire()))
    assert set(wire) == ENVELOPE_FIELDS
    parsed = Envelope.from_wire(wire)
    assert parsed == group_envelope
    assert open_group_as_bob(parsed, alice, bob, group) == PAYLOAD


def test_parsed_envelope_keeps_its_json_and_a_modified_copy_does_not(group_envelope: Envelope) -> None:
    text = json.dumps(group_envelope.to_wire(), separators=(",", ":"))
    parsed = Envelope.from_wire(json.loads(text))
    assert parsed.wire_json == text
    assert parsed.to_json() == text == group_envelope.to_json()
    # A copy with another field must be encoded afresh, not answer the parsed text.
    changed = replace(parsed, iv=bytes(12))
    assert changed.wire_json is None
    assert json.loads(changed.to_json())["iv"] == b64encode(bytes(12))
    assert changed.to_json() != text


def test_header_fields_are_injected_or_fresh(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)
    before = int(time.time() * 1000)
    first = seal_message(alice, conversation, directory(alice, bob), PAYLOAD)
    second = seal_message(alice, conversation, directory(alice, bob), PAYLOAD)
    after = int(time.time() * 1000)
    assert parse_message_id(first.header.message_id) == first.header.message_id
    assert first.header.message_id != second.header.message_id
    assert before <= first.header.sent_at <= after
    assert first.iv != second.iv
    assert first.header == Header(
        1, first.header.message_id, conversation, alice.username, first.header.sent_at
    )


def test_message_key_and_iv_are_injectable_for_vectors(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)

    def seal() -> Envelope:
        return seal_message(
            alice,
            conversation,
            directory(alice, bob),
            PAYLOAD,
            message_id=MESSAGE_ID,
            sent_at=SENT_AT,
            message_key=bytes(32),
            iv=bytes(12),
        )

    first, second = seal(), seal()
    assert (first.header, first.iv, first.ciphertext) == (second.header, second.iv, second.ciphertext)
    # OAEP is randomised, so the wrapped keys (and hence the signature) still differ.
    assert first.keys != second.keys


def test_ciphertext_length_leaks_only_the_padding_bucket(
    alice: PrivateIdentity, bob: PrivateIdentity
) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)
    sizes = {
        len(
            seal_message(
                alice, conversation, directory(alice, bob), {"type": "text", "text": text}
            ).ciphertext
        )
        for text in ("", "hi", "x" * 200)
    }
    assert sizes == {256 + 16}


def test_header_canonical_bytes(group_envelope: Envelope) -> None:
    header = group_envelope.header
    assert header.canonical() == canonical(
        "securechat/v1/message-header", [u64(1), MESSAGE_ID, GROUP_ID, "alice", u64(SENT_AT)]
    )


@settings(max_examples=25, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=300
    )
)
def test_any_text_round_trips(alice: PrivateIdentity, bob: PrivateIdentity, text: str) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)
    payload = {"type": "text", "text": text}
    envelope = seal_message(alice, conversation, directory(alice, bob), payload)
    assert open_as(
        envelope, bob, sender=alice.public, conversation_id=conversation, members=names(alice, bob)
    ) == (payload)


# --- tampering on the wire ---------------------------------------------------------


def _flip_b64(field: str, index: int = 0) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        wire[field] = b64encode(flip_bit(b64decode(wire[field]), index))

    return change


def _flip_last_hex_digit(field: str) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        wire[field] = wire[field][:-1] + f"{int(wire[field][-1], 16) ^ 1:x}"

    return change


def _flip_last_char_bit(wire: dict[str, Any]) -> None:
    wire["sender"] = wire["sender"][:-1] + chr(ord(wire["sender"][-1]) ^ 1)  # alice -> alicd


def _flip_sent_at(wire: dict[str, Any]) -> None:
    wire["sent_at"] ^= 1


def _flip_wrapped_key(recipient: str) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        for key in wire["keys"]:
            if key["recipient"] == recipient:
                key["wrapped_key"] = b64encode(flip_bit(b64decode(key["wrapped_key"]), 100))

    return change


def _swap_wrapped_keys(wire: dict[str, Any]) -> None:
    bob_key, carol_key = wire["keys"][1], wire["keys"][2]
    bob_key["wrapped_key"], carol_key["wrapped_key"] = carol_key["wrapped_key"], bob_key["wrapped_key"]


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "iv": _flip_b64("iv"),
    "iv-last-byte": _flip_b64("iv", -1),
    "ciphertext": _flip_b64("ciphertext"),
    "ciphertext-tag": _flip_b64("ciphertext", -1),
    "signature": _flip_b64("signature"),
    "signature-last-byte": _flip_b64("signature", -1),
    "message_id": _flip_last_hex_digit("message_id"),
    "conversation_id": _flip_last_hex_digit("conversation_id"),
    "sender": _flip_last_char_bit,
    "sent_at": _flip_sent_at,
    "wrapped-key-of-reader": _flip_wrapped_key("bob"),
    "wrapped-key-of-another-member": _flip_wrapped_key("carol"),
    "wrapped-key-of-sender": _flip_wrapped_key("alice"),
    "wrapped-keys-swapped": _swap_wrapped_keys,
}


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_envelope_fails_to_open(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    group: frozenset[Username],
    group_wire: dict[str, Any],
    tampering: Callable[[dict[str, Any]], None],
) -> None:
    wire = copy.deepcopy(group_wire)
    tampering(wire)
    assert wire != group_wire
    tampered = Envelope.from_wire(wire)  # Still well-formed: only open_message can tell.
    with pytest.raises(VerificationFailed):
        open_group_as_bob(tampered, alice, bob, group)


def test_the_untampered_wire_form_opens(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_wire: dict[str, Any]
) -> None:
    """The control for the tampering tests: the same path without a change succeeds."""
    assert open_group_as_bob(Envelope.from_wire(copy.deepcopy(group_wire)), alice, bob, group) == PAYLOAD


# --- bindings behind the signature ----------------------------------------------------


def _with_header(envelope: Envelope, **changes: Any) -> Envelope:
    return replace(envelope, header=replace(envelope.header, **changes))


def _swap_keys(envelope: Envelope) -> Envelope:
    alice_key, bob_key, carol_key = envelope.keys
    return replace(
        envelope,
        keys=(
            alice_key,
            WrappedKey(bob_key.recipient, carol_key.wrapped_key),
            WrappedKey(carol_key.recipient, bob_key.wrapped_key),
        ),
    )


RESIGNED: dict[str, Callable[[Envelope], Envelope]] = {
    "iv": lambda envelope: replace(envelope, iv=flip_bit(envelope.iv)),
    "ciphertext": lambda envelope: replace(envelope, ciphertext=flip_bit(envelope.ciphertext, 10)),
    "message_id": lambda envelope: _with_header(envelope, message_id=new_message_id()),
    "sent_at": lambda envelope: _with_header(envelope, sent_at=SENT_AT + 1),
    "version": lambda envelope: _with_header(envelope, version=2),
    "wrapped-keys-swapped": _swap_keys,
}


@pytest.mark.parametrize("change", RESIGNED.values(), ids=RESIGNED.keys())
def test_aead_and_oaep_bindings_hold_without_the_signature(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    group: frozenset[Username],
    group_envelope: Envelope,
    change: Callable[[Envelope], Envelope],
) -> None:
    tampered = resign(change(group_envelope), alice)
    with pytest.raises(VerificationFailed):
        open_group_as_bob(tampered, alice, bob, group)


def test_header_conversation_is_bound_by_the_aead(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    """Re-signed and opened in the conversation it now names, it still fails: the AAD."""
    moved = resign(_with_header(group_envelope, conversation_id=OTHER_GROUP_ID), alice)
    with pytest.raises(VerificationFailed):
        open_as(moved, bob, sender=alice.public, conversation_id=OTHER_GROUP_ID, members=group)


def test_header_sender_is_bound_by_the_aead(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    """Bob re-attributing alice's message to himself, signed with his own key, fails."""
    claimed = resign(_with_header(group_envelope, sender=bob.username), bob)
    with pytest.raises(VerificationFailed):
        open_as(claimed, bob, sender=bob.public, conversation_id=GROUP_ID, members=group)


def test_resigning_an_unchanged_envelope_still_opens(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    """The control for the re-signing tests."""
    assert open_group_as_bob(resign(group_envelope, alice), alice, bob, group) == PAYLOAD


def test_wrapped_key_is_bound_to_its_message_by_the_oaep_label(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], directory_of_group: dict
) -> None:
    """A wrapped key moved to another message fails, even under the same message key."""
    key = os.urandom(32)
    first = seal_message(alice, GROUP_ID, directory_of_group, PAYLOAD, message_key=key)
    second = seal_message(alice, GROUP_ID, directory_of_group, PAYLOAD, message_key=key)
    assert open_group_as_bob(second, alice, bob, group) == PAYLOAD
    transplanted = replace(
        second, keys=tuple(first.keys[i] if k.recipient == "bob" else k for i, k in enumerate(second.keys))
    )
    with pytest.raises(VerificationFailed):
        open_group_as_bob(resign(transplanted, alice), alice, bob, group)


@pytest.fixture(scope="module")
def directory_of_group(
    alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity
) -> dict[Username, PublicIdentity]:
    return directory(alice, bob, carol)


def test_wrapped_key_label_names_message_and_recipient(bob: PrivateIdentity) -> None:
    label = wrapped_key_label(MESSAGE_ID, "bob")
    assert label == canonical("securechat/v1/wrapped-key", [MESSAGE_ID, "bob"])
    wrapped = rsa_oaep_encrypt(bob.encryption_private.public_key(), bytes(32), label)
    assert rsa_oaep_decrypt(bob.encryption_private, wrapped, label) == bytes(32)
    for other in (wrapped_key_label(MESSAGE_ID, "carol"), wrapped_key_label(new_message_id(), "bob")):
        with pytest.raises(VerificationFailed):
            rsa_oaep_decrypt(bob.encryption_private, wrapped, other)


def test_signature_input_layout(group_envelope: Envelope) -> None:
    """Byte-exact: header, IV, ciphertext, key count, then (recipient, wrapped key) pairs."""
    pairs: list[bytes | str] = []
    for key in group_envelope.keys:
        pairs.extend((key.recipient, key.wrapped_key))
    assert group_envelope.signed_bytes() == canonical(
        "securechat/v1/message-signature",
        [group_envelope.header.canonical(), group_envelope.iv, group_envelope.ciphertext, u64(3), *pairs],
    )


def test_signature_covers_recipient_names(
    alice: PrivateIdentity, bob: PrivateIdentity, group_wire: dict[str, Any]
) -> None:
    """A server renaming a recipient (and lying to bob about the members to match) is caught."""
    wire = copy.deepcopy(group_wire)
    wire["keys"][2]["recipient"] = "carl"
    renamed = Envelope.from_wire(wire)
    with pytest.raises(VerificationFailed):
        open_as(renamed, bob, sender=alice.public, conversation_id=GROUP_ID, members={"alice", "bob", "carl"})


def test_signature_input_is_independent_of_key_order(group_envelope: Envelope) -> None:
    header, iv, ciphertext, keys = (
        group_envelope.header,
        group_envelope.iv,
        group_envelope.ciphertext,
        group_envelope.keys,
    )
    assert signature_input(header, iv, ciphertext, keys) == signature_input(
        header, iv, ciphertext, keys[::-1]
    )


# --- routing, membership and the pinned sender ----------------------------------------


def test_rerouted_to_another_conversation_fails(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    """The server delivers a genuine envelope into a conversation it was not sent to."""
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, bob, sender=alice.public, conversation_id=OTHER_GROUP_ID, members=group)


def test_direct_message_replayed_into_a_group_fails(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    direct = direct_conversation_id(alice.username, bob.username)
    envelope = seal_message(alice, direct, directory(alice, bob), PAYLOAD)
    with pytest.raises(VerificationFailed):
        open_as(envelope, bob, sender=alice.public, conversation_id=GROUP_ID, members=names(alice, bob))


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"alice", "bob", "carol", "mallory"}, id="extra-member"),
        pytest.param({"alice", "bob"}, id="missing-member"),
        pytest.param({"bob", "carol"}, id="missing-sender"),
        pytest.param({"alice", "bob", "mallory"}, id="member-replaced"),
    ],
)
def test_recipients_must_match_the_members(
    alice: PrivateIdentity, bob: PrivateIdentity, group_envelope: Envelope, members: set[str]
) -> None:
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, bob, sender=alice.public, conversation_id=GROUP_ID, members=members)


def test_sender_must_be_a_member(
    alice: PrivateIdentity, bob: PrivateIdentity, group_envelope: Envelope
) -> None:
    """An envelope with no key for its sender, opened by members who agree on that."""
    without_sender = resign(
        replace(group_envelope, keys=tuple(k for k in group_envelope.keys if k.recipient != "alice")), alice
    )
    with pytest.raises(VerificationFailed):
        open_as(without_sender, bob, sender=alice.public, conversation_id=GROUP_ID, members={"bob", "carol"})


def test_non_recipient_cannot_open(
    alice: PrivateIdentity, mallory: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, mallory, sender=alice.public, conversation_id=GROUP_ID, members=group)


def test_wrong_pinned_sender_key_fails(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    mallory: PrivateIdentity,
    group: frozenset[Username],
    group_envelope: Envelope,
) -> None:
    """Keys the server swapped in under alice's name do not verify alice's message."""
    impostor = replace(mallory.public, username=alice.username)
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, bob, sender=impostor, conversation_id=GROUP_ID, members=group)


def test_pinned_identity_of_another_user_fails(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    carol: PrivateIdentity,
    group: frozenset,
    group_envelope: Envelope,
) -> None:
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, bob, sender=carol.public, conversation_id=GROUP_ID, members=group)


def test_header_sender_must_be_the_pinned_identity(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    carol: PrivateIdentity,
    mallory: PrivateIdentity,
    group: frozenset[Username],
) -> None:
    """Mallory signs, with her own key, a header naming alice as the sender.

    The server says the message is from mallory, so bob checks mallory's pinned key,
    and the signature is good; the header must still not be shown as alice's.
    """
    members = names(alice, bob, carol, mallory)
    forger = PrivateIdentity.from_private_keys(
        alice.username, mallory.signing_private, mallory.encryption_private
    )
    forged = seal_message(forger, GROUP_ID, directory(alice, bob, carol, mallory), PAYLOAD)
    assert forged.header.sender == "alice"
    with pytest.raises(VerificationFailed):
        open_as(forged, bob, sender=mallory.public, conversation_id=GROUP_ID, members=members)


def test_malformed_pinned_signing_key_fails_opaquely(
    alice: PrivateIdentity, bob: PrivateIdentity, group: frozenset[Username], group_envelope: Envelope
) -> None:
    broken = replace(alice.public, signing_key=b"\x30\x00")
    with pytest.raises(VerificationFailed):
        open_as(group_envelope, bob, sender=broken, conversation_id=GROUP_ID, members=group)


def test_forged_sender_fails(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    carol: PrivateIdentity,
    mallory: PrivateIdentity,
    group: frozenset[Username],
) -> None:
    """Mallory seals as 'alice' with her own keys; bob checks against alice's pinned keys."""
    forger = PrivateIdentity.from_private_keys(
        alice.username, mallory.signing_private, mallory.encryption_private
    )
    forged = seal_message(forger, GROUP_ID, directory(alice, bob, carol), PAYLOAD)
    with pytest.raises(VerificationFailed):
        open_group_as_bob(forged, alice, bob, group)


# --- a hostile member's plaintext --------------------------------------------------------


def test_hand_sealed_envelope_opens(
    alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity, group: frozenset[Username]
) -> None:
    """The control for the tests below: ``seal_padded`` with honest plaintext opens."""
    envelope = seal_padded(alice, GROUP_ID, (alice, bob, carol), pad(encode_payload(PAYLOAD)))
    assert open_group_as_bob(envelope, alice, bob, group) == PAYLOAD


def _framed(body: bytes, size: int = 256) -> bytes:
    return (len(body).to_bytes(4, "big") + body).ljust(size, b"\x00")


HOSTILE_PLAINTEXTS = {
    "non-zero-padding": pad(b'{"type":"text"}')[:-1] + b"\x01",
    "length-beyond-buffer": (1000).to_bytes(4, "big") + bytes(252),
    "not-a-bucket-size": _framed(b'{"type":"text"}', 300),
    "too-short-for-a-bucket": _framed(b'{"type":"text"}', 128),
    "not-utf8": _framed(b'{"type":"\xff"}'),
    "not-json": _framed(b"hello"),
    "json-list": _framed(b'["type"]'),
    "json-nan": _framed(b'{"type":"text","n":NaN}'),
    "json-infinity": _framed(b'{"type":"text","n":-Infinity}'),
    "missing-type": _framed(b'{"text":"hi"}'),
    "type-not-a-string": _framed(b'{"type":1}'),
    "text-not-a-string": _framed(b'{"type":"text","text":["hi"]}'),
    "deeply-nested": pad(b'{"type":"text","x":' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
}


@pytest.mark.parametrize("padded", HOSTILE_PLAINTEXTS.values(), ids=HOSTILE_PLAINTEXTS.keys())
def test_hostile_plaintext_fails_opaquely(
    alice: PrivateIdentity,
    bob: PrivateIdentity,
    carol: PrivateIdentity,
    group: frozenset[Username],
    padded: bytes,
) -> None:
    envelope = seal_padded(alice, GROUP_ID, (alice, bob, carol), padded)
    with pytest.raises(VerificationFailed):
        open_group_as_bob(envelope, alice, bob, group)


def test_short_message_key_fails(
    alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity, group: frozenset[Username]
) -> None:
    """AES-128 would decrypt; the protocol insists on a 32-byte message key."""
    envelope = seal_padded(
        alice, GROUP_ID, (alice, bob, carol), pad(encode_payload(PAYLOAD)), message_key=bytes(16)
    )
    with pytest.raises(VerificationFailed):
        open_group_as_bob(envelope, alice, bob, group)


# --- sealing refuses bad input ------------------------------------------------------------


def test_seal_requires_the_sender_among_recipients(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    with pytest.raises(MalformedInput, match="sender"):
        seal_message(alice, GROUP_ID, directory(bob), PAYLOAD)


def test_seal_refuses_too_many_recipients(alice: PrivateIdentity) -> None:
    recipients = {Username(f"user{i:03d}"): alice.public for i in range(MAX_MEMBERS)}
    recipients[alice.username] = alice.public
    assert len(recipients) == MAX_MEMBERS + 1
    with pytest.raises(MalformedInput, match="too many"):
        seal_message(alice, GROUP_ID, recipients, PAYLOAD)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "text", "text": "nul\x00here"}, id="nul-in-text"),
        pytest.param({"type": "text", "text": "lone \ud800 surrogate"}, id="surrogate-in-text"),
        pytest.param({"type": "text", "text": "x", "name": "lone \udfff"}, id="surrogate-elsewhere"),
        pytest.param({"type": "text", "text": "x" * (MAX_TEXT_CHARS + 1)}, id="text-too-long"),
        pytest.param({"type": "text", "text": 5}, id="text-not-a-string"),
        pytest.param({"text": "hi"}, id="type-missing"),
        pytest.param({"type": None, "text": "hi"}, id="type-not-a-string"),
        pytest.param({"type": "file", "blob": "x" * MAX_PAYLOAD_BYTES}, id="too-large"),
        pytest.param({"type": "text", "n": float("nan")}, id="nan"),
        pytest.param({"type": "text", "n": float("inf")}, id="infinity"),
    ],
)
def test_seal_refuses_bad_payloads(alice: PrivateIdentity, bob: PrivateIdentity, payload: dict) -> None:
    with pytest.raises(MalformedInput):
        seal_message(alice, GROUP_ID, directory(alice, bob), payload)


def test_longest_text_is_accepted() -> None:
    encoded = encode_payload({"type": "text", "text": "é" * MAX_TEXT_CHARS})
    assert decode_payload(encoded)["text"] == "é" * MAX_TEXT_CHARS


def test_payload_encoding_is_compact_utf8() -> None:
    assert encode_payload({"type": "text", "text": "é"}) == '{"type":"text","text":"é"}'.encode()


def test_decode_payload_accepts_payloads_without_text() -> None:
    assert decode_payload(b'{"type":"read","upto":3}') == {"type": "read", "upto": 3}


# --- padding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload_length", "bucket"),
    [(0, 256), (252, 256), (253, 512), (508, 512), (509, 1024), (MAX_PAYLOAD_BYTES, 128 * 1024)],
)
def test_pad_uses_power_of_two_buckets(payload_length: int, bucket: int) -> None:
    padded = pad(b"x" * payload_length)
    assert len(padded) == bucket == padded_size(payload_length + 4)
    assert unpad(padded) == b"x" * payload_length


def test_padded_size_buckets() -> None:
    assert [padded_size(n) for n in (0, 1, 256, 257, 512, 513, 4096, 4097)] == [
        256,
        256,
        256,
        512,
        512,
        1024,
        4096,
        8192,
    ]


@given(st.binary(max_size=3000))
def test_pad_round_trip(payload: bytes) -> None:
    padded = pad(payload)
    assert len(padded) >= max(256, len(payload) + 4)
    assert len(padded) & (len(padded) - 1) == 0
    assert unpad(padded) == payload


@pytest.mark.parametrize(
    "padded",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x00\x00", id="shorter-than-prefix"),
        pytest.param(bytes(128), id="below-smallest-bucket"),
        pytest.param(bytes(300), id="not-a-bucket"),
        pytest.param(bytes(511), id="one-short-of-a-bucket"),
        pytest.param(pad(b"abc")[:-1] + b"\x01", id="non-zero-last-byte"),
        pytest.param(pad(b"abc")[:7] + b"\x80" + pad(b"abc")[8:], id="non-zero-first-padding-byte"),
        pytest.param((253).to_bytes(4, "big") + bytes(252), id="length-one-past-end"),
        pytest.param(b"\xff\xff\xff\xff" + bytes(252), id="huge-length"),
    ],
)
def test_unpad_rejects(padded: bytes) -> None:
    with pytest.raises(VerificationFailed):
        unpad(padded)


def test_unpad_accepts_a_payload_filling_its_bucket() -> None:
    assert unpad((252).to_bytes(4, "big") + b"y" * 252) == b"y" * 252


# --- Envelope.from_wire strictness ------------------------------------------------------------


def _keys(*recipients: str) -> list[dict[str, str]]:
    return [{"recipient": name, "wrapped_key": b64encode(bytes(256))} for name in recipients]


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        wire[field] = value

    return change


def _delete(field: str) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        del wire[field]

    return change


def _set_key(index: int, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(wire: dict[str, Any]) -> None:
        wire["keys"][index][field] = value

    return change


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "extra-field": _set("extra", 1),
    **{f"missing-{field}": _delete(field) for field in sorted(ENVELOPE_FIELDS)},
    "v-bool": _set("v", True),
    "v-string": _set("v", "1"),
    "v-float": _set("v", 1.0),
    "message_id-upper-case": _set("message_id", MESSAGE_ID.upper()),
    "message_id-not-uuid4": _set("message_id", "0f8fad5b-d9cb-169f-a165-70867728950e"),
    "conversation_id-malformed": _set("conversation_id", "grp-xyz"),
    "sender-not-normalised": _set("sender", "Alice"),
    "sender-invalid": _set("sender", "a"),
    "sender-not-a-string": _set("sender", 5),
    "sent_at-negative": _set("sent_at", -1),
    "sent_at-bool": _set("sent_at", True),
    "sent_at-float": _set("sent_at", float(SENT_AT)),
    "sent_at-string": _set("sent_at", str(SENT_AT)),
    "sent_at-beyond-2^53": _set("sent_at", 2**53),
    "iv-11-bytes": _set("iv", b64encode(bytes(11))),
    "iv-13-bytes": _set("iv", b64encode(bytes(13))),
    "iv-16-bytes": _set("iv", b64encode(bytes(16))),
    "iv-not-a-string": _set("iv", None),
    "iv-unpadded-base64": _set("iv", b64encode(bytes(12)).rstrip("=") + "A"),
    "ciphertext-bad-base64": _set("ciphertext", "AAA*"),
    "ciphertext-too-long": _set("ciphertext", b64encode(bytes(MAX_CIPHERTEXT_BYTES + 1))),
    "signature-63-bytes": _set("signature", b64encode(bytes(63))),
    "signature-65-bytes": _set("signature", b64encode(bytes(65))),
    "signature-empty": _set("signature", ""),
    "keys-not-a-list": _set("keys", {"bob": "AAAA"}),
    "keys-empty": _set("keys", []),
    "keys-too-many": _set("keys", _keys(*(f"user{i:03d}" for i in range(MAX_MEMBERS + 1)))),
    "keys-unsorted": _set("keys", _keys("bob", "alice", "carol")),
    "keys-duplicate": _set("keys", _keys("alice", "bob", "bob", "carol")),
    "key-not-an-object": _set("keys", ["alice"]),
    "key-extra-field": _set_key(0, "extra", "x"),
    "key-recipient-not-normalised": _set_key(1, "recipient", "Bob"),
    "key-recipient-not-a-string": _set_key(1, "recipient", None),
    "key-wrapped-key-not-a-string": _set_key(1, "wrapped_key", 1),
    "key-wrapped-key-too-long": _set_key(1, "wrapped_key", b64encode(bytes(513))),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_from_wire_rejects_malformed_envelopes(
    group_wire: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    wire = copy.deepcopy(group_wire)
    change(wire)
    with pytest.raises(MalformedInput):
        Envelope.from_wire(wire)


def test_from_wire_rejects_a_key_without_wrapped_key(group_wire: dict[str, Any]) -> None:
    wire = copy.deepcopy(group_wire)
    del wire["keys"][0]["wrapped_key"]
    with pytest.raises(MalformedInput):
        Envelope.from_wire(wire)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_from_wire_refuses_other_versions(group_wire: dict[str, Any], version: int) -> None:
    with pytest.raises(UnsupportedVersion):
        Envelope.from_wire({**group_wire, "v": version})


@pytest.mark.parametrize("data", [None, [], "envelope", 1])
def test_from_wire_needs_an_object(data: object) -> None:
    with pytest.raises(MalformedInput):
        Envelope.from_wire(data)


def test_from_wire_accepts_the_limits(group_wire: dict[str, Any]) -> None:
    wire = {
        **group_wire,
        "sent_at": 2**53 - 1,
        "ciphertext": b64encode(bytes(MAX_CIPHERTEXT_BYTES)),
        "keys": _keys(*(f"user{i:03d}" for i in range(MAX_MEMBERS))),
    }
    envelope = Envelope.from_wire(wire)
    assert len(envelope.keys) == MAX_MEMBERS
    assert envelope.header.sent_at == 2**53 - 1


def test_to_json_equals_compact_json_of_the_wire_form(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    conversation = direct_conversation_id(alice.username, bob.username)
    for text in ("", "hello", "x" * 5000):
        sealed = seal_message(
            alice,
            conversation,
            {alice.username: alice.public, bob.username: bob.public},
            {"type": "text", "text": text},
        )
        expected = json.dumps(sealed.to_wire(), separators=(",", ":"))
        assert sealed.to_json() == expected
        assert Envelope.from_wire(json.loads(expected)).to_json() == expected
