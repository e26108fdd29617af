"""A bare WebSocket relay: the baseline that ``bench_delivery.py`` compares SecureChat with.

It speaks the same frames as the server's inbox socket but does nothing else: the first
frame's ``token`` *is* the username (no check), ``send`` frames are relayed at once to
the envelope's other recipients as ``message`` frames and answered with ``sent``,
``ack`` is answered with ``acked``, ``ping`` with ``pong``. Nothing is stored, nothing is
validated beyond what relaying needs, and no receipts or sender copies are produced, so
the gap to SecureChat is the cost of authentication, validation, storage and receipts.

It is a plain ASGI callable (no framework) served by uvicorn with the same WebSocket
implementation and limits as ``securechat serve``::

    python benchmarks/bare_relay.py --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The same frame limit and heartbeat as securechat.cli.serve, so that only the
# application differs between the two servers (bench_delivery.py also matches its
# permessage-deflate choice with --no-deflate).
WS_MAX_FRAME_BYTES = 1024 * 1024 + 4096
WS_HEARTBEAT_SECONDS = 30.0


class Relay:
    """Per-user outgoing queues and inbox sequence numbers; nothing survives a restart."""

    def __init__(self) -> None:
        self.queues: dict[str, set[asyncio.Queue[str]]] = {}
        self.seqs: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.websocket(receive, send)
        elif scope["type"] == "http":
            await http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await lifespan(receive, send)

    async def websocket(self, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        first = await receive()
        try:
            frame = json.loads(first.get("text") or "")
            username = frame["token"]
            if frame.get("type") != "auth" or not isinstance(username, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            await send({"type": "websocket.close", "code": 4400})
            return
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.queues.setdefault(username, set()).add(queue)
        self.seqs.setdefault(username, 0)
        # Like the real server: relayed frames go through a per-connection queue and a
        # writer task, while replies are written by the reading task.
        writer = asyncio.create_task(write_loop(queue, send))
        try:
            await send(
                {
                    "type": "websocket.send",
                    "text": json.dumps({"type": "ready", "username": username, "head": 0}),
                }
            )
            await self.read_loop(username, receive, send)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, RuntimeError):
                await writer
            queues = self.queues.get(username)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self.queues[username]

    async def read_loop(self, username: str, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            try:
                frame = json.loads(text)
                kind = frame["type"]
            except (ValueError, KeyError, TypeError):
                await reply(send, {"type": "error", "code": "invalid_frame", "message": "bad frame"})
                continue
            ref = frame.get("ref")
            if kind == "send":
                await reply(send, self.relay(username, ref, frame.get("envelope")))
            elif kind == "ack":
                # Like SecureChat: acks are answered only when the client asks.
                if frame.get("confirm") is True:
                    await reply(send, {"type": "acked", "seq": frame.get("seq"), "ref": ref})
            elif kind == "ping":
                await reply(send, {"type": "pong", "ref": ref})
            else:
                await reply(
                    send, {"type": "error", "ref": ref, "code": "invalid_frame", "message": "unknown type"}
                )

    def relay(self, username: str, ref: object, envelope: object) -> dict[str, Any]:
        """Queue a ``message`` frame for every other recipient; return the ``sent`` reply."""
        if not isinstance(envelope, dict):
            return {"type": "error", "ref": ref, "code": "invalid_envelope", "message": "bad envelope"}
        try:
            message_id = envelope["message_id"]
            conversation_id = envelope["conversation_id"]
            recipients = [key["recipient"] for key in envelope["keys"] if key["recipient"] != username]
        except (KeyError, TypeError):
            return {"type": "error", "ref": ref, "code": "invalid_envelope", "message": "bad envelope"}
        server_ts = time.time_ns() // 1_000_000
        envelope_text = json.dumps(envelope, separators=(",", ":"))
        last_seq = 0
        for recipient in recipients:
            last_seq = self.seqs.get(recipient, 0) + 1
            self.seqs[recipient] = last_seq
            frame = (
                f'{{"type":"message","seq":{last_seq},"message_id":{json.dumps(message_id)},'
                f'"conversation_id":{json.dumps(conversation_id)},"sender":{json.dumps(username)},'
                f'"server_ts":{server_ts},"envelope":{envelope_text}}}'
            )
            # No storage: a recipient who is not connected never sees the message.
            for queue in self.queues.get(recipient, ()):
                queue.put_nowait(frame)
        return {
            "type": "sent",
            "ref": ref,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "seq": last_seq,
            "server_ts": server_ts,
        }


async def reply(send: Send, frame: dict[str, Any]) -> None:
    await send({"type": "websocket.send", "text": json.dumps(frame)})


async def write_loop(queue: asyncio.Queue[str], send: Send) -> None:
    while True:
        text = await queue.get()
        await send({"type": "websocket.send", "text": text})


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /healthz`` answers 200; everything else 404."""
    ok = scope["path"] == "/healthz"
    body = b'{"status":"ok"}' if ok else b'{"error":"not found"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200 if ok else 404,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--no-deflate", action="store_true", help="refuse permessage-deflate (as securechat serve may)"
    )
    args = parser.parse_args()
    uvicorn.run(
        Relay(),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_ping_interval=WS_HEARTBEAT_SECONDS,
        ws_ping_timeout=WS_HEARTBEAT_SECONDS,
        ws_per_message_deflate=not args.no_deflate,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
