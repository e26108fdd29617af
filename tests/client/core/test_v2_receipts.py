"""The v2 receipt decision (PROTOCOL.md 15.17): the ``receipts`` cases of
tests/data/decisions_v2_vectors.json, and what the decision must never do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from make_v2_decision_vectors import run_receipt

from securechat.client.core import REASONS, Refused
from securechat.client.core.v2 import (
    ReceiptV2Accepted,
    decide_receipt_v2,
    is_receipt_payload,
    parse_receipt_payload,
    receipt_payload,
)
from securechat.protocol.errors import MalformedInput
from securechat.protocol.identifiers import Username, direct_conversation_id, new_message_id

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "decisions_v2_vectors.json").read_text(encoding="utf-8"))
DM = direct_conversation_id(Username("alice"), Username("bob"))


@pytest.mark.parametrize("case", VECTORS["receipts"], ids=lambda case: case["name"])
def test_receipt_vector(case: dict[str, Any]) -> None:
    assert run_receipt(case["input"]) == case["expected"], case["note"]


def test_the_vectors_cover_every_outcome() -> None:
    found = {case["expected"].get("reason", "accepted") for case in VECTORS["receipts"]}
    assert found == {"accepted", "malformed", "not_for_me", "wrong_members"}
    assert found - {"accepted"} <= set(REASONS)
    assert {case["expected"].get("own") for case in VECTORS["receipts"]} == {True, False, None}


def decide(
    sender: str, payload: object, sent: dict[str, Any], received: dict[str, Any] | None = None
) -> object:
    return decide_receipt_v2(
        sender=sender, conversation_id=DM, payload=payload, me="alice", sent=sent, received=received or {}
    )


def test_a_receipt_moves_only_messages_sealed_for_its_reader() -> None:
    mine, theirs = new_message_id(), new_message_id()
    sent = {DM: {mine: ["alice", "bob"], theirs: ["alice", "carol"]}}
    decision = decide("bob", receipt_payload("read", [mine, theirs]), sent)
    assert isinstance(decision, ReceiptV2Accepted)
    assert decision.message_ids == (mine,)
    assert decision.reader == "bob" and decision.status == "read" and not decision.own


def test_a_receipt_from_a_non_recipient_moves_nothing() -> None:
    message = new_message_id()
    assert decide("bob", receipt_payload("read", [message]), {DM: {message: ["alice", "carol"]}}) == Refused(
        "wrong_members"
    )


def test_a_receipt_naming_someone_elses_message_moves_nothing() -> None:
    # bob's own message, which alice received: alice's "sent" does not hold it.
    message = new_message_id()
    decision = decide("bob", receipt_payload("delivered", [message]), {DM: {}}, {DM: [message]})
    assert decision == Refused("not_for_me")


def test_my_own_device_can_only_mark_received_messages() -> None:
    sent_by_me, received = new_message_id(), new_message_id()
    sent = {DM: {sent_by_me: ["alice", "bob"]}}
    assert decide("alice", receipt_payload("read", [sent_by_me]), sent) == Refused("not_for_me")
    decision = decide("alice", receipt_payload("read", [sent_by_me, received]), sent, {DM: [received]})
    assert isinstance(decision, ReceiptV2Accepted) and decision.own and decision.message_ids == (received,)


def test_receipt_payloads_are_built_sorted_and_bounded() -> None:
    ids = [new_message_id() for _ in range(3)]
    payload = receipt_payload("delivered", [*ids, ids[0]])
    assert payload == {"type": "receipt", "status": "delivered", "message_ids": sorted(ids)}
    assert parse_receipt_payload(payload) == ("delivered", tuple(sorted(ids)))
    with pytest.raises(MalformedInput):
        receipt_payload("read", [new_message_id() for _ in range(101)])
    with pytest.raises(MalformedInput):
        receipt_payload("seen", ids)
    assert is_receipt_payload({"type": "receipt"}) and not is_receipt_payload(
        {"type": "text", "text": "receipt"}
    )
