"""The Python core against ``decisions`` of the shared vector file (PROTOCOL.md 14).

Each case is its own test id; the browser's core must pass the same cases
(tests/js/decisions.test.mjs, and the per-case differential test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from securechat.client.core import (
    REASONS,
    MemberHistory,
    NameRecord,
    Pin,
    Refused,
    SeenRecord,
    change_position,
    decide_group_chain,
    decide_group_name,
    decide_invite,
    decide_message,
    decide_own_keys,
    decide_receipt,
    direct_peer,
)
from securechat.protocol.encoding import b64decode
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PublicIdentity

from ...vectors.test_protocol_vectors import private_identity

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "protocol_vectors.json").read_text(encoding="utf-8"))
DECISIONS = VECTORS["decisions"]


def keys_under(username: str, persona: str | None) -> PublicIdentity | None:
    """A persona's keys pinned under ``username`` (a pin need not be that user's real keys)."""
    if persona is None:
        return None
    keys = private_identity(persona).public
    return PublicIdentity(
        Username(username), keys.signing_key, keys.encryption_key, keys.encryption_key_signature
    )


def pins(wire: Mapping[str, Mapping[str, Any]]) -> dict[str, Pin]:
    out = {}
    for username, pin in wire.items():
        identity = keys_under(username, pin["identity"])
        assert identity is not None
        out[username] = Pin(identity, keys_under(username, pin["pending"]))
    return out


def ids(section: list[dict[str, Any]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", section, ids=[case["name"] for case in section])


@ids(DECISIONS["messages"])
def test_message(case: dict[str, Any]) -> None:
    decision = decide_message(
        case["wire"],
        me=private_identity(case["me"]),
        delivered_in=case["delivered_in"],
        pins=pins(case["pins"]),
        groups={group_id: MemberHistory.from_wire(group) for group_id, group in case["groups"].items()},
        seen={mid: SeenRecord(r["signature"], r["seq"]) for mid, r in case["seen"].items()},
        inbox_seq=case["inbox_seq"],
    )
    assert decision.to_wire() == case["expected"], case["note"]


@ids(DECISIONS["group_changes"])
def test_group_change_position(case: dict[str, Any]) -> None:
    result = change_position(case["local"], case["change"])
    assert (result if isinstance(result, str) else result.reason) == case["expected"], case["note"]


@ids(DECISIONS["group_chains"])
def test_group_chain(case: dict[str, Any]) -> None:
    decision = decide_group_chain(
        case["local"], case["offered"], group_id=case["group_id"], pins=pins(case["pins"])
    )
    if isinstance(decision, Refused):
        actual: dict[str, Any] = {"outcome": "refused", "reason": decision.reason}
    else:
        actual = {
            "outcome": "accepted",
            "new": [change.seq for change in decision.new],
            "members": sorted(decision.state.members),
            "admins": sorted(decision.state.admins),
        }
    assert actual == case["expected"], case["note"]


@ids(DECISIONS["group_names"])
def test_group_name(case: dict[str, Any]) -> None:
    info = case["info"]
    decision = decide_group_name(
        NameRecord(**case["current"]) if case["current"] else None,
        sender=info["sender"],
        name=info["name"],
        sent_at=info["sent_at"],
        message_id=info["message_id"],
        group=MemberHistory.from_wire(case["group"]),
    )
    actual = (
        {"outcome": "refused", "reason": decision.reason}
        if isinstance(decision, Refused)
        else {
            "outcome": "accepted",
            "name": decision.name,
            "sent_at": decision.sent_at,
            "message_id": decision.message_id,
        }
    )
    assert actual == case["expected"], case["note"]


@ids(DECISIONS["invites"])
def test_invite(case: dict[str, Any]) -> None:
    decision = decide_invite(
        case["code"], case["answer"], pins=pins(case["pins"]), local=case["local"], now=case["now"]
    )
    actual = (
        {"outcome": "refused", "reason": decision.reason}
        if isinstance(decision, Refused)
        else {
            "outcome": "accepted",
            "group_id": decision.state.group_id,
            "members": sorted(decision.state.members),
        }
    )
    assert actual == case["expected"], case["note"]


@ids(DECISIONS["own_keys"])
def test_own_keys(case: dict[str, Any]) -> None:
    published = case["published"]
    identity = PublicIdentity(
        Username(case["me"]),
        b64decode(published["signing_key"]),
        b64decode(published["encryption_key"]),
        b64decode(published["encryption_key_signature"]),
    )
    result = decide_own_keys(private_identity(case["me"]), identity)
    assert ("accepted" if result is None else result.reason) == case["expected"], case["note"]


@ids(DECISIONS["direct_peers"])
def test_direct_peer(case: dict[str, Any]) -> None:
    assert direct_peer(Username(case["me"]), case["conversation_id"], case["candidates"]) == case["expected"]


@ids(DECISIONS["receipts"])
def test_receipt(case: dict[str, Any]) -> None:
    decision = decide_receipt(case["frame"], me=case["me"], pins=pins(case["pins"]), sent=case["sent"])
    if isinstance(decision, Refused):
        actual: dict[str, Any] = {"outcome": "refused", "reason": decision.reason}
    else:
        actual = {
            "outcome": "accepted",
            "conversation_id": decision.conversation_id,
            "reader": decision.reader,
            "status": decision.status,
            "message_ids": list(decision.message_ids),
        }
    assert actual == case["expected"], case["note"]


def all_expected_reasons() -> set[str]:
    found: set[str] = set()
    # The v2 decisions (PROTOCOL.md 15) have their own file: tests/client/core/test_v2_decisions.py.
    v2 = json.loads((REPO / "tests" / "data" / "decisions_v2_vectors.json").read_text(encoding="utf-8"))
    for section in [
        *DECISIONS.values(),
        *(v2[name] for name in ("device_lists", "bundles", "receive", "identity_transitions")),
    ]:
        for case in section:
            expected = case["expected"]
            if isinstance(expected, dict):
                found.add(expected.get("reason", expected["outcome"]))
            elif isinstance(expected, str):
                found.add(expected)
    return found


def test_every_reason_code_has_a_case() -> None:
    assert set(REASONS) - all_expected_reasons() == set()


def test_protocol_md_lists_exactly_the_reason_codes() -> None:
    text = (REPO / "PROTOCOL.md").read_text(encoding="utf-8")
    table = text[text.index("## 14. Client decisions") : text.index("### 14.1")]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(REASONS)


def test_the_vector_file_is_what_the_generator_makes() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
