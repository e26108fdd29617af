"""Receipts beyond the shared vectors: what the signer refuses to make, and a pin under
another name or with an unusable key never verifies."""

from __future__ import annotations

import dataclasses

import pytest

from securechat.protocol.errors import MalformedInput, VerificationFailed
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity
from securechat.protocol.receipts import MAX_RECEIPT_IDS, Receipt, make_receipt

IDS = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(MAX_RECEIPT_IDS + 1)]


def test_ids_are_sorted_and_deduplicated(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    dm = direct_conversation_id(alice.username, bob.username)
    receipt = make_receipt(bob, dm, "read", [IDS[2], IDS[0], IDS[2]])
    assert receipt.message_ids == (IDS[0], IDS[2])
    assert Receipt.from_wire(receipt.to_wire()) == receipt
    receipt.verify(bob.public)


@pytest.mark.parametrize(
    ("conversation", "status", "ids"),
    [
        ("dm-1", "read", IDS[:1]),
        (None, "seen", IDS[:1]),
        (None, "read", []),
        (None, "read", IDS),
        (None, "read", ["not-an-id"]),
    ],
)
def test_nothing_is_signed_that_no_receiver_could_parse(
    bob: PrivateIdentity, conversation: str | None, status: str, ids: list[str]
) -> None:
    dm = direct_conversation_id(Username("alice"), bob.username)
    with pytest.raises(MalformedInput):
        make_receipt(bob, conversation or dm, status, ids)


def test_a_pin_under_another_name_or_with_a_bad_key_does_not_verify(
    alice: PrivateIdentity, bob: PrivateIdentity
) -> None:
    receipt = make_receipt(bob, direct_conversation_id(alice.username, bob.username), "delivered", IDS[:3])
    # bob's own keys, pinned under alice's name: not bob's pin.
    with pytest.raises(VerificationFailed):
        receipt.verify(dataclasses.replace(bob.public, username=alice.username))
    with pytest.raises(VerificationFailed):
        receipt.verify(dataclasses.replace(bob.public, signing_key=b"\x30\x00"))
    with pytest.raises(VerificationFailed):
        receipt.verify(alice.public)
