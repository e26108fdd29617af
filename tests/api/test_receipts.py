"""Receipts signed by their reader (PROTOCOL.md 9.3): the server relays them unchanged to
the senders of the messages they name, refuses malformed ones and ones in someone
else's name with a JSON error (never a 500), and makes no receipts of its own for an
acknowledgement from a client that signs its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from securechat.protocol.receipts import make_receipt
from securechat.server.app import create_app
from securechat.server.settings import Settings

from .conftest import RegisteredUser, RegisterUser
from .support import client_from, dm, seal
from .test_inbox import INBOX, inbox, send_text
from .test_websocket import ORIGIN, WS, TestClient, authenticate, receive_until, register, send_http

RECEIPTS = "/api/v1/receipts"


@pytest.fixture
async def people(register_user: RegisterUser) -> dict[str, RegisteredUser]:
    return {name: await register_user(name) for name in ("alice", "bob", "carol", "mallory")}


def signed(user: RegisteredUser, conversation: str, status: str, ids: list[str]) -> dict[str, Any]:
    return make_receipt(user.identity, conversation, status, ids).to_wire()


async def post(http: httpx.AsyncClient, user: RegisteredUser, body: Any) -> httpx.Response:
    return await http.post(RECEIPTS, headers=user.headers, json=body)


async def test_a_signed_receipt_reaches_the_sender_unchanged(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    alice, bob = people["alice"], people["bob"]
    sent = [await send_text(http, alice, bob, f"m{i}") for i in range(2)]
    ids = [s["message_id"] for s in sent]
    head = (await inbox(http, alice))["head"]
    receipt = signed(bob, dm("alice", "bob"), "read", ids)

    response = await post(http, bob, {"receipt": receipt})

    assert response.status_code == 200, response.text
    assert response.json() == {"relayed": 2}
    [entry] = (await inbox(http, alice, since=head))["entries"]
    assert entry["type"] == "receipt" and entry["seq"] == head + 1
    assert entry["receipt"] == receipt
    # The server's view beside it, for clients that do not check signatures yet.
    assert (entry["message_ids"], entry["recipient"], entry["status"]) == (sorted(ids), "bob", "read")
    assert isinstance(entry["at"], int)
    # bob's inbox gained nothing; his own messages named in a receipt go to nobody.
    assert (await inbox(http, bob))["head"] == 2
    own = await send_text(http, bob, alice, "mine")
    response = await post(
        http, bob, {"receipt": signed(bob, dm("alice", "bob"), "read", [own["message_id"]])}
    )
    assert response.json() == {"relayed": 0}


async def test_a_group_receipt_goes_to_each_sender_once(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    from .test_groups import Group

    group = Group(http, people)
    assert (await group.post("alice", "create", ["bob", "carol"])).status_code == 201
    members = [people[name].identity for name in ("alice", "bob", "carol")]

    async def send(sender: str) -> str:
        identity = people[sender].identity
        envelope = seal(identity, members, f"from {sender}", conversation_id=group.id)
        response = await http.post(
            "/api/v1/messages", headers=people[sender].headers, json={"envelope": envelope}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["message_id"])

    from_alice, from_bob = await send("alice"), await send("bob")
    heads = {name: (await inbox(http, people[name]))["head"] for name in ("alice", "bob")}

    receipt = signed(people["carol"], group.id, "delivered", [from_alice, from_bob])
    response = await post(http, people["carol"], {"receipt": receipt})

    assert response.json() == {"relayed": 2}
    for name, mine in (("alice", from_alice), ("bob", from_bob)):
        [entry] = (await inbox(http, people[name], since=heads[name]))["entries"]
        assert entry["receipt"] == receipt
        assert entry["message_ids"] == [mine]


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda r: {**r, "status": "seen"}, "invalid_receipt"),
        (lambda r: {**r, "v": 2}, "invalid_receipt"),
        (lambda r: {**r, "message_ids": []}, "invalid_receipt"),
        (lambda r: {**r, "message_ids": list(reversed(r["message_ids"]))}, "invalid_receipt"),
        (lambda r: {**r, "signature": r["signature"][:-4]}, "invalid_receipt"),
        (lambda r: {**r, "extra": 1}, "invalid_receipt"),
        (lambda r: [r], "invalid_receipt"),
        (lambda r: None, "invalid_receipt"),
        (lambda r: "receipt", "invalid_receipt"),
        (
            lambda r: {**r, "message_ids": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(101)]},
            "invalid_receipt",
        ),
    ],
)
async def test_malformed_receipts_are_a_clear_400(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser], edit: Any, code: str
) -> None:
    alice, bob = people["alice"], people["bob"]
    ids = [(await send_text(http, alice, bob, f"m{i}"))["message_id"] for i in range(2)]
    head = (await inbox(http, alice))["head"]

    response = await post(http, bob, {"receipt": edit(signed(bob, dm("alice", "bob"), "read", ids))})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert (await inbox(http, alice))["head"] == head


async def test_only_the_reader_may_send_a_receipt_and_only_as_a_member(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    alice, bob, mallory = people["alice"], people["bob"], people["mallory"]
    message_id = (await send_text(http, alice, bob, "hello"))["message_id"]
    head = (await inbox(http, alice))["head"]
    bobs = signed(bob, dm("alice", "bob"), "read", [message_id])

    # Mallory relays bob's genuine receipt as her own request: refused.
    replayed = await post(http, mallory, {"receipt": bobs})
    assert replayed.status_code == 403
    assert replayed.json()["error"] == {
        "code": "forbidden",
        "message": "a receipt is signed by its reader, who must be the caller",
        "reason": "not_reader",
    }
    # Her own receipt for a conversation she is not in: no such conversation.
    outsider = await post(
        http, mallory, {"receipt": signed(mallory, dm("alice", "bob"), "read", [message_id])}
    )
    assert outsider.status_code == 404
    assert (await inbox(http, alice))["head"] == head
    # Extra or missing body members are refused by the body model.
    assert (await http.post(RECEIPTS, headers=bob.headers, json={"receipt": bobs, "x": 1})).status_code == 422
    assert (await http.post(RECEIPTS, headers=bob.headers, json={})).status_code == 422
    assert (await http.post(RECEIPTS, json={"receipt": bobs})).status_code == 401


async def test_receipts_over_http_are_limited_per_account(tmp_path: Path) -> None:
    from .conftest import registrar

    application = create_app(Settings(data_dir=tmp_path / "server", receipts_per_minute=2))
    async with (
        application.router.lifespan_context(application),
        client_from(application, "198.51.100.7") as http,
    ):
        register = registrar(http)
        alice, bob = await register("alice"), await register("bob")
        message_id = (await send_text(http, alice, bob, "hi"))["message_id"]
        body = {"receipt": signed(bob, dm("alice", "bob"), "read", [message_id])}
        assert [(await post(http, bob, body)).status_code for _ in range(2)] == [200, 200]
        limited = await post(http, bob, body)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "account" in limited.json()["error"]["message"]
        assert "retry-after" in limited.headers


async def test_an_ack_from_a_client_that_signs_makes_no_server_receipt(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    alice, bob = people["alice"], people["bob"]
    first = await send_text(http, alice, bob, "one")
    second = await send_text(http, alice, bob, "two")
    head = (await inbox(http, alice))["head"]

    signing = await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 1, "signed_receipts": True})
    assert signing.json() == {"acknowledged": 1}
    # Delivered for the server's bookkeeping, but no receipt of the server's own.
    assert (await inbox(http, alice))["head"] == head
    history = await http.get(f"/api/v1/conversations/{dm('alice', 'bob')}/messages", headers=alice.headers)
    delivered = {m["message_id"]: m["delivered_to"] for m in history.json()["messages"]}
    assert delivered == {first["message_id"]: ["bob"], second["message_id"]: []}
    # Without the flag (a client that does not sign yet), the server's claim, unsigned.
    plain = await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 2})
    assert plain.json() == {"acknowledged": 1}
    [claim] = (await inbox(http, alice, since=head))["entries"]
    assert "receipt" not in claim and claim["message_ids"] == [second["message_id"]]
    bad = await http.post(f"{INBOX}/ack", headers=bob.headers, json={"seq": 2, "signed_receipts": "yes"})
    assert bad.status_code == 422


@pytest.fixture
def client(settings: Settings) -> Any:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_receipts_on_the_socket(client: TestClient) -> None:
    from .support import material

    alice, bob = register(client, "alice"), register(client, "bob")
    sent = send_http(client, "alice", "bob", alice["access_token"], "hello")
    with (
        client.websocket_connect(WS, headers=ORIGIN) as alice_ws,
        client.websocket_connect(WS, headers=ORIGIN) as bob_ws,
    ):
        authenticate(alice_ws, alice["access_token"])
        authenticate(bob_ws, bob["access_token"])
        message, _ = receive_until(bob_ws, "message")
        # Bob acknowledges as a signing client, then sends his signed receipt.
        bob_ws.send_text(json.dumps({"type": "ack", "seq": message["seq"], "signed_receipts": True}))
        receipt = make_receipt(
            material("bob").identity, dm("alice", "bob"), "delivered", [sent["message_id"]]
        ).to_wire()
        bob_ws.send_text(json.dumps({"type": "receipt", "ref": 1, "receipt": receipt}))
        entry, before = receive_until(alice_ws, "receipt")
        assert entry["receipt"] == receipt
        assert not [f for f in before if f["type"] == "receipt"]
        # A malformed receipt or ack is answered with an error; the socket stays usable.
        bob_ws.send_text(json.dumps({"type": "receipt", "ref": 2, "receipt": {**receipt, "status": "seen"}}))
        error, _ = receive_until(bob_ws, "error")
        assert (error["ref"], error["code"]) == (2, "invalid_receipt")
        bob_ws.send_text(json.dumps({"type": "ack", "ref": 3, "seq": 1, "signed_receipts": 1}))
        error, _ = receive_until(bob_ws, "error")
        assert (error["ref"], error["code"]) == (3, "invalid_frame")
        bob_ws.send_text(json.dumps({"type": "receipt", "ref": 4}))
        error, _ = receive_until(bob_ws, "error")
        assert (error["ref"], error["code"]) == (4, "invalid_receipt")
        bob_ws.send_text(json.dumps({"type": "ping", "ref": "still-there"}))
        pong, _ = receive_until(bob_ws, "pong")
        assert pong["ref"] == "still-there"
