"""The terminal client's local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.client.state import StateStore


def sent_message(store: StateStore, message_id: str) -> None:
    store.add_message(
        seq=None,
        message_id=message_id,
        conversation_id="c",
        sender="alice",
        peer="bob",
        text="hello",
        sent_at=1,
        server_ts=2,
        verified=1,
        reason=None,
        status="sent",
    )


def status_of(store: StateStore, message_id: str) -> str:
    return next(row["status"] for row in store.messages("bob") if row["message_id"] == message_id)


@pytest.mark.parametrize(
    ("receipts", "expected"),
    [
        (["delivered"], "delivered"),
        (["delivered", "read"], "read"),
        # The reader acks a moment after it shows the message, so the delivery
        # receipt can come second: it must not take "read" back.
        (["read", "delivered"], "read"),
        (["read", "delivered", "delivered"], "read"),
    ],
)
def test_status_moves_forward_only(tmp_path: Path, receipts: list[str], expected: str) -> None:
    store = StateStore(tmp_path / "home")
    sent_message(store, "m1")
    sent_message(store, "m2")
    for status in receipts:
        store.set_status("m1", status)
    assert status_of(store, "m1") == expected
    assert status_of(store, "m2") == "sent"
