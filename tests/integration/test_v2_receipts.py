"""Delivered and read receipts in v2 direct conversations (PROTOCOL.md 15.17), between
two Python clients and a real server: a receipt is an ordinary v2 message, so only a
listed device of a recipient can move a message's status, and only forward."""

from __future__ import annotations

from securechat.client.core.v2 import receipt_payload
from securechat.client.messenger import Messenger
from securechat.protocol.identifiers import Username, direct_conversation_id

from .conftest import MakeClient

DM = direct_conversation_id(Username("alice"), Username("bob"))


def status(client: Messenger, peer: str, message_id: str) -> str:
    (row,) = [r for r in client.stored_messages(peer) if r["message_id"] == message_id]
    return str(row["status"])


async def v2_pair(make_client: MakeClient) -> tuple[Messenger, Messenger]:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    return alice, bob


async def send(alice: Messenger, text: str) -> str:
    await alice.send_text("bob", text)
    return str(alice.stored_messages("bob")[-1]["message_id"])


async def test_a_v2_message_goes_sent_then_delivered_then_read(make_client: MakeClient) -> None:
    alice, bob = await v2_pair(make_client)
    message_id = await send(alice, "hello over v2")
    assert status(alice, "bob", message_id) == "sent"

    assert [i.text for i in await bob.sync_inbox() if i.kind == "message"] == ["hello over v2"]
    items = await alice.sync_inbox()
    receipts = [i for i in items if i.kind == "receipt"]
    assert [(r.verified, r.recipient, r.status, r.message_ids) for r in receipts] == [
        (True, "bob", "delivered", [message_id])
    ]
    assert status(alice, "bob", message_id) == "delivered"

    assert await bob.mark_read(DM, [message_id]) == 1
    receipts = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(r.recipient, r.status) for r in receipts] == [("bob", "read")]
    assert status(alice, "bob", message_id) == "read"


async def test_a_receipt_is_no_chat_item_and_gets_no_receipt(make_client: MakeClient) -> None:
    alice, bob = await v2_pair(make_client)
    message_id = await send(alice, "one")
    await bob.sync_inbox()
    items = await alice.sync_inbox()
    assert [i.kind for i in items] == ["receipt"]
    # Neither side stored the receipt as a message, and alice sent nothing back for it.
    assert [r["message_id"] for r in alice.stored_messages("bob")] == [message_id]
    assert [r["message_id"] for r in bob.stored_messages("alice")] == [message_id]
    assert await bob.sync_inbox() == []


async def test_read_receipts_off_gives_only_delivered(make_client: MakeClient) -> None:
    alice, bob = await v2_pair(make_client)
    bob.read_receipts = False
    message_id = await send(alice, "read me")
    await bob.sync_inbox()
    assert await bob.mark_read(DM, [message_id]) == 0
    await alice.sync_inbox()
    assert status(alice, "bob", message_id) == "delivered"


async def test_a_status_only_moves_forward(make_client: MakeClient) -> None:
    alice, bob = await v2_pair(make_client)
    message_id = await send(alice, "forward only")
    await bob.sync_inbox()
    await bob.mark_read(DM, [message_id])
    await alice.sync_inbox()
    assert status(alice, "bob", message_id) == "read"
    # A late "delivered", and the same "read" again, change nothing.
    await bob.v2.send("alice", receipt_payload("delivered", [message_id]), keep=False)
    await bob.v2.send("alice", receipt_payload("read", [message_id]), keep=False)
    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(i.verified, i.status) for i in items] == [(True, "delivered"), (True, "read")]
    assert status(alice, "bob", message_id) == "read"


async def test_a_receipt_naming_someone_elses_message_moves_nothing(make_client: MakeClient) -> None:
    alice, bob = await v2_pair(make_client)
    await bob.send_text("alice", "bob's own message")
    bobs = str(bob.stored_messages("alice")[-1]["message_id"])
    await alice.sync_inbox()
    await bob.sync_inbox()
    # bob "receipts" his own message to alice: it is not one alice sent.
    await bob.v2.send("alice", receipt_payload("read", [bobs]), keep=False)
    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(i.verified, i.reason) for i in items] == [(False, "not_for_me")]
    assert status(alice, "bob", bobs) == "received"


async def test_a_receipt_from_someone_the_message_was_not_sent_to_moves_nothing(
    make_client: MakeClient,
) -> None:
    alice, _bob = await v2_pair(make_client)
    mallory = await make_client("mallory")
    await mallory.enable_v2()
    message_id = await send(alice, "for bob only")
    # mallory learnt the id (say, from the server) and says she has read it: in her own
    # conversation with alice, where alice sent no such message.
    await mallory.v2.send("alice", receipt_payload("read", [message_id]), keep=False)
    items = [i for i in await alice.sync_inbox() if i.kind == "receipt"]
    assert [(i.verified, i.reason) for i in items] == [(False, "not_for_me")]
    assert status(alice, "bob", message_id) == "sent"
