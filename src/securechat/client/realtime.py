"""The inbox WebSocket: authenticate in the first frame, resume from the last sequence,
reconnect with backoff. Sending over the socket is acknowledged with a ``sent`` frame.
When the server says the session ended (``session_revoked``), reconnecting cannot help:
the socket raises ``ApiError(401, "session_revoked")`` and ``run_inbox`` stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin

from .errors import ApiError
from .messenger import Messenger
from .receiving import InboxItem

# Only message entries need acknowledging (their senders wait for the receipt); an ack
# waits this long to cover the entries that arrive with it, or goes out at once after
# this many (PROTOCOL.md 9.2).
ACK_DELAY_SECONDS = 0.05
ACK_MAX_ENTRIES = 32


class InboxSocket:
    """One connection; ``items()`` yields processed inbox items and acknowledges them."""

    def __init__(self, messenger: Messenger) -> None:
        self.messenger = messenger
        self._socket: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ready = asyncio.Event()
        self._acked = 0
        self._ack_sent = 0
        self._last_processed = 0
        self._unacked_messages = 0
        self._ack_timer: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.messenger.ensure_token()
        api = self.messenger.api
        self._socket = await websockets.connect(
            api.websocket_url(), max_size=2 * 1024 * 1024, origin=Origin(api.origin())
        )
        await self._socket.send(
            json.dumps(
                {
                    "type": "auth",
                    "token": self.messenger.api.access_token,
                    "since": self.messenger.state.last_seq(),
                }
            )
        )
        ready = json.loads(await self._socket.recv())
        if ready.get("type") != "ready":
            await self._socket.close()
            raise ApiError(401, str(ready.get("code", "unauthorized")), str(ready.get("message", "")))
        self._ready.set()
        # An ack sent just before a previous connection closed may never have been
        # processed; acknowledging the last processed sequence again is harmless.
        await self._send_ack(self.messenger.state.last_seq())

    async def _send_ack(self, seq: int) -> None:
        assert self._socket is not None
        self._ack_sent = max(self._ack_sent, seq)
        # This client signs its own receipts (PROTOCOL.md 9.3): the server makes none, and
        # the signed "delivered" receipts for what the ack covers follow it.
        await self._socket.send(json.dumps({"type": "ack", "seq": seq, "signed_receipts": True}))
        await self._send_receipts()

    async def _send_receipts(self) -> None:
        assert self._socket is not None
        for receipt in self.messenger.receipts.take_delivered():
            await self._socket.send(json.dumps({"type": "receipt", "receipt": receipt}))

    async def _processed(self, frame_type: str, seq: int) -> None:
        self._last_processed = max(self._last_processed, seq)
        if frame_type != "message":
            return
        self._unacked_messages += 1
        if self._unacked_messages >= ACK_MAX_ENTRIES:
            await self._flush_ack()
        elif self._ack_timer is None:
            self._ack_timer = asyncio.create_task(self._ack_later())

    async def _ack_later(self) -> None:
        await asyncio.sleep(ACK_DELAY_SECONDS)
        self._ack_timer = None
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await self._flush_ack()

    async def _flush_ack(self) -> None:
        if self._unacked_messages:
            self._unacked_messages = 0
            await self._send_ack(self._last_processed)

    async def close(self) -> None:
        """Close after the server confirmed the last acknowledgement (bounded wait):
        an unconfirmed ack in flight could be lost with the socket."""
        if self._socket is None:
            return
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._unacked_messages:
            # The confirmed ack below covers what the timer would have sent.
            self._unacked_messages = 0
            self._ack_sent = max(self._ack_sent, self._last_processed)
        if self._acked < self._ack_sent:
            with contextlib.suppress(TimeoutError, websockets.WebSocketException, OSError):
                await self._send_receipts()
                confirmed = {"type": "ack", "seq": self._ack_sent, "confirm": True, "signed_receipts": True}
                await self._socket.send(json.dumps(confirmed))
                async with asyncio.timeout(5):
                    async for text in self._socket:
                        frame = json.loads(text)
                        if frame.get("type") == "acked" and isinstance(frame.get("seq"), int):
                            self._acked = max(self._acked, frame["seq"])
                        if self._acked >= self._ack_sent:
                            break
        await self._socket.close()

    async def items(self) -> AsyncIterator[InboxItem]:
        assert self._socket is not None
        async for text in self._socket:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind in ("sent", "error") and frame.get("ref") in self._pending:
                self._pending.pop(frame["ref"]).set_result(frame)
                continue
            if kind == "error" and frame.get("code") == "session_revoked":
                # Logged out, revoked, the password changed elsewhere or the account
                # disabled (PROTOCOL.md 9.2): the server closes the socket (4401).
                raise ApiError(401, "session_revoked", "the session has ended: log in again")
            if kind == "acked" and isinstance(frame.get("seq"), int):
                self._acked = max(self._acked, frame["seq"])
                continue
            if kind == "typing":
                # A hint from another member, not an inbox entry: no seq, no ack.
                sender, conversation = frame.get("from"), frame.get("conversation_id")
                if isinstance(sender, str) and isinstance(conversation, str):
                    yield InboxItem(kind="typing", seq=0, sender=sender, conversation_id=conversation)
                continue
            if kind not in ("message", "receipt", "group", "session_started"):
                continue
            item = await self.messenger.process_frame(frame)
            if item is not None:
                await self._processed(kind, item.seq)
                yield item

    async def typing(self, conversation_id: str) -> None:
        """Tell the other members we are typing (the caller decides how often)."""
        assert self._socket is not None
        await self._socket.send(json.dumps({"type": "typing", "conversation_id": conversation_id}))

    async def send_envelope(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Send over the socket; returns the server's ``sent`` frame or raises ApiError."""
        assert self._socket is not None
        ref = envelope["message_id"]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        await self._socket.send(json.dumps({"type": "send", "ref": ref, "envelope": envelope}))
        answer = await asyncio.wait_for(future, 30)
        if answer.get("type") == "error":
            raise ApiError(400, str(answer.get("code")), str(answer.get("message")), answer)
        return answer


async def run_inbox(
    messenger: Messenger,
    on_item: Callable[[InboxItem], Awaitable[None]],
    *,
    on_state: Callable[[str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    sockets: list[InboxSocket] | None = None,
) -> None:
    """Receive forever (until ``stop``), reconnecting with jittered exponential backoff."""
    delay = 0.5
    stop = stop or asyncio.Event()
    while not stop.is_set():
        socket = InboxSocket(messenger)
        try:
            await socket.connect()
            if sockets is not None:
                sockets.append(socket)
            delay = 0.5
            if on_state:
                await on_state("connected")
            async for item in socket.items():
                await on_item(item)
        except (OSError, websockets.WebSocketException, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status == 401 and exc.code != "unauthorized":
                if on_state and exc.code == "session_revoked":
                    await on_state(
                        "the session has ended (logged out, revoked, or the password changed): log in again"
                    )
                raise
        finally:
            if sockets is not None and socket in sockets:
                sockets.remove(socket)
            await socket.close()
        if stop.is_set():
            return
        if on_state:
            await on_state("reconnecting")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay * (0.5 + random.random()))
        delay = min(delay * 2, 30)
