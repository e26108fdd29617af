"""``receive_envelope_v2`` (an envelope the caller has parsed already) decides every receive
case of ``tests/data/decisions_v2_vectors.json`` exactly as ``receive_direct_v2`` does from
the wire, so a client that parses an entry to load its lists and sessions need not parse
it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from make_v2_decision_vectors import run_receive

from securechat.client.core.v2.receive import receive_envelope_v2
from securechat.client.core.v2.wire import (
    device_lists_from_wire,
    me_from_wire,
    receive_decision_to_wire,
    seen_from_wire,
    sessions_from_wire,
)
from securechat.protocol.errors import ProtocolError
from securechat.protocol.v2.envelope import EnvelopeV2

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "decisions_v2_vectors.json").read_text(encoding="utf-8"))


def parses(entry: object) -> bool:
    try:
        EnvelopeV2.from_wire(entry)
    except ProtocolError:
        return False
    return True


PARSED_CASES = [case for case in VECTORS["receive"] if parses(case["input"]["entry"])]


@pytest.mark.parametrize("case", PARSED_CASES, ids=lambda case: case["name"])
def test_a_parsed_envelope_is_decided_as_its_wire_form(case: dict[str, Any]) -> None:
    inputs = case["input"]
    decision = receive_envelope_v2(
        EnvelopeV2.from_wire(inputs["entry"]),
        me=me_from_wire(inputs["me"]),
        delivered_in=inputs["delivered_in"],
        device_lists=device_lists_from_wire(inputs["device_lists"]),
        seen=seen_from_wire(inputs["seen"]),
        inbox_seq=inputs["inbox_seq"],
        sessions=sessions_from_wire(inputs["sessions"]),
        now=inputs["now"],
    )
    assert receive_decision_to_wire(decision) == run_receive(inputs) == case["expected"]


def test_the_cases_cover_acceptance_and_the_refusals_after_parsing() -> None:
    outcomes = {case["expected"]["outcome"] for case in PARSED_CASES}
    reasons = {case["expected"].get("reason") for case in PARSED_CASES}
    assert {"accepted", "duplicate", "refused"} <= outcomes
    assert {"bad_signature", "ratchet_failed", "not_for_me", "replayed"} <= reasons
    # Only entries that do not parse are left to receive_direct_v2.
    assert all(
        case["expected"].get("reason") in ("malformed", "unsupported_version")
        for case in VECTORS["receive"]
        if case not in PARSED_CASES
    )
