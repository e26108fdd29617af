"""The inbox WebSocket, in process through Starlette's TestClient.

TestClient is synchronous and runs the app's lifespan itself, so each test builds a
fresh app with ``create_app(settings)`` instead of using the ``app`` fixture.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from securechat.server.app import create_app
from securechat.server.settings import Settings

from .support import bearer, dm, material, receipted_ids, registration_body, seal

with warnings.catch_warnings():
    # Starlette 1.x warns at import that it prefers the httpx2 package over httpx;
    # the project depends on httpx, which TestClient still supports.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketTestSession

WS = "/api/v1/ws"
ORIGIN = {"origin": "http://testserver"}
TIMEOUT_S = 10.0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def register(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def send_http(client: TestClient, sender: str, peer: str, token: str, text: str) -> dict[str, Any]:
    envelope = seal(material(sender).identity, [material(sender).identity, material(peer).identity], text)
    response = client.post("/api/v1/messages", headers=bearer(token), json={"envelope": envelope})
    assert response.status_code == 201, response.text
    return {**response.json(), "envelope": envelope}


def receive(ws: WebSocketTestSession) -> dict[str, Any]:
    """The next frame, or WebSocketDisconnect; fails instead of hanging if none comes.

    (TestClient's own receive has no timeout, so a missing frame would hang the run.)
    """

    async def next_message() -> Any:
        with anyio.fail_after(TIMEOUT_S):
            return await ws._send_rx.receive()

    message = ws.portal.call(next_message)
    ws._raise_on_close(message)
    frame: dict[str, Any] = json.loads(message["text"])
    return frame


def receive_until(ws: WebSocketTestSession, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frames up to the first of type ``kind``: (that frame, the frames before it)."""
    before = []
    while (frame := receive(ws))["type"] != kind:
        before.append(frame)
    return frame, before


def authenticate(ws: WebSocketTestSession, token: str, since: int = 0) -> dict[str, Any]:
    ws.send_json({"type": "auth", "token": token, "since": since})
    ready = receive(ws)
    assert ready["type"] == "ready", ready
    return ready


def assert_usable(ws: WebSocketTestSession) -> None:
    ws.send_json({"type": "ping", "ref": "still-there"})
    assert receive(ws) == {"type": "pong", "ref": "still-there"}


def test_auth_then_ready_then_backlog(client: TestClient) -> None:
    alice = register(client, "alice")
    bob = register(client, "bob")
    sent = [send_http(client, "alice", "bob", alice["access_token"], f"m{i}") for i in range(3)]

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        ready = authenticate(ws, bob["access_token"])
        assert ready == {"type": "ready", "username": "bob", "head": 3}
        backlog = [receive(ws) for _ in sent]
        assert_usable(ws)  # and nothing else was queued before the pong

    assert [f["type"] for f in backlog] == ["message"] * 3
    assert [f["seq"] for f in backlog] == [1, 2, 3]
    assert [f["message_id"] for f in backlog] == [s["message_id"] for s in sent]
    assert [f["envelope"] for f in backlog] == [s["envelope"] for s in sent]
    assert all(f["sender"] == "alice" and f["conversation_id"] == dm("alice", "bob") for f in backlog)


def test_backlog_starts_after_since(client: TestClient) -> None:
    alice = register(client, "alice")
    bob = register(client, "bob")
    sent = [send_http(client, "alice", "bob", alice["access_token"], f"m{i}") for i in range(3)]

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        authenticate(ws, bob["access_token"], since=2)
        frame = receive(ws)
        assert_usable(ws)

    assert (frame["seq"], frame["message_id"]) == (3, sent[2]["message_id"])


@pytest.mark.parametrize("token", ["not-a-token", "", "a.b.c"])
def test_wrong_token_gets_an_error_frame_and_close_4401(client: TestClient, token: str) -> None:
    register(client, "alice")

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        ws.send_json({"type": "auth", "token": token, "since": 0})
        error = receive(ws)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)

    assert error["type"] == "error"
    assert error["code"] == "unauthorized"
    assert closed.value.code == 4401


