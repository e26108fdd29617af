"""Typing indicators and read receipts (PROTOCOL.md 9.2): only members send them, only
the other members get them, and a read receipt reaches each sender's inbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from securechat.server.app import create_app
from securechat.server.settings import Settings

from .support import bearer, dm
from .test_websocket import ORIGIN, WS, TestClient, authenticate, receive, receive_until, register, send_http


@pytest.fixture
def client(settings: Settings) -> Any:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_read_receipts_reach_the_sender(client: TestClient) -> None:
    alice, bob, mallory = (register(client, n) for n in ("alice", "bob", "mallory"))
    sent = [send_http(client, "alice", "bob", alice["access_token"], f"m{i}") for i in range(2)]
    ids = [s["message_id"] for s in sent]
    conversation = dm("alice", "bob")
    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        authenticate(ws, alice["access_token"])
        response = client.post(
            f"/api/v1/conversations/{conversation}/read",
            headers=bearer(bob["access_token"]),
            json={"message_ids": ids},
        )
        assert response.json() == {"receipts": 2}
        receipt, _ = receive_until(ws, "receipt")
        while receipt["status"] != "read":
            receipt, _ = receive_until(ws, "receipt")
        assert receipt["recipient"] == "bob"
        assert sorted(receipt["message_ids"]) == sorted(ids)
    # Her own messages are not receipted to herself; outsiders are refused.
    own = client.post(
        f"/api/v1/conversations/{conversation}/read",
        headers=bearer(alice["access_token"]),
        json={"message_ids": ids},
    )
    assert own.json() == {"receipts": 0}
    outsider = client.post(
        f"/api/v1/conversations/{conversation}/read",
        headers=bearer(mallory["access_token"]),
        json={"message_ids": ids},
    )
    assert outsider.status_code == 404
    bad = client.post(
        f"/api/v1/conversations/{conversation}/read",
        headers=bearer(bob["access_token"]),
        json={"message_ids": ["not-an-id"]},
    )
    assert bad.status_code == 422


def test_read_frame_on_the_socket(client: TestClient) -> None:
    alice, bob = register(client, "alice"), register(client, "bob")
    sent = send_http(client, "alice", "bob", alice["access_token"], "hello")
    with (
        client.websocket_connect(WS, headers=ORIGIN) as alice_ws,
        client.websocket_connect(WS, headers=ORIGIN) as bob_ws,
    ):
        authenticate(alice_ws, alice["access_token"])
        authenticate(bob_ws, bob["access_token"])
        read = {"type": "read", "conversation_id": dm("alice", "bob"), "message_ids": [sent["message_id"]]}
        bob_ws.send_text(json.dumps(read))
        receipt, _ = receive_until(alice_ws, "receipt")
        assert (receipt["status"], receipt["message_ids"]) == ("read", [sent["message_id"]])
        # A bad read frame is answered with an error; the socket stays usable.
        bob_ws.send_text('{"type":"read","ref":7,"conversation_id":"dm-x","message_ids":[]}')
        error, _ = receive_until(bob_ws, "error")
        assert (error["type"], error["ref"], error["code"]) == ("error", 7, "invalid_input")


def test_typing_goes_to_the_other_members_only(client: TestClient) -> None:
    alice, bob, mallory = (register(client, n) for n in ("alice", "bob", "mallory"))
    send_http(client, "alice", "bob", alice["access_token"], "hi")
    conversation = dm("alice", "bob")
    with (
        client.websocket_connect(WS, headers=ORIGIN) as alice_ws,
        client.websocket_connect(WS, headers=ORIGIN) as bob_ws,
    ):
        authenticate(alice_ws, alice["access_token"])
        authenticate(bob_ws, bob["access_token"])
        receive_until(bob_ws, "message")
        alice_ws.send_text(json.dumps({"type": "typing", "conversation_id": conversation}))
        typing, _ = receive_until(bob_ws, "typing")
        assert typing == {"type": "typing", "conversation_id": conversation, "from": "alice"}
        # The typing frame has no seq: the inbox goes on without a gap.
        send_http(client, "alice", "bob", alice["access_token"], "after typing")
        message, _ = receive_until(bob_ws, "message")
        assert message["seq"] == 2
        # Someone outside the conversation cannot announce typing in it.
        with client.websocket_connect(WS, headers=ORIGIN) as mallory_ws:
            authenticate(mallory_ws, mallory["access_token"])
            mallory_ws.send_text(json.dumps({"type": "typing", "ref": "t", "conversation_id": conversation}))
            refused = receive(mallory_ws)
            assert (refused["type"], refused["code"]) == ("error", "not_found")
