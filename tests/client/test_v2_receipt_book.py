"""The terminal client's v2 receipt book (client/v2/receipts.py, PROTOCOL.md 15.17),
without a server: what it receipts, in how many receipts, and what it leaves out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from securechat.client.state import StateStore
from securechat.client.v2.receipts import DEFAULT_PAUSE_S, RECEIPT_INTERVAL_S, RECEIPTS_PER_MINUTE, V2Receipts
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


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paced(tmp_path: Path) -> tuple[V2Receipts, Clock]:
    clock = Clock()
    return V2Receipts(StateStore(tmp_path / "home-bob"), clock), clock


def ids_of(taken: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, list[str]]]:
    return [(peer, payload["status"], payload["message_ids"]) for peer, payload in taken]


def test_delivered_receipts_go_per_peer_in_batches_of_100_once(tmp_path: Path) -> None:
    book, clock = paced(tmp_path)
    ids = sorted(str(new_message_id()) for _ in range(150))
    for message_id in ids:
        book.delivered("alice", message_id)
    first = book.take_due()
    assert [(peer, payload["status"], len(payload["message_ids"])) for peer, payload in first] == [
        ("alice", "delivered", 100),
    ]
    # The other 50 wait for the peer's next batch.
    assert book.take_due() == []
    clock.now += RECEIPT_INTERVAL_S
    second = book.take_due()
    assert [m for _, payload in first + second for m in payload["message_ids"]] == ids
    clock.now += RECEIPT_INTERVAL_S
    assert book.take_due() == []


def test_a_trickle_of_messages_from_a_peer_makes_one_receipt_per_interval(tmp_path: Path) -> None:
    book, clock = paced(tmp_path)
    sent = []
    # One message a second from alice for a minute, the inbox read after each.
    for _ in range(60):
        book.delivered("alice", str(new_message_id()))
        sent += book.take_due()
        clock.now += 1.0
    assert len(sent) == 60 / RECEIPT_INTERVAL_S
    # Nothing was lost: the last ones go with the next batch.
    clock.now += RECEIPT_INTERVAL_S
    sent += book.take_due()
    assert sum(len(payload["message_ids"]) for _, payload in sent) == 60


def test_many_peers_spend_at_most_the_minutes_allowance_and_keep_the_rest(tmp_path: Path) -> None:
    book, clock = paced(tmp_path)
    peers = [f"peer{n:03}" for n in range(3 * RECEIPTS_PER_MINUTE)]
    for peer in peers:
        book.delivered(peer, str(new_message_id()))
    assert len(book.take_due()) == RECEIPTS_PER_MINUTE
    clock.now += 30.0
    assert book.take_due() == []
    clock.now += 30.0
    assert len(book.take_due()) == RECEIPTS_PER_MINUTE
    assert len(book.pending()) == RECEIPTS_PER_MINUTE


def test_a_receipt_refused_with_429_keeps_its_ids_and_waits_for_the_server(tmp_path: Path) -> None:
    book, clock = paced(tmp_path)
    first, later = sorted(str(new_message_id()) for _ in range(2))
    book.delivered("alice", first)
    [(peer, payload)] = book.take_due()
    book.refused(peer, payload, retry_after_ms=20_000)
    book.delivered("alice", later)
    book.queue("carol", "read", [later])
    # Nothing at all goes before the server's wait is over.
    clock.now += 19.0
    assert book.take_due() == []
    clock.now += 1.0
    assert ids_of(book.take_due()) == [("alice", "delivered", [first, later]), ("carol", "read", [later])]


def test_a_429_for_the_users_own_message_pauses_receipts_too(tmp_path: Path) -> None:
    book, clock = paced(tmp_path)
    book.pause(None)
    book.delivered("alice", str(new_message_id()))
    clock.now += DEFAULT_PAUSE_S - 1
    assert book.take_due() == []
    clock.now += 1
    assert len(book.take_due()) == 1


def test_delivered_and_read_are_paced_apart(tmp_path: Path) -> None:
    book, _ = paced(tmp_path)
    message_id = str(new_message_id())
    book.delivered("alice", message_id)
    assert len(book.take_due()) == 1
    # A read right after its delivered goes at once: it is another batch.
    book.queue("alice", "read", [message_id])
    assert ids_of(book.take_due()) == [("alice", "read", [message_id])]


def test_read_receipts_name_only_messages_of_others_not_read_on_another_device(tmp_path: Path) -> None:
    from_alice, mine, read_elsewhere = (str(new_message_id()) for _ in range(3))
    book, _ = book_with(tmp_path, [(from_alice, "alice"), (mine, "bob"), (read_elsewhere, "alice")])
    book.read_elsewhere([read_elsewhere])
    assert book.read("bob", DM, [from_alice, mine, read_elsewhere, str(new_message_id())]) == [
        ("alice", {"type": "receipt", "status": "read", "message_ids": [from_alice]})
    ]
    other = direct_conversation_id(Username("bob"), Username("carol"))
    assert book.read("bob", other, [from_alice]) == []
