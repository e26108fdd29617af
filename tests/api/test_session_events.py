"""Once a socket's session has ended, nothing more it sends is carried out, even from a
client that goes on sending after the ``session_revoked`` error (a browser or the
``websockets`` library would not). In process, where the test client can do that; the
real-server tests are in tests/integration/test_session_events.py."""

from __future__ import annotations

import json

import pytest
from starlette.websockets import WebSocketDisconnect

from securechat.server.app import create_app
from securechat.server.settings import Settings

from .support import bearer, material, seal
from .test_websocket import ORIGIN, WS, TestClient, receive, register, send_http


def test_a_frame_sent_after_the_session_ended_is_not_carried_out(settings: Settings) -> None:
    # Only the logout's event can end the socket's session in time, not the periodic check.
    settings.ws_session_check_seconds = 300
    with TestClient(create_app(settings)) as client:
        alice = register(client, "alice")
        bob = register(client, "bob")
        register(client, "carol")
        late = seal(
            material("alice").identity, [material("alice").identity, material("bob").identity], "late"
        )
        with client.websocket_connect(WS, headers=ORIGIN) as ws:
            ws.send_json({"type": "auth", "token": alice["access_token"], "since": 0})
            assert receive(ws)["type"] == "ready"
            assert (
                client.post("/api/v1/auth/logout", headers=bearer(alice["access_token"])).status_code == 204
            )
            assert receive(ws) == {
                "type": "error",
                "code": "session_revoked",
                "message": "the session has ended",
            }
            # Sent after the error: read by the server, but not carried out.
            ws.send_text(json.dumps({"type": "send", "ref": "late", "envelope": late}))
            ws.send_text(json.dumps({"type": "ping", "ref": "late-ping"}))
            with pytest.raises(WebSocketDisconnect) as closed:
                receive(ws)
            assert closed.value.code == 4401
        # Had the late send been queued, the writer (one queue, in order) would have
        # stored it before bob's message, and bob's inbox would hold it.
        send_http(client, "bob", "carol", bob["access_token"], "after the logout")
        entries = client.get("/api/v1/inbox", headers=bearer(bob["access_token"])).json()["entries"]
        assert [entry["message_id"] for entry in entries if entry["type"] == "message"] != []
        assert late["message_id"] not in [entry.get("message_id") for entry in entries]
