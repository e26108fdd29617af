"""The Python v2 core against ``tests/data/decisions_v2_vectors.json`` (PROTOCOL.md 10, 15).

Each case is its own test id, built from the JSON inputs alone, as the browser's core
must build them; plus the generator's ``--check`` and checks that the file covers what
it claims (every v2 reason code, the notices, convergence).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from make_v2_decision_vectors import run_receive

from securechat.client.core import REASONS
from securechat.client.core.v2 import accept_bundle, accept_device_list
from securechat.client.core.v2.wire import (
    bundle_decision_to_wire,
    list_decision_to_wire,
    session_set_from_wire,
    sessions_from_wire,
)
from securechat.protocol.encoding import b64decode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.devices import parse_device_list
from securechat.protocol.v2.errors import V2_REASONS

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "decisions_v2_vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", VECTORS["receive"], ids=lambda case: case["name"])
def test_receive(case: dict[str, Any]) -> None:
    assert run_receive(case["input"]) == case["expected"], case["note"]


@pytest.mark.parametrize("case", VECTORS["device_lists"], ids=lambda case: case["name"])
def test_device_list(case: dict[str, Any]) -> None:
    inputs = case["input"]
    accepted = None if inputs["accepted"] is None else parse_device_list(inputs["accepted"])
    decision = accept_device_list(
        inputs["document"], Username(inputs["username"]), b64decode(inputs["pinned_account_key"]), accepted
    )
    assert list_decision_to_wire(decision) == case["expected"], case["note"]


@pytest.mark.parametrize("case", VECTORS["bundles"], ids=lambda case: case["name"])
def test_bundle(case: dict[str, Any]) -> None:
    inputs = case["input"]
    decision = accept_bundle(inputs["bundle"], parse_device_list(inputs["device_list"]), inputs["now"])
    assert bundle_decision_to_wire(decision) == case["expected"], case["note"]


def all_cases() -> list[dict[str, Any]]:
    return [case for name in ("device_lists", "bundles", "receive") for case in VECTORS[name]]


def test_every_v2_reason_code_has_a_case() -> None:
    found = {case["expected"].get("reason") for case in all_cases()}
    assert set(V2_REASONS) - found == set()
    assert found - {None} <= set(REASONS)


def test_the_cases_the_brief_names_are_there() -> None:
    names = {case["name"] for case in VECTORS["receive"]}
    assert {
        "first_message_with_one_time_prekey",
        "first_message_without_one_time_prekey",
        "follow_up_with_setup",
        "out_of_order_earlier_second",
        "duplicate_transport_repeat",
        "replayed_at_another_position",
        "simultaneous_initiation_bob_side",
        "simultaneous_initiation_phone_side",
        "repair_replaces_established_session",
        "evicted_session_id",
        "revoked_device",
        "from_own_other_device",
    } <= names


def by_name(name: str) -> dict[str, Any]:
    return next(case for case in VECTORS["receive"] if case["name"] == name)


def test_simultaneous_initiation_converges_on_the_lower_session_id() -> None:
    bob = session_set_from_wire(by_name("simultaneous_initiation_bob_side")["expected"]["sessions"])
    phone = session_set_from_wire(by_name("simultaneous_initiation_phone_side")["expected"]["sessions"])
    assert bob.active_id is not None and bob.active_id == phone.active_id
    # Each side also kept the other's session, receive-only: the higher id.
    assert bob.previous[0].session_id == phone.previous[0].session_id > bob.active_id


def test_refusals_carry_repair_needed_only_for_session_unknown_and_ratchet_failed() -> None:
    for case in VECTORS["receive"]:
        expected = case["expected"]
        if expected["outcome"] == "refused":
            assert expected["repair_needed"] == (expected["reason"] in {"session_unknown", "ratchet_failed"})


def test_a_repair_is_noticed_and_a_late_setup_is_not() -> None:
    assert by_name("repair_replaces_established_session")["expected"]["notices"] == ["session_repaired"]
    late = by_name("older_setup_delivered_late")
    before = sessions_from_wire(late["input"]["sessions"])
    after = session_set_from_wire(late["expected"]["sessions"])
    (current,) = before.values()
    assert late["expected"]["notices"] == []
    assert after.active_id == current.active_id


def test_the_vector_file_is_what_the_generator_makes() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_v2_decision_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
