"""The account key sealed under the password (PROTOCOL.md 15.11) against the vectors that
the browser's module passes too (tests/js/protocol_v2_account_key_seal.test.mjs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.protocol import errors
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.account_key_seal import open_account_key, seal_account_key

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "account_key_seal_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_sealing_gives_the_vector_and_opens(case: dict[str, Any]) -> None:
    wrap, seed = bytes.fromhex(case["wrap_key"]), bytes.fromhex(case["seed"])
    sealed = seal_account_key(wrap, Username(case["username"]), seed, bytes.fromhex(case["iv"])).to_wire()
    assert sealed == case["sealed"]
    assert open_account_key(wrap, Username(case["username"]), case["sealed"]) == seed


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_a_bad_seal_does_not_open(case: dict[str, Any]) -> None:
    with pytest.raises(getattr(errors, case["error"])):
        open_account_key(bytes.fromhex(case["wrap_key"]), Username(case["username"]), case["sealed"])
