"""The inbox WebSocket: authenticate in the first frame, resume from the last sequence,
reconnect with backoff. Sending over the socket is acknowledged with a ``sent`` frame.
When the server says the session ended (``session_revoked``), reconnecting cannot help:
the socket raises ``ApiError(401, "session_revoked")`` and ``run_inbox`` stops.

``LiveInbox`` keeps one account's connection open across drops and server restarts: it
reconnects at once after a drop, then backs off with full jitter to a small cap
(``Backoff``), resumes after the last processed sequence (so nothing is lost or shown
twice), and carries sends across sockets: a send whose socket dies before the server
answered goes out again, the same envelope with the same message id, on the next socket
(the server stores a message id once and answers a repeat with the first answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin

from .errors import ApiError, ClientError
from .messenger import Messenger
from .receiving import InboxItem
from .v2.client import Revoked

# Only message entries need acknowledging (their senders wait for the receipt); an ack
# waits this long to cover the entries that arrive with it, or goes out at once after
# this many (PROTOCOL.md 9.2).
ACK_DELAY_SECONDS = 0.05
ACK_MAX_ENTRIES = 32

# Reconnecting (issue 13, item 6): the first attempt after a drop goes at once (a
# restarted server or another instance is usually there), later ones wait a random time
# in [0, min(cap, first * 2^(n-1))] ("full jitter", so that the clients of a restarted
# server do not come back in lockstep). The cap is small: a client must be back within
# a couple of seconds of its server answering, not asleep in a 30 s backoff.
RECONNECT_FIRST_DELAY_S = 0.25
RECONNECT_MAX_DELAY_S = 2.0
# A connection that stayed up this long, or delivered anything, was a good one: the
# next drop starts the backoff again from "at once".
RECONNECT_STABLE_AFTER_S = 10.0
# How long a send waits for its answer, over however many sockets it takes.
SEND_TIMEOUT_S = 60.0
# How long the server may take to answer the auth frame.
READY_TIMEOUT_S = 10.0


class ConnectionLost(ClientError):
    """The socket closed before the server answered a request sent on it (the request
    may or may not have been carried out: a message is safe to send again, same id)."""


@dataclass
class Backoff:
    """Delays between connection attempts; ``rng`` returns a float in [0, 1)."""

    first: float = RECONNECT_FIRST_DELAY_S
    cap: float = RECONNECT_MAX_DELAY_S
    rng: Callable[[], float] = field(default=random.random)
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: none for the first after a good
        connection, then full jitter over a window that doubles up to ``cap``."""
        attempt = self.failures
        self.failures += 1
        if attempt == 0:
            return 0.0
        window = min(self.cap, self.first * 2.0 ** min(attempt - 1, 32))
        return window * self.rng()

    def reset(self) -> None:
        self.failures = 0


