"""The inbox (REST), acknowledgements and receipts, conversations and history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import RegisteredUser, RegisterUser
from .support import dm, receipted_ids, seal

INBOX = "/api/v1/inbox"


async def send_text(
    http: httpx.AsyncClient, sender: RegisteredUser, peer: RegisteredUser, text: str
) -> dict[str, Any]:
    envelope = seal(sender.identity, [sender.identity, peer.identity], text)
    response = await http.post("/api/v1/messages", headers=sender.headers, json={"envelope": envelope})
    assert response.status_code == 201, response.text
    return {**response.json(), "envelope": envelope}


async def inbox(
    http: httpx.AsyncClient, user: RegisteredUser, since: int = 0, **params: Any
) -> dict[str, Any]:
    response = await http.get(INBOX, headers=user.headers, params={"since": since, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def pair(register_user: RegisterUser) -> tuple[RegisteredUser, RegisteredUser]:
    return await register_user("alice"), await register_user("bob")


async def test_inbox_lists_messages_in_order(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    sent = [await send_text(http, alice, bob, f"message {i}") for i in range(3)]
    sent.append(await send_text(http, bob, alice, "reply"))

    page = await inbox(http, bob)

    entries = page["entries"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert page["head"] == 4
    assert [e["type"] for e in entries] == ["message"] * 4
    assert [e["message_id"] for e in entries] == [s["message_id"] for s in sent]
    assert [e["sender"] for e in entries] == ["alice", "alice", "alice", "bob"]
    assert all(e["conversation_id"] == dm("alice", "bob") for e in entries)
    assert [e["envelope"] for e in entries] == [s["envelope"] for s in sent]
    assert entries[-1]["seq"] == sent[-1]["seq"]  # bob's own send came back with his seq
    later = await inbox(http, bob, since=2)
    assert [e["seq"] for e in later["entries"]] == [3, 4]
    limited = await inbox(http, bob, since=0, limit=2)
    assert [e["seq"] for e in limited["entries"]] == [1, 2]
    assert limited["head"] == 4


async def test_inbox_is_per_user(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    carol = await register_user("carol")
    await send_text(http, alice, bob, "for bob")

    assert (await inbox(http, carol)) == {"entries": [], "head": 0}
    assert len((await inbox(http, alice))["entries"]) == 1  # the sender's copy


@pytest.mark.parametrize("params", [{"since": -1}, {"since": "x"}, {"limit": 0}, {"limit": 501}])
async def test_inbox_rejects_bad_parameters(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], params: dict[str, Any]
) -> None:
    alice, _bob = pair
    response = await http.get(INBOX, headers=alice.headers, params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_inbox_needs_authentication(http: httpx.AsyncClient) -> None:
    assert (await http.get(INBOX)).status_code == 401


async def test_ack_puts_a_receipt_in_the_senders_inbox(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    first = await send_text(http, alice, bob, "one")
    second = await send_text(http, alice, bob, "two")
    alice_head = (await inbox(http, alice))["head"]

    response = await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 1})

    assert response.status_code == 200
    assert response.json() == {"acknowledged": 1}
    receipts = [e for e in (await inbox(http, alice, since=alice_head))["entries"]]
    assert len(receipts) == 1
    receipt = receipts[0]
    assert receipt["type"] == "receipt"
    assert receipt["seq"] == alice_head + 1
    assert receipted_ids(receipt) == [first["message_id"]]
    assert receipt["recipient"] == "bob"
    assert receipt["status"] == "delivered"
    assert isinstance(receipt["at"], int)

    # Acknowledging again changes nothing; acknowledging further covers only the rest.
    assert (await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 1})).json() == {
        "acknowledged": 0
    }
    assert (await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 10})).json() == {
        "acknowledged": 1
    }
    receipts = (await inbox(http, alice, since=alice_head))["entries"]
    assert [receipted_ids(e) for e in receipts] == [[first["message_id"]], [second["message_id"]]]
    # bob's inbox gained nothing from his own acknowledgements.
    assert (await inbox(http, bob))["head"] == 2


async def test_one_ack_makes_one_receipt_listing_every_message_it_covers(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    carol = await register_user("carol")
    from_alice = [await send_text(http, alice, bob, f"a{i}") for i in range(3)]
    from_carol = await send_text(http, carol, bob, "c0")
    alice_head = (await inbox(http, alice))["head"]
    carol_head = (await inbox(http, carol))["head"]

    response = await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 4})

    assert response.json() == {"acknowledged": 4}
    [to_alice] = (await inbox(http, alice, since=alice_head))["entries"]
    [to_carol] = (await inbox(http, carol, since=carol_head))["entries"]
    assert receipted_ids(to_alice) == [m["message_id"] for m in from_alice]
    assert receipted_ids(to_carol) == [from_carol["message_id"]]
    assert to_alice["recipient"] == to_carol["recipient"] == "bob"


async def test_acknowledging_my_own_messages_makes_no_receipt(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    await send_text(http, alice, bob, "one")

    response = await http.post(f"{INBOX}/ack", headers=alice.headers, json={"seq": 1})

    # The sender's own copy counts as delivered from the moment it is stored.
    assert response.json() == {"acknowledged": 0}
    assert (await inbox(http, alice))["head"] == 1
    assert (await inbox(http, bob))["head"] == 1


@pytest.mark.parametrize(
    "body", [{"seq": -1}, {"seq": "x"}, {"seq": None}, {}, {"seq": 1, "extra": 1}, {"seq": 2**63}]
)
async def test_ack_rejects_bad_bodies(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], body: dict[str, Any]
) -> None:
    _alice, bob = pair
    response = await http.post(f"{INBOX}/ack", headers=bob.headers, json=body)
    assert response.status_code == 422


async def test_history_pages_newest_first_and_shows_delivery(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    sent = [await send_text(http, alice, bob, f"m{i}") for i in range(3)]
    sent.append(await send_text(http, bob, alice, "reply"))
    sent.append(await send_text(http, alice, bob, "last"))
    conversation = dm("alice", "bob")
    await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 2})  # m0 and m1 delivered to bob

    url = f"/api/v1/conversations/{conversation}/messages"
    first = await http.get(url, headers=alice.headers, params={"limit": 2})

    assert first.status_code == 200, first.text
    page = first.json()
    assert page["conversation_id"] == conversation
    assert page["members"] == ["alice", "bob"]
    assert [m["message_id"] for m in page["messages"]] == [sent[4]["message_id"], sent[3]["message_id"]]
    assert page["next_before"] is not None
    second = (
        await http.get(url, headers=alice.headers, params={"limit": 2, "before": page["next_before"]})
    ).json()
    assert [m["message_id"] for m in second["messages"]] == [sent[2]["message_id"], sent[1]["message_id"]]
    third = (
        await http.get(url, headers=bob.headers, params={"limit": 2, "before": second["next_before"]})
    ).json()
    assert [m["message_id"] for m in third["messages"]] == [sent[0]["message_id"]]
    assert third["next_before"] is None

    everything = (await http.get(url, headers=bob.headers)).json()["messages"]
    assert [m["message_id"] for m in everything] == [s["message_id"] for s in reversed(sent)]
    by_id = {m["message_id"]: m for m in everything}
    assert by_id[sent[0]["message_id"]]["delivered_to"] == ["bob"]
    assert by_id[sent[1]["message_id"]]["delivered_to"] == ["bob"]
    assert by_id[sent[2]["message_id"]]["delivered_to"] == []
    # The sender is never listed as a recipient of their own message.
    assert by_id[sent[3]["message_id"]]["delivered_to"] == []
    assert by_id[sent[3]["message_id"]]["sender"] == "bob"
    assert by_id[sent[0]["message_id"]]["envelope"] == sent[0]["envelope"]


async def test_history_of_someone_elses_conversation_is_404(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    mallory = await register_user("mallory")
    await send_text(http, alice, bob, "secret")

    hidden = await http.get(f"/api/v1/conversations/{dm('alice', 'bob')}/messages", headers=mallory.headers)
    missing = await http.get(
        f"/api/v1/conversations/{dm('alice', 'nobody')}/messages", headers=mallory.headers
    )

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert hidden.json()["error"]["code"] == "not_found"


async def test_history_with_a_malformed_conversation_id_is_422(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, _bob = pair
    response = await http.get("/api/v1/conversations/not-an-id/messages", headers=alice.headers)
    assert response.status_code == 422


async def test_conversations_list_and_open_direct(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    mallory = await register_user("mallory")
    await send_text(http, alice, bob, "hi")

    opened = await http.post("/api/v1/conversations/direct", headers=alice.headers, json={"peer": "BOB"})
    assert opened.json() == {"id": dm("alice", "bob"), "kind": "direct", "members": ["alice", "bob"]}
    listed = (await http.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    assert [(c["id"], c["members"]) for c in listed] == [(dm("alice", "bob"), ["alice", "bob"])]
    assert (await http.get("/api/v1/conversations", headers=mallory.headers)).json() == {"conversations": []}
    ghost = await http.post("/api/v1/conversations/direct", headers=alice.headers, json={"peer": "ghost"})
    assert ghost.status_code == 404
