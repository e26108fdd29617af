"""What a client shows of a session's device and whether it offers to revoke it
(PROTOCOL.md 15.16): the cases of tests/data/session_device_vectors.json, which the
browser's core decides alike (tests/js/core_v2_session_devices.test.mjs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.client.core.v2.session_devices import SessionDevice, session_device

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "tests" / "data" / "session_device_vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_session_device_vector(case: dict[str, Any]) -> None:
    decided = session_device(
        case["named_device"], case["current_session"], case["listed_devices"], case["own_device"]
    )
    assert decided == SessionDevice(case["expected"]["kind"], case["expected"]["device_id"])


def test_every_kind_is_covered() -> None:
    assert {case["expected"]["kind"] for case in VECTORS["cases"]} == {
        "none",
        "this_device",
        "hidden",
        "revocable",
    }
