"""The terminal client's v2 receipt book (client/v2/receipts.py, PROTOCOL.md 15.17),
without a server: what it receipts, in how many receipts, and what it leaves out."""

from __future__ import annotations

import json
from pathlib import Path

from securechat.client.state import StateStore
from securechat.client.v2.receipts import V2Receipts
from securechat.protocol.identifiers import Username, direct_conversation_id, new_message_id

DM = direct_conversation_id(Username("alice"), Username("bob"))


def book_with(tmp_path: Path, rows: list[tuple[str, str]]) -> tuple[V2Receipts, list[str]]:
    """bob's home with these (message id, sender) rows in his conversation with alice."""
    state = StateStore(tmp_path / "home-bob")
    ids = []
    for index, (message_id, sender) in enumerate(rows):
        state.add_message(
            seq=None,
            message_id=message_id,
            conversation_id=DM,
            sender=sender,
            peer="alice",
            text=f"m{index}",
            sent_at=index,
            server_ts=index,
            verified=1,
            status="received" if sender != "bob" else "sent",
            recipients=json.dumps(["alice", "bob"]),
        )
        ids.append(message_id)
    return V2Receipts(state), ids


def test_delivered_receipts_go_per_peer_in_batches_of_100_once(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, [])
    ids = sorted(str(new_message_id()) for _ in range(150))
    for message_id in ids:
        book.delivered("alice", message_id)
    taken = book.take_delivered()
    assert [(peer, payload["status"], len(payload["message_ids"])) for peer, payload in taken] == [
        ("alice", "delivered", 100),
        ("alice", "delivered", 50),
    ]
    assert [m for _, payload in taken for m in payload["message_ids"]] == ids
    assert book.take_delivered() == []


def test_read_receipts_name_only_messages_of_others_not_read_on_another_device(tmp_path: Path) -> None:
    from_alice, mine, read_elsewhere = (str(new_message_id()) for _ in range(3))
    book, _ = book_with(tmp_path, [(from_alice, "alice"), (mine, "bob"), (read_elsewhere, "alice")])
    book.read_elsewhere([read_elsewhere])
    assert book.read("bob", DM, [from_alice, mine, read_elsewhere, str(new_message_id())]) == [
        ("alice", {"type": "receipt", "status": "read", "message_ids": [from_alice]})
    ]
    other = direct_conversation_id(Username("bob"), Username("carol"))
    assert book.read("bob", other, [from_alice]) == []
