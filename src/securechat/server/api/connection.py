"""One client's WebSocket session: replay the inbox from a sequence number, then stream
live events, while handling the client's send, ack and ping frames.

Frames are JSON text; PROTOCOL.md ("Transport") lists them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import SecureChatError
from ..realtime.throttle import FrameBudget
from ..services import accounts, messages, presence, receipts
from ..services.context import ServiceContext
from ..services.principal import Principal

logger = logging.getLogger(__name__)


MAX_IN_FLIGHT = 64
CLOSE_SESSION_ENDED = 4401


def error_frame(code: str, message: str, **fields: Any) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, **fields})


class InboxConnection:
    def __init__(self, ctx: ServiceContext, principal: Principal, websocket: WebSocket) -> None:
        self.ctx = ctx
        self.principal = principal
        self.websocket = websocket
        self.last_sent = 0
        # Sends and acks are pipelined: the read loop queues them and goes on reading,
        # so one connection's requests share a commit. This bounds how many wait, from
        # being read until their answer is written.
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        # Answers to committed requests, written in commit order by one task per
        # connection (a task per request costs more than the request's own work).
        self._answers: asyncio.Queue[str | None] = asyncio.Queue()
        # Message ids this connection sent and has not yet seen come back: the sender's
        # own inbox copy is for its other devices, this one has the "sent" answer.
        self._own_messages: set[str] = set()
        # Sequence numbers of entries sent here that may be undelivered messages (catch-up
        # entries count, as their kind is not looked at). An ack that covers none of them
        # changes nothing in the database and is answered at once; the first ack on a
        # connection always goes to the database, for acks lost with an earlier socket.
        self._maybe_undelivered: collections.deque[int] = collections.deque()
        self._acked_in_database = False
        settings = ctx.settings
        self._budget = FrameBudget(settings.ws_frames_per_second, settings.ws_frame_burst)
        # Set once the session ended: frames read after that are not carried out.
        self._ended = False

    async def run(self, since: int) -> None:
        self.last_sent = since
        async with self.ctx.broker.subscribe(self.principal.user_id) as queue:
            # An end announced between authentication and subscribing is not in the queue.
            if not await accounts.session_is_active(self.ctx, self.principal):
                await self._end("session_ended")
                return
            head = await messages.inbox_head(self.ctx, self.principal.user_id)
            await self.websocket.send_text(
                json.dumps({"type": "ready", "username": self.principal.username, "head": head})
            )
            await self._catch_up()
            tasks = [
                asyncio.create_task(self._write_loop(queue)),
                asyncio.create_task(self._answer_loop()),
                asyncio.create_task(self._watch_session()),
            ]
            try:
                await self._read_loop()
            finally:
                # Requests already queued still commit; only their answers are dropped.
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                        await task

    async def _watch_session(self) -> None:
        """The backstop: close the socket once its session is found revoked or expired,
        should the broker's event (see ``_write_loop``) have been lost."""
        while True:
            await asyncio.sleep(self.ctx.settings.ws_session_check_seconds)
            if not await accounts.session_is_active(self.ctx, self.principal):
                await self._end("session_ended")
                return

    async def _end(self, reason: str) -> None:
        """The session ended: carry out nothing more from this socket, say so, close (4401)."""
        self._ended = True
        # The client may be gone already.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.send_text(error_frame("session_revoked", "the session has ended"))
            await self.websocket.close(CLOSE_SESSION_ENDED, reason)

    async def _catch_up(self) -> None:
        """Send every stored entry after the last one sent, in batches."""
        batch = self.ctx.settings.inbox_batch_max
        while True:
            entries = await messages.inbox_frames(self.ctx, self.principal.user_id, self.last_sent, batch)
            for seq, frame in entries:
                await self.websocket.send_text(frame)
                self._maybe_undelivered.append(seq)
                self.last_sent = seq
            if len(entries) < batch:
                return

    async def _write_loop(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            if event is not None and event.ended is not None:
                # Sessions of this user ended (committed, on any instance): this one?
                if event.ended.covers(self.principal.session_id):
                    await self._end(event.ended.reason)
                    return
                continue
            if event is not None and event.ephemeral:
                await self.websocket.send_text(event.frame)
                continue
            if event is None or event.seq > self.last_sent + 1:
                # Overflow, or an entry published elsewhere: the database has them all.
                await self._catch_up()
                continue
            if event.seq <= self.last_sent:
                continue
            if event.message_id is not None and event.message_id in self._own_messages:
                self._own_messages.discard(event.message_id)
            else:
                await self.websocket.send_text(event.frame)
                if event.message_id is not None:
                    self._maybe_undelivered.append(event.seq)
                    if event.committed_at:
                        self.ctx.metrics.delivery.observe(max(0.0, time.time() - event.committed_at))
            self.last_sent = event.seq

    async def _read_loop(self) -> None:
        while True:
            try:
                text = await self.websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            except KeyError:
                # A binary frame: Starlette finds no "text" key in it.
                if not self._ended:
                    await self.websocket.send_text(error_frame("invalid_frame", "frames must be JSON text"))
                continue
            if self._ended:
                # Read until the client closes too, but carry nothing out.
                continue
            wait = self._budget.take()
            await self._handle(text)
            if wait:
                # Over budget: stop reading this socket for a while (backpressure).
                await asyncio.sleep(wait)

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
        if kind == "send":
            await self._submit(
                ref,
                lambda: self._submit_send(frame.get("envelope")),
                lambda result: {"type": "sent", "ref": ref, **result.to_wire()},
            )
        elif kind == "ack":
            seq = frame.get("seq")
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**62:
                await self.websocket.send_text(
                    error_frame("invalid_frame", "ack needs an integer seq", ref=ref)
                )
                return
            # A client that signs its own receipts (PROTOCOL.md 9.3) asks for none of the
            # server's with "signed_receipts": true.
            signed = frame.get("signed_receipts", False)
            if not isinstance(signed, bool):
                await self.websocket.send_text(
                    error_frame("invalid_frame", "signed_receipts must be true or false", ref=ref)
                )
                return
            # Acks are answered only on request ("confirm": true), as a client does
            # before closing: an answer to every ack would double the frames.
            confirm = frame.get("confirm") is True
            # A confirmed ack always goes through the writer: its answer then also
            # vouches for every earlier ack of this connection, committed before it.
            if not self._ack_needs_database(seq) and not confirm:
                return
            await self._submit(
                ref,
                lambda: self.ctx.writer.submit_ack(self.principal, seq, server_receipts=not signed),
                lambda _count: {"type": "acked", "ref": ref, "seq": seq} if confirm else None,
            )
        elif kind == "typing":
            await self._guarded(ref, presence.typing(self.ctx, self.principal, frame.get("conversation_id")))
        elif kind == "receipt":
            await self._guarded(ref, receipts.relay_receipt(self.ctx, self.principal, frame.get("receipt")))
        elif kind == "read":
            await self._guarded(
                ref,
                presence.mark_read(
                    self.ctx, self.principal, frame.get("conversation_id"), frame.get("message_ids")
                ),
            )
        elif kind == "ping":
            await self.websocket.send_text(json.dumps({"type": "pong", "ref": ref}))
        else:
            await self.websocket.send_text(error_frame("invalid_frame", "unknown frame type", ref=ref))

    async def _guarded(self, ref: Any, work: Awaitable[Any]) -> None:
        """Run a request that is answered only when it fails."""
        try:
            await work
        except SecureChatError as exc:
            await self.websocket.send_text(json.dumps({"type": "error", "ref": ref, **exc.body()["error"]}))

    def _ack_needs_database(self, seq: int) -> bool:
        covered = False
        while self._maybe_undelivered and self._maybe_undelivered[0] <= seq:
            self._maybe_undelivered.popleft()
            covered = True
        if not self._acked_in_database:
            self._acked_in_database = True
            return True
        return covered

    def _submit_send(self, envelope: Any) -> asyncio.Future[Any]:
        future = messages.submit_message(self.ctx, self.principal, envelope)
        message_id = envelope["message_id"]
        self._own_messages.add(message_id)

        def forget_if_failed(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or done.exception() is not None:
                self._own_messages.discard(message_id)

        future.add_done_callback(forget_if_failed)
        return future

    async def _submit(
        self,
        ref: Any,
        submit: Callable[[], asyncio.Future[Any]],
        render: Callable[[Any], dict[str, Any] | None],
    ) -> None:
        """Validate and queue now (keeping order); answer when committed, without blocking reads."""
        await self._in_flight.acquire()
        try:
            future = submit()
        except SecureChatError as exc:
            self._in_flight.release()
            await self.websocket.send_text(json.dumps({"type": "error", "ref": ref, **exc.body()["error"]}))
            return
        # A client that disconnects cancels nothing it already queued: the future is
        # the writer's, and only this callback hears of it.
        future.add_done_callback(functools.partial(self._answer, ref, render))

    def _answer(
        self, ref: Any, render: Callable[[Any], dict[str, Any] | None], future: asyncio.Future[Any]
    ) -> None:
        """Queue the answer to a committed (or refused) request for the answer loop."""
        if future.cancelled():
            self._answers.put_nowait(None)
            return
        error = future.exception()
        if error is None:
            answer = render(future.result())
            self._answers.put_nowait(None if answer is None else json.dumps(answer))
        elif isinstance(error, SecureChatError):
            self._answers.put_nowait(json.dumps({"type": "error", "ref": ref, **error.body()["error"]}))
        else:
            logger.error("request failed", exc_info=error)
            self._answers.put_nowait(
                json.dumps(
                    {"type": "error", "ref": ref, "code": "internal_error", "message": "internal error"}
                )
            )

    async def _answer_loop(self) -> None:
        while True:
            text = await self._answers.get()
            try:
                if text is not None:
                    await self.websocket.send_text(text)
            finally:
                self._in_flight.release()