class InboxSocket:
    """One connection; ``items()`` yields processed inbox items and acknowledges them."""

    def __init__(
        self, messenger: Messenger, answers: dict[str, asyncio.Future[dict[str, Any]]] | None = None
    ) -> None:
        """``answers``: where ``sent`` and ``error`` frames are matched to waiting sends by
        ``ref``; ``LiveInbox`` passes one map for all its sockets, so a send made on one
        socket can be answered on the next."""
        self.messenger = messenger
        self._socket: ClientConnection | None = None
        self._shared_answers = answers is not None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = answers if answers is not None else {}
        # Items yielded: a connection that delivered something was a good one.
        self.delivered = 0
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
            api.websocket_url(),
            max_size=2 * 1024 * 1024,
            origin=Origin(api.origin()),
            # Closing a socket whose server stopped answering must not hold up the next
            # attempt for long (websockets waits 10 s for the closing handshake).
            close_timeout=2,
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
        # A frozen instance accepts the connection and never answers: give up on it
        # (and try again, perhaps reaching another instance) rather than wait forever.
        ready = json.loads(await asyncio.wait_for(self._socket.recv(), READY_TIMEOUT_S))
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
        try:
            async for item in self._items():
                self.delivered += 1
                yield item
        finally:
            if not self._shared_answers:
                # Nothing answers a request on a closed socket: fail now, not after a
                # timeout (LiveInbox instead sends them again on its next socket).
                lost = ConnectionLost("the connection closed before the server answered")
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(lost)
                self._pending.clear()

    async def _items(self) -> AsyncIterator[InboxItem]:
        assert self._socket is not None
        # v2 entries stored while no socket was there: their frames were not kept.
        for fetched in await self._v2_catch_up():
            yield fetched
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
            if kind == "device_inbox":
                # A new entry in a v2 device inbox (PROTOCOL.md 15.16), references only:
                # this device's is read over HTTP; the account's other devices' are not ours.
                device = self.messenger.v2.device()
                if device is not None and frame.get("device_id") == device.device_id:
                    for fetched in await self._v2_catch_up():
                        yield fetched
                continue
            if kind not in ("message", "receipt", "group", "session_started"):
                continue
            item = await self.messenger.process_frame(frame)
            if item is not None:
                await self._processed(kind, item.seq)
                yield item

    async def _v2_catch_up(self) -> list[InboxItem]:
        """This device's new v2 entries; a revoked device is told so (once per socket)
        rather than ending the connection, which still carries v1."""
        try:
            return await self.messenger.sync_v2()
        except Revoked as exc:
            return [InboxItem(kind="notice", seq=0, verified=True, text=str(exc))]

    async def typing(self, conversation_id: str) -> None:
        """Tell the other members we are typing (the caller decides how often)."""
        assert self._socket is not None
        await self._socket.send(json.dumps({"type": "typing", "conversation_id": conversation_id}))

    async def transmit(self, envelope: dict[str, Any]) -> None:
        """Put a send frame on the wire (its ``ref`` is the message id); the answer goes
        to the answers map."""
        assert self._socket is not None
        await self._socket.send(
            json.dumps({"type": "send", "ref": envelope["message_id"], "envelope": envelope})
        )

    async def send_envelope(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Send over this socket; returns the server's ``sent`` frame or raises ApiError,
        or ConnectionLost as soon as the socket closes unanswered (while ``items()`` is
        being read). ``LiveInbox.send_envelope`` retries on the next socket instead."""
        assert self._socket is not None
        ref = envelope["message_id"]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await self.transmit(envelope)
        except (websockets.WebSocketException, OSError) as exc:
            self._pending.pop(ref, None)
            raise ConnectionLost("the connection closed before the message was sent") from exc
        return answer_or_raise(await asyncio.wait_for(future, SEND_TIMEOUT_S))


def answer_or_raise(answer: dict[str, Any]) -> dict[str, Any]:
    if answer.get("type") == "error":
        raise ApiError(400, str(answer.get("code")), str(answer.get("message")), answer)
    return answer


@dataclass
class _Outgoing:
    envelope: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    # The socket it last went out on: on a new socket, everything not yet sent on it goes.
    sent_on: InboxSocket | None = None


def _session_over(exc: BaseException) -> bool:
    """A 401 other than a stale access token (which the next attempt refreshes): the
    session has ended and reconnecting cannot help. Everything else (the network, a
    server restarting or overloaded) is worth another attempt."""
    return isinstance(exc, ApiError) and exc.status == 401 and exc.code != "unauthorized"


class LiveInbox:
    """One account's inbox connection, kept open across drops and server restarts.

    ``run(stop)`` connects, hands every item to ``on_item`` and reconnects (see
    ``Backoff``) until ``stop`` is set or the session ends (``ApiError`` 401 is raised).
    ``send_envelope`` may be called at any time, connected or not.
    """

    def __init__(
        self,
        messenger: Messenger,
        on_item: Callable[[InboxItem], Awaitable[None]] | None = None,
        *,
        on_state: Callable[[str], Awaitable[None]] | None = None,
        backoff: Backoff | None = None,
        stable_after: float = RECONNECT_STABLE_AFTER_S,
        sockets: list[InboxSocket] | None = None,
    ) -> None:
        self.messenger = messenger
        self.on_item = on_item
        self.on_state = on_state
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        # Callers that look at the open socket (run_inbox's ``sockets``): it is listed
        # while connected.
        self.sockets = sockets if sockets is not None else []
        self.connects = 0
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: dict[str, _Outgoing] = {}
        self._socket: InboxSocket | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._socket is not None

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def _state(self, state: str) -> None:
        if self.on_state is not None:
            await self.on_state(state)

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set; raises ``ApiError`` when the session has ended."""
        announced_offline = False
        while not stop.is_set():
            delay = self.backoff.next_delay()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            socket = InboxSocket(self.messenger, self._answers)
            opened_at: float | None = None
            try:
                await socket.connect()
                opened_at = time.monotonic()
                await self._resend_on(socket)
                self._socket = socket
                self.connects += 1
                self.sockets.append(socket)
                self._connected.set()
                announced_offline = False
                await self._state("connected")
                await self._serve(socket, stop)
            except (OSError, websockets.WebSocketException, ApiError, TimeoutError) as exc:
                if _session_over(exc):
                    if isinstance(exc, ApiError) and exc.code == "session_revoked":
                        await self._state(
                            "the session has ended (logged out, revoked, or the password changed): log in again"
                        )
                    raise
            finally:
                self._socket = None
                self._connected.clear()
                if socket in self.sockets:
                    self.sockets.remove(socket)
                # A connection that delivered something or stayed up was a good one: the
                # next attempt goes at once.
                if opened_at is not None and (
                    socket.delivered or time.monotonic() - opened_at >= self.stable_after
                ):
                    self.backoff.reset()
                with contextlib.suppress(websockets.WebSocketException, OSError):
                    await socket.close()
            if stop.is_set():
                return
            if not announced_offline:
                announced_offline = True
                await self._state("reconnecting")

    async def _serve(self, socket: InboxSocket, stop: asyncio.Event) -> None:
        """Read the socket until it closes or ``stop`` is set (whichever comes first)."""
        reader = asyncio.create_task(self._read(socket))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        if not reader.cancelled():
            reader.result()

    async def _read(self, socket: InboxSocket) -> None:
        async for item in socket.items():
            if self.on_item is not None:
                await self.on_item(item)

    async def _resend_on(self, socket: InboxSocket) -> None:
        """Send again, in order, everything not yet answered and not yet sent on this
        socket. It repeats until nothing is left, so that a send made meanwhile cannot
        overtake an older one; the socket is only offered to new sends afterwards."""
        while todo := [o for o in self._outbox.values() if o.sent_on is not socket and not o.future.done()]:
            for outgoing in todo:
                outgoing.sent_on = socket
                await socket.transmit(outgoing.envelope)

    async def send_envelope(
        self, envelope: dict[str, Any], *, timeout: float = SEND_TIMEOUT_S
    ) -> dict[str, Any]:
        """Send an envelope; the server's ``sent`` frame, or ``ApiError`` if it refused it.

        Waits for a connection if there is none; if the socket closes before the answer,
        the same envelope goes again on the next socket. Raises ``ConnectionLost`` after
        ``timeout`` seconds without an answer (it may still have been stored: sending
        the same envelope again is safe).
        """
        ref = str(envelope["message_id"])
        existing = self._outbox.get(ref)
        if existing is not None and existing.envelope == envelope:
            # The same envelope twice at once: one send, one answer for both.
            return answer_or_raise(await asyncio.wait_for(asyncio.shield(existing.future), timeout))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        outgoing = _Outgoing(envelope, future)
        self._outbox[ref] = outgoing
        self._answers[ref] = future
        try:
            socket = self._socket
            if socket is not None:
                outgoing.sent_on = socket
                # A failure here is the socket dying: run() reconnects and sends again.
                with contextlib.suppress(websockets.WebSocketException, OSError):
                    await socket.transmit(envelope)
            try:
                answer = await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError as exc:
                raise ConnectionLost(f"no answer from the server within {timeout:g} s") from exc
        finally:
            if self._outbox.get(ref) is outgoing:
                del self._outbox[ref]
            if self._answers.get(ref) is future:
                del self._answers[ref]
        # An answer means the connection works: the next drop reconnects at once.
        self.backoff.reset()
        return answer_or_raise(answer)

    async def typing(self, conversation_id: str) -> bool:
        """Tell the other members we are typing, if connected (a hint: never queued)."""
        socket = self._socket
        if socket is None:
            return False
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await socket.typing(conversation_id)
            return True
        return False


async def run_inbox(
    messenger: Messenger,
    on_item: Callable[[InboxItem], Awaitable[None]],
    *,
    on_state: Callable[[str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    sockets: list[InboxSocket] | None = None,
) -> None:
    """Receive forever (until ``stop``), reconnecting as ``LiveInbox`` does."""
    live = LiveInbox(messenger, on_item, on_state=on_state, sockets=sockets)
    await live.run(stop or asyncio.Event())
