"""Receipts are signed by their reader (PROTOCOL.md 9.3, 14.7), against a real server
process. A server that makes up, alters or misattributes a "delivered" or "read" receipt
(here: by writing inbox entries into its own database) moves no message forward;
genuine receipts still do, end to end."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from securechat.client.messenger import Messenger
from securechat.client.realtime import InboxSocket
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity
from securechat.protocol.receipts import make_receipt

from .conftest import MakeClient, next_item
from .test_server_attacks import db


def status_of(client: Messenger, message_id: str) -> str:
    (row,) = [r for r in client.stored_messages() if r["message_id"] == message_id]
    return str(row["status"])


def insert_receipt(connection: sqlite3.Connection, username: str, data: dict[str, Any]) -> int:
    """What a malicious server does: append a receipt entry to a user's inbox."""
    (user_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = ?",
        (username,),
    ).fetchone()
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, data, created_at)"
        " VALUES (?, ?, 'receipt', NULL, ?, 0)",
        (user_id, head + 1, json.dumps(data, separators=(",", ":"))),
    )
    return int(head + 1)


async def test_receipts_the_server_makes_up_move_nothing(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    await make_client("bob")
    sent = (await alice.send_text("bob", "did you read this?"))["message_id"]

    # Bob has not even fetched it; the server claims he has it, and has read it.
    connection = db(live_server)
    for status in ("delivered", "read"):
        insert_receipt(
            connection, "alice", {"message_ids": [sent], "recipient": "bob", "status": status, "at": 1}
        )
    await alice.sync_inbox()

    assert status_of(alice, sent) == "sent"


def receipt_entries(connection: sqlite3.Connection, username: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        "SELECT e.data FROM inbox_entries e JOIN users u ON u.id = e.user_id"
        " WHERE u.username = ? AND e.kind = 'receipt' ORDER BY e.seq",
        (username,),
    ).fetchall()
    return [json.loads(data) for (data,) in rows]


async def test_altered_or_misattributed_signed_receipts_move_nothing(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    bob = await make_client("bob")
    mallory = await make_client("mallory")
    await alice.send_text("mallory", "so that alice has mallory's keys pinned")
    sent = (await alice.send_text("bob", "for bob only"))["message_id"]
    conversation = direct_conversation_id(alice.username, bob.username)

    await bob.sync_inbox()  # bob's client signs "delivered"
    items = await alice.sync_inbox()
    assert [(i.recipient, i.status, i.verified) for i in items if i.kind == "receipt"] == [
        ("bob", "delivered", True)
    ]
    assert status_of(alice, sent) == "delivered"

    connection = db(live_server)
    [genuine] = receipt_entries(connection, "alice")
    assert genuine["receipt"]["reader"] == "bob" and genuine["receipt"]["message_ids"] == [sent]
    # The server turns bob's "delivered" into "read" (its view and the signed receipt alike).
    altered = {**genuine, "status": "read", "receipt": {**genuine["receipt"], "status": "read"}}
    insert_receipt(connection, "alice", altered)
    # It signs a "read" in bob's name with a key of its own.
    impostor = PrivateIdentity.generate(Username("bob"))
    forged = make_receipt(impostor, conversation, "read", [sent]).to_wire()
    insert_receipt(connection, "alice", {**genuine, "status": "read", "receipt": forged})
    # Mallory (a real user, pinned by alice) validly signs that she read alice's message to bob.
    assert mallory.identity is not None
    mallorys = make_receipt(mallory.identity, conversation, "read", [sent]).to_wire()
    insert_receipt(
        connection, "alice", {**genuine, "recipient": "mallory", "status": "read", "receipt": mallorys}
    )
    # bob's genuine receipt, delivered again: nothing new (it only repeats what is true).
    insert_receipt(connection, "alice", genuine)

    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]

    assert [(i.reason, i.status, i.recipient) for i in items] == [
        ("bad_signature", None, None),
        ("bad_signature", None, None),
        ("wrong_members", None, None),
        (None, "delivered", "bob"),
    ]
    assert status_of(alice, sent) == "delivered"


async def test_genuine_receipts_move_messages_forward_end_to_end(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    first = (await alice.send_text("bob", "one"))["message_id"]
    second = (await alice.send_text("bob", "two"))["message_id"]
    conversation = direct_conversation_id(alice.username, bob.username)

    # Over HTTP: bob syncs (delivered), then reads the second message.
    await bob.sync_inbox()
    assert await bob.mark_read(conversation, [second]) == 1
    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(i.recipient, i.status, sorted(i.message_ids), i.verified) for i in items] == [
        ("bob", "delivered", sorted([first, second]), True),
        ("bob", "read", [second], True),
    ]
    assert (status_of(alice, first), status_of(alice, second)) == ("delivered", "read")
    # Every receipt the server wrote for alice carries bob's signed receipt: bob's client
    # acknowledged as one that signs, so the server made no receipt of its own.
    assert all("receipt" in entry for entry in receipt_entries(db(live_server), "alice"))

    # Over the sockets, live: carol receives, acknowledges and signs; alice sees it.
    alice_socket, carol_socket = InboxSocket(alice), InboxSocket(carol)
    await alice_socket.connect()
    await carol_socket.connect()
    try:
        live = (await alice.send_text("carol", "live"))["message_id"]
        message = await next_item(carol_socket, "message")
        assert message.message_id == live and message.verified
        receipt = await next_item(alice_socket, "receipt")
        assert (receipt.recipient, receipt.status, receipt.message_ids, receipt.verified) == (
            "carol",
            "delivered",
            [live],
            True,
        )
        assert status_of(alice, live) == "delivered"
    finally:
        await carol_socket.close()
        await alice_socket.close()


async def test_a_group_member_s_receipt_and_a_removed_member_s(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, carol = await make_client("alice"), await make_client("carol")
    await make_client("bob")
    group_id = await alice.groups.create("Readers", ["bob", "carol"])
    before = (await alice.send_text(group_id, "while carol is in"))["message_id"]
    await carol.sync_inbox()
    assert await carol.mark_read(group_id, [before]) == 1
    await alice.groups.change(group_id, "remove", ["carol"])
    after = (await alice.send_text(group_id, "after carol left"))["message_id"]
    # The server shows alice a "read" validly signed by carol for a message sealed after
    # her removal (say, carol signed it from an id the server gave her).
    assert carol.identity is not None
    carols = make_receipt(carol.identity, group_id, "read", [after]).to_wire()
    insert_receipt(
        db(live_server),
        "alice",
        {"message_ids": [after], "recipient": "carol", "status": "read", "at": 1, "receipt": carols},
    )

    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]

    # (carol's "delivered" also covers the group's naming message.)
    assert [(i.recipient, i.status, before in i.message_ids, i.reason) for i in items] == [
        ("carol", "delivered", True, None),
        ("carol", "read", True, None),
        (None, None, False, "wrong_members"),
    ]
    assert (status_of(alice, before), status_of(alice, after)) == ("read", "sent")
