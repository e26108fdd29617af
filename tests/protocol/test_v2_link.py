"""Linking a device (PROTOCOL.md 15.10.2): the shared vectors for the link code, the
choice of the device on the old side, the acceptance on the new side and the archive;
and that every single-character typo of a code is refused before any device matches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from make_v2_link_vectors import outcome

from securechat.client.core.v2.link import (
    accept_history_link,
    check_archive_rows,
    choose_link_target,
    row_fits,
)
from securechat.protocol.encoding import b64decode
from securechat.protocol.v2.backup import ALPHABET, BackupMessage
from securechat.protocol.v2.devices import Device
from securechat.protocol.v2.link import link_code, link_value, open_link_archive, parse_link_code

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "link_v2_vectors.json").read_text())["link"]


def device(wire: dict[str, Any]) -> Device:
    return Device(
        wire["device_id"], b64decode(wire["signing_key"]), b64decode(wire["dh_key"]), wire["created_at"], b""
    )


def test_the_vector_file_is_what_the_generator_makes() -> None:
    script = ROOT / "scripts" / "make_v2_link_vectors.py"
    completed = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("entry", VECTORS["codes"]["codes"], ids=lambda e: e["username"])
def test_link_codes(entry: dict[str, Any]) -> None:
    d = device(entry["device"])
    assert link_value(entry["username"], d).hex() == entry["value_hex"]
    assert link_code(entry["username"], d) == entry["shown"]
    groups = entry["shown"].split("-")
    assert len(groups) == 6 and all(len(g) == 4 and set(g) <= set(ALPHABET) for g in groups)


@pytest.mark.parametrize("case", VECTORS["codes"]["texts"], ids=lambda c: c["name"])
def test_link_code_text_forms(case: dict[str, Any]) -> None:
    assert outcome(lambda: parse_link_code(case["text"])) == case["expected"]
    if case["expected"] == "ok":
        assert parse_link_code(case["text"]).hex() == case["value_hex"]


def test_every_single_character_typo_is_refused() -> None:
    compact = VECTORS["codes"]["codes"][0]["shown"].replace("-", "")
    caught = 0
    for index, original in enumerate(compact):
        for char in ALPHABET:
            if char == original:
                continue
            typed = compact[:index] + char + compact[index + 1 :]
            # A typo either fails the checksum or is another value: never this device's.
            if outcome(lambda typed=typed: parse_link_code(typed)) == "link_code_checksum":
                caught += 1
            else:
                assert parse_link_code(typed).hex() != VECTORS["codes"]["codes"][0]["value_hex"]
    assert caught > 0.99 * 24 * 31


@pytest.mark.parametrize("case", VECTORS["choose"], ids=lambda c: c["name"])
def test_choosing_the_device(case: dict[str, Any]) -> None:
    decision = choose_link_target(
        case["typed"], case["username"], [device(d) for d in case["devices"]], case["this_device"]
    )
    got = decision.device.device_id if decision.outcome == "target" else decision.reason
    assert got == case["expected"]


@pytest.mark.parametrize("case", VECTORS["accept"], ids=lambda c: c["name"])
def test_accepting_a_hand_over(case: dict[str, Any]) -> None:
    decision = accept_history_link(
        username=case["username"],
        device_id=case["device_id"],
        sender=case["sender"],
        sender_device=case["sender_device"],
        conversation_id=case["conversation_id"],
        target_devices=[(t[0], t[1]) for t in case["target_devices"]],
        payload=case["payload"],
        expected_until=case["expected_until"],
        now=case["now"],
    )
    assert (decision.outcome if decision.outcome == "accepted" else decision.reason) == case["expected"]
    if decision.outcome == "accepted":
        assert decision.archive.file_id == case["archive_file_id"]
        assert decision.sender_device == case["sender_device"]


@pytest.mark.parametrize("case", VECTORS["archives"], ids=lambda c: c["name"])
def test_reading_the_archive(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["plaintext_hex"])
    assert outcome(lambda: open_link_archive(data, case["username"])) == case["expected"]
    if case["expected"] == "ok":
        assert [m.text for m in open_link_archive(data, case["username"]).messages] == case["texts"]


@pytest.mark.parametrize("case", VECTORS["rows"], ids=lambda c: c["name"])
def test_the_archive_rows(case: dict[str, Any]) -> None:
    messages = [BackupMessage(**row) for row in case["messages"]]
    decision = check_archive_rows(case["username"], messages)
    assert ("ok" if decision is None else decision.reason) == case["expected"]
    # One row that does not fit refuses the whole archive, and only then.
    assert all(row_fits(case["username"], m) for m in messages) == (case["expected"] == "ok")


def test_only_a_13_byte_value_and_a_version_0_archive_are_made() -> None:
    from securechat.protocol.v2.backup import Archive
    from securechat.protocol.v2.link import encode_link_archive, format_link_code

    assert outcome(lambda: format_link_code(bytes(12))) == "link_code_malformed"
    assert outcome(lambda: encode_link_archive(Archive("alice", 1, 0, ()))) == "link_archive_malformed"
    assert outcome(lambda: encode_link_archive(Archive("alice", 0, 0, ()))) == "ok"