def test_revoked_session_token_is_refused(client: TestClient) -> None:
    alice = register(client, "alice")
    assert client.post("/api/v1/auth/logout", headers=bearer(alice["access_token"])).status_code == 204

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        ws.send_json({"type": "auth", "token": alice["access_token"], "since": 0})
        assert receive(ws)["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)

    assert closed.value.code == 4401


@pytest.mark.parametrize(
    "first",
    [
        {"type": "ping"},
        {"type": "send", "envelope": {}},
        {"token": "x", "since": 0},
        {"type": "auth", "since": 0},
        {"type": "auth", "token": "x", "since": -1},
        {"type": "auth", "token": "x", "since": "0"},
        {"type": "auth", "token": "x", "since": True},
        {"type": "auth", "token": "x", "since": 2**62},
        ["auth"],
    ],
)
def test_a_first_frame_that_is_not_auth_closes_4400(client: TestClient, first: Any) -> None:
    alice = register(client, "alice")
    if isinstance(first, dict) and first.get("token") == "x":
        first["token"] = alice["access_token"]  # a good token does not excuse a bad frame

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        ws.send_json(first)
        error = receive(ws)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)

    assert error["type"] == "error"
    assert error["code"] == "invalid_frame"
    assert closed.value.code == 4400


@pytest.mark.parametrize(
    "raw", ["not json", "[" * 100_000 + "]" * 100_000, b'{"type": "auth"}'], ids=["text", "nested", "binary"]
)
def test_an_unparseable_first_frame_closes_4400(client: TestClient, raw: str | bytes) -> None:
    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        if isinstance(raw, bytes):
            ws.send_bytes(raw)
        else:
            ws.send_text(raw)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)

    assert closed.value.code == 4400


def test_send_frame_is_answered_with_sent_and_delivered_live(client: TestClient) -> None:
    register(client, "alice")
    bob = register(client, "bob")
    alice_login = client.post(
        "/api/v1/auth/login", json={"username": "alice", "auth_key": material("alice").auth_key}
    ).json()
    envelope = seal(
        material("alice").identity, [material("alice").identity, material("bob").identity], "live"
    )

    with (
        client.websocket_connect(WS, headers=ORIGIN) as alice_ws,
        client.websocket_connect(WS, headers=ORIGIN) as bob_ws,
    ):
        authenticate(alice_ws, alice_login["access_token"])
        authenticate(bob_ws, bob["access_token"])

        alice_ws.send_json({"type": "send", "ref": 7, "envelope": envelope})
        sent, _own_copy = receive_until(alice_ws, "sent")
        live = receive(bob_ws)

        # Bob acknowledges over the socket (and is told it stuck); alice's receipt arrives live.
        bob_ws.send_json({"type": "ack", "seq": live["seq"], "ref": "a1", "confirm": True})
        acked = receive(bob_ws)
        receipt, _ = receive_until(alice_ws, "receipt")

        # The same envelope again is a retry, not a second message.
        alice_ws.send_json({"type": "send", "ref": "again", "envelope": envelope})
        resent, _ = receive_until(alice_ws, "sent")
        assert_usable(bob_ws)

    assert sent["ref"] == 7
    assert sent["message_id"] == envelope["message_id"]
    assert sent["conversation_id"] == dm("alice", "bob")
    # Alice's inbox: 1 announces her login (session_started), 2 is her own copy.
    assert sent["seq"] == 2 and isinstance(sent["server_ts"], int)
    assert live["type"] == "message"
    assert (live["seq"], live["sender"], live["envelope"]) == (1, "alice", envelope)
    assert acked == {"type": "acked", "seq": 1, "ref": "a1"}
    assert receipted_ids(receipt) == [envelope["message_id"]]
    assert (receipt["recipient"], receipt["status"]) == ("bob", "delivered")
    assert resent["ref"] == "again"
    assert {k: resent[k] for k in ("message_id", "seq", "server_ts")} == {
        k: sent[k] for k in ("message_id", "seq", "server_ts")
    }
    inbox = client.get("/api/v1/inbox", headers=bearer(bob["access_token"])).json()
    assert [e["message_id"] for e in inbox["entries"]] == [envelope["message_id"]]


