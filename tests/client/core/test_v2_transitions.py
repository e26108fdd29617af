"""The identity-transition decision (PROTOCOL.md 15.11) against the vectors
(``identity_transitions`` in tests/data/decisions_v2_vectors.json), plus what a rotation
does to the sessions of devices that stay listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.client.core.v2 import (
    IdentityPin,
    TransitionAccepted,
    accept_identity_transition,
    rotation_drop_sessions,
)
from securechat.client.core.v2.transitions import (
    current_key_from_wire,
    pin_from_wire,
    transition_decision_to_wire,
)
from securechat.protocol.encoding import b64decode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import certify_device, sign_device_list
from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.protocol.v2.transitions import make_transition, parse_transition

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "decisions_v2_vectors.json").read_text(encoding="utf-8"))
CASES = VECTORS["identity_transitions"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["name"])
def test_identity_transition(case: dict[str, Any]) -> None:
    inputs = case["input"]
    decision = accept_identity_transition(
        pin_from_wire(inputs["pin"]), current_key_from_wire(inputs["current_key"]), inputs["transitions"]
    )
    assert transition_decision_to_wire(decision) == case["expected"], case["note"]


def test_the_cases_the_brief_names_are_there_and_every_outcome_is_reached() -> None:
    names = {case["name"] for case in CASES}
    assert {
        "valid_single_step",
        "valid_two_steps",
        "chain_not_starting_at_pin",
        "broken_link",
        "missing_new_signature",
        "wrong_new_signature",
        "old_signature_by_another_key",
        "rollback_older_transition_replayed",
        "rollback_not_newer_than_pin",
        "another_username",
        "small_order_new_key",
        "unsigned_key_change",
    } <= names
    reasons = {case["expected"].get("reason", case["expected"]["outcome"]) for case in CASES}
    assert reasons == {
        "accepted",
        "unchanged",
        "key_changed",
        "transition_invalid",
        "bad_signature",
        "malformed",
        "unsupported_version",
    }


def test_an_accepted_transition_always_clears_the_verified_mark() -> None:
    for case in CASES:
        if case["expected"]["outcome"] == "accepted":
            assert case["input"]["pin"]["verified"] or case["name"] == "valid_after_an_earlier_transition"
            assert case["expected"]["pin"]["verified"] is False


def test_signing_cases_are_what_make_transition_gives() -> None:
    for case in VECTORS["identity_transition_signing"]:
        made = make_transition(
            b64decode(case["old_seed"]), b64decode(case["new_seed"]), Username(case["username"]), case["at"]
        )
        assert made.to_wire() == case["transition"]
        assert made.signed_bytes.hex() == case["signed_bytes"]
        assert parse_transition(case["transition"]) == made


SEEDS = [bytes([n]) * 32 for n in range(1, 6)]
KEYS = [ed25519_raw_public(seed) for seed in SEEDS]
ALICE = Username("alice")


def test_a_replayed_chain_is_refused_once_its_end_is_pinned() -> None:
    """Re-applying an accepted chain to the pin it produced must not be accepted again
    (the chain no longer starts at the pin): the server cannot re-show the notice or
    move the pin back."""
    chain = [make_transition(SEEDS[i], SEEDS[i + 1], ALICE, 1000 + i).to_wire() for i in range(3)]
    first = accept_identity_transition(IdentityPin(ALICE, KEYS[0], None, True), KEYS[3], chain)
    assert isinstance(first, TransitionAccepted)
    assert first.pin == IdentityPin(ALICE, KEYS[3], 1002, False)
    for start in range(3):
        again = accept_identity_transition(first.pin, KEYS[start + 1], chain[start:])
        assert again.outcome == "refused"
    assert accept_identity_transition(first.pin, KEYS[3], []).outcome == "unchanged"


def test_sixteen_steps_are_accepted() -> None:
    seeds = [bytes([n]) * 32 for n in range(1, 18)]
    chain = [make_transition(seeds[i], seeds[i + 1], ALICE, 10 + i).to_wire() for i in range(16)]
    decision = accept_identity_transition(
        IdentityPin(ALICE, ed25519_raw_public(seeds[0]), None, False), ed25519_raw_public(seeds[16]), chain
    )
    assert isinstance(decision, TransitionAccepted) and decision.steps == 16


def _device(account_seed: bytes, name: int, created_at: int = 5) -> Any:
    return certify_device(
        account_seed, ALICE, ed25519_raw_public(bytes([name]) * 32), bytes([name]) * 32, created_at
    )


def test_sessions_with_devices_still_listed_survive_a_rotation() -> None:
    before = sign_device_list(SEEDS[0], ALICE, 3, 100, [_device(SEEDS[0], 10), _device(SEEDS[0], 11)])
    after = sign_device_list(
        SEEDS[1],
        ALICE,
        4,
        200,
        [_device(SEEDS[1], 10), _device(SEEDS[1], 11, created_at=6), _device(SEEDS[1], 12)],
    )
    kept, recreated = _device(SEEDS[0], 10).device_id, _device(SEEDS[0], 11).device_id
    # Certificates differ (a new key signed them), yet only the device whose entry changed goes.
    assert before.device(kept).certificate != after.device(kept).certificate
    assert rotation_drop_sessions(before, after) == (recreated,)
    gone = sign_device_list(SEEDS[1], ALICE, 5, 300, [_device(SEEDS[1], 12)])
    assert set(rotation_drop_sessions(before, gone)) == {kept, recreated}
