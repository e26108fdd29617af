"""One client's WebSocket session: replay the inbox from a sequence number, then stream
live events, while handling the client's send, ack and ping frames.

Frames are JSON text; PROTOCOL.md ("Transport") lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import SecureChatError
from ..services import messages
from ..services.accounts import Principal
from ..services.context import ServiceContext

logger = logging.getLogger(__name__)


def error_frame(code: str, message: str, **fields: Any) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, **fields})


class InboxConnection:
    def __init__(self, ctx: ServiceContext, principal: Principal, websocket: WebSocket) -> None:
        self.ctx = ctx
        self.principal = principal
        self.websocket = websocket
        self.last_sent = 0

    async def run(self, since: int) -> None:
        self.last_sent = since
        async with self.ctx.broker.subscribe(self.principal.user_id) as queue:
            head = await messages.inbox_head(self.ctx, self.principal.user_id)
            await self.websocket.send_text(
                json.dumps({"type": "ready", "username": self.principal.username, "head": head})
            )
            await self._catch_up()
            writer = asyncio.create_task(self._write_loop(queue))
            try:
                await self._read_loop()
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await writer

    async def _catch_up(self) -> None:
        """Send every stored entry after the last one sent, in batches."""
        batch = self.ctx.settings.inbox_batch_max
        while True:
            entries = await messages.inbox_frames(self.ctx, self.principal.user_id, self.last_sent, batch)
            for seq, frame in entries:
                await self.websocket.send_text(frame)
                self.last_sent = seq
            if len(entries) < batch:
                return

    async def _write_loop(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            if event is None or event.seq > self.last_sent + 1:
                # Overflow, or an entry published elsewhere: the database has them all.
                await self._catch_up()
                continue
            if event.seq <= self.last_sent:
                continue
            await self.websocket.send_text(event.frame)
            self.last_sent = event.seq

    async def _read_loop(self) -> None:
        while True:
            try:
                text = await self.websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            except KeyError:
                # A binary frame: Starlette finds no "text" key in it.
                await self.websocket.send_text(error_frame("invalid_frame", "frames must be JSON text"))
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            # RecursionError: deeply nested arrays exhaust the parser's recursion limit;
            # left uncaught it would end the whole connection instead of this frame.
            await self.websocket.send_text(error_frame("invalid_frame", "frame is not JSON"))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.websocket.send_text(error_frame("invalid_frame", "frame needs a type"))
            return
        kind = frame["type"]
        ref = frame.get("ref") if isinstance(frame.get("ref"), (str, int)) else None
        try:
            if kind == "send":
                result = await messages.send_message(self.ctx, self.principal, frame.get("envelope"))
                await self.websocket.send_text(json.dumps({"type": "sent", "ref": ref, **result.to_wire()}))
            elif kind == "ack":
                seq = frame.get("seq")
                if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**62:
                    await self.websocket.send_text(
                        error_frame("invalid_frame", "ack needs an integer seq", ref=ref)
                    )
                    return
                await messages.acknowledge(self.ctx, self.principal, seq)
                await self.websocket.send_text(json.dumps({"type": "acked", "seq": seq, "ref": ref}))
            elif kind == "ping":
                await self.websocket.send_text(json.dumps({"type": "pong", "ref": ref}))
            else:
                await self.websocket.send_text(error_frame("invalid_frame", "unknown frame type", ref=ref))
        except SecureChatError as exc:
            await self.websocket.send_text(json.dumps({"type": "error", "ref": ref, **exc.body()["error"]}))