def test_an_ack_without_confirm_is_not_answered_but_still_counts(client: TestClient) -> None:
    alice = register(client, "alice")
    bob = register(client, "bob")
    send_http(client, "alice", "bob", alice["access_token"], "quiet ack")

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        authenticate(ws, bob["access_token"])
        live = receive(ws)
        ws.send_json({"type": "ack", "seq": live["seq"]})
        # No "acked" frame comes back: the next frame is the answer to the ping.
        assert_usable(ws)

    # Unconfirmed, so it commits in its own time (a queued ack survives the close): wait for it.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        entries = client.get("/api/v1/inbox", headers=bearer(alice["access_token"])).json()["entries"]
        receipts = [entry for entry in entries if entry["type"] == "receipt"]
        if receipts or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [entry["recipient"] for entry in receipts] == ["bob"]


def test_refused_send_is_an_error_frame_with_ref(client: TestClient) -> None:
    alice = register(client, "alice")
    register(client, "bob")
    # bob's envelope sent on alice's connection: the sender is not the caller.
    envelope = seal(material("bob").identity, [material("alice").identity, material("bob").identity])

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        authenticate(ws, alice["access_token"])
        ws.send_json({"type": "send", "ref": "r1", "envelope": envelope})
        error = receive(ws)
        ws.send_json({"type": "send", "ref": "r2", "envelope": {**envelope, "v": 2}})
        invalid = receive(ws)
        assert_usable(ws)

    assert (error["type"], error["ref"], error["code"]) == ("error", "r1", "forbidden")
    assert (invalid["type"], invalid["ref"], invalid["code"]) == ("error", "r2", "invalid_envelope")


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        "42",
        '{"no": "type"}',
        '{"type": 5}',
        '{"type": "unknown"}',
        '{"type": "ack"}',
        '{"type": "ack", "seq": -1}',
        '{"type": "ack", "seq": "1"}',
        '{"type": "ack", "seq": true}',
        '{"type": "send"}',
        '{"type": "send", "envelope": [1, 2]}',
        '{"type": "\\ud800"}',
        "[" * 100_000 + "]" * 100_000,
        '{"type": "send", "envelope": ' + "[" * 100_000 + "]" * 100_000 + "}",
        b'{"type": "ping"}',
    ],
    ids=lambda frame: f"{frame[:40]!r}..." if len(frame) > 40 else repr(frame),
)
def test_a_malformed_frame_gets_an_error_and_the_connection_stays_usable(
    client: TestClient, frame: str | bytes
) -> None:
    alice = register(client, "alice")

    with client.websocket_connect(WS, headers=ORIGIN) as ws:
        authenticate(ws, alice["access_token"])
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        else:
            ws.send_text(frame)
        error = receive(ws)
        assert_usable(ws)

    assert error["type"] == "error"
    assert error["code"] in ("invalid_frame", "invalid_envelope")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "null"},
        {},
    ],
    ids=["foreign", "suffix-trick", "null", "missing"],
)
def test_a_foreign_null_or_missing_origin_is_refused_in_the_handshake(
    client: TestClient, headers: dict[str, str]
) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(WS, headers=headers):
        pass
    assert refused.value.code == 1008


def test_a_configured_origin_may_open_the_socket(settings: Settings) -> None:
    settings.allowed_origins = "https://chat.example.org"
    with TestClient(create_app(settings)) as client:
        token = register(client, "alice")["access_token"]
        with client.websocket_connect(WS, headers={"origin": "https://chat.example.org"}) as ws:
            assert authenticate(ws, token)["type"] == "ready"
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(WS, headers={"origin": "https://other.example"}),
        ):
            pass
