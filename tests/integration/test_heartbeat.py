"""A half-open WebSocket (the peer stopped answering, as after a dropped network) is
closed by the server's heartbeat, not kept forever."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from ..api.support import registration_body
from ..conftest import start_server


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def frame_opcodes(data: bytes) -> list[int]:
    """Opcodes of the unmasked frames a server sent, in order."""
    opcodes, offset = [], 0
    while offset + 2 <= len(data):
        opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
        offset += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[offset : offset + 2])
            offset += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[offset : offset + 8])
            offset += 8
        opcodes.append(opcode)
        offset += length
    return opcodes


def test_a_peer_that_stops_answering_pings_is_closed(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_WS_HEARTBEAT_SECONDS": "1"}
    )
    try:
        token = httpx.post(f"{server.url}/api/v1/auth/register", json=registration_body("alice")).json()[
            "access_token"
        ]
        port = urlparse(server.url).port
        assert port is not None
        # A hand-made client: it completes the handshake and authenticates, then never
        # answers a ping (it does not read at all), like a peer whose network vanished.
        raw = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall(
            (
                f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {server.url}\r\n\r\n"
            ).encode()
        )
        response = raw.recv(4096)
        assert response.startswith(b"HTTP/1.1 101"), response
        raw.sendall(masked_text_frame(json.dumps({"type": "auth", "token": token, "since": 0})))
        started = time.monotonic()
        time.sleep(4)  # pings go unanswered meanwhile
        # The server has given up on it: what it sent ends with a close frame, then EOF.
        raw.settimeout(5)
        received = b""
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            received += chunk
        assert time.monotonic() - started < 15
        opcodes = frame_opcodes(received)
        # ready (text), at least one unanswered ping, then the server's close.
        assert opcodes[0] == 0x1 and 0x9 in opcodes and opcodes[-1] == 0x8, opcodes
        raw.close()
    finally:
        server.stop()
