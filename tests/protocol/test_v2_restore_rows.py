"""Which rows a restored history backup adds (PROTOCOL.md 15.10.1, ``restore_rows``): the
row check of a device hand-over (15.10.2, ``row_fits``) applied row by row, group rows
and rows that fail skipped and counted, a repeated message id kept once; the shared
vectors (``link_v2_vectors.json``, section ``restore_rows``), which the browser's
``restoreRows`` passes too (tests/js/core_v2_restore_rows.test.mjs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.client.core.v2.backup import restore_rows
from securechat.client.core.v2.link import MAX_ROW_TEXT_BYTES, row_fits
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import BackupMessage

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "link_v2_vectors.json").read_text())["link"]
WITH_BOB = direct_conversation_id(Username("alice"), Username("bob"))


@pytest.mark.parametrize("case", VECTORS["restore_rows"], ids=lambda c: c["name"])
def test_the_restored_rows(case: dict[str, Any]) -> None:
    sorted_rows = restore_rows(case["username"], [BackupMessage(**row) for row in case["messages"]])
    got = {
        "kept": [[m.message_id, m.peer] for m in sorted_rows.rows],
        "group": sorted_rows.group,
        "unfit": sorted_rows.unfit,
        "repeated": sorted_rows.repeated,
    }
    assert got == case["expected"]
    # Every row kept is one a hand-over would take; every row is kept or counted once.
    assert all(row_fits(case["username"], m) for m in sorted_rows.rows)
    total = len(sorted_rows.rows) + sorted_rows.group + sorted_rows.unfit + sorted_rows.repeated
    assert total == len(case["messages"])


def row(text: str) -> BackupMessage:
    return BackupMessage("0b0e6c6e-3f7a-4c1e-9d0a-000000000001", WITH_BOB, "bob", "bob", 1, 2, text)


def test_a_text_is_measured_in_utf8_bytes_and_must_be_well_formed() -> None:
    assert row_fits("alice", row("x" * MAX_ROW_TEXT_BYTES))
    assert not row_fits("alice", row("x" * (MAX_ROW_TEXT_BYTES + 1)))
    # 4 bytes a character: fewer characters than the bound, more bytes.
    assert not row_fits("alice", row("\U0001f600" * (MAX_ROW_TEXT_BYTES // 4 + 1)))
    assert not row_fits("alice", row("\udfff"))
    assert row_fits("alice", row(""))
