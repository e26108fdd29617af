"""Connections below the app: how long a request may take to arrive, and how many
connections one address, and all of them together, may hold in this process.

uvicorn closes a kept-alive connection that idles between requests
(``timeout_keep_alive``), but sets no limit on how long a request's headers or body may
take to arrive, nor on how many connections one client holds: a client that sent half a
request line kept its connection for good, and 1,100 of them from one address used up
the 1,024 file descriptors of a default process, locking every other client out.

The protocol classes here are uvicorn's own (httptools for HTTP, websockets-sansio for
the WebSocket) with a guard added; ``cli/serve.py`` passes them to ``uvicorn.run``:

- a connection is registered by its transport when it opens, and refused at once (429,
  or 503 when the process is full) over the cap of its address or the cap in all. A
  WebSocket upgrade hands the transport from the HTTP protocol to the WebSocket one, so
  whichever of the two holds it when it closes releases it;
- a request's head must arrive within ``header_timeout`` of its first byte (of the
  connection's opening, for the first request), and its body must make progress at least
  every ``body_progress_timeout``; otherwise the connection gets a 408 and is closed;
- with a certificate (``serve --tls-cert``) the HTTP protocol runs the TLS handshake
  itself, within ``header_timeout``, once the TCP connection is counted: given to
  uvicorn, TLS would hide a connection from the protocol until its handshake completed,
  so connections that never send one would be counted nowhere.

The caps are per process, as they guard this process's descriptors. Connections from a
trusted proxy (``SECURECHAT_FORWARDED_ALLOW_IPS``) are not capped per address: they carry
many clients, and the proxy, which holds each client's own connection, is where those
are capped. They do count towards the cap in all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import resource
import ssl
from asyncio import sslproto
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, Literal, cast

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr, is_ssl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from .realtime.slots import RefusalLog, address_key
from .settings import Settings

logger = logging.getLogger(__name__)

# Ask for at most this many open files, however high (or unlimited) the hard limit is.
OPEN_FILES_CEILING = 1 << 20
# When the cap in all comes from the open-file limit: descriptors kept out of it for the
# database, stored files, logs and the event loop (a quarter, on a small limit).
FD_RESERVE = 256

Refusal = Literal["address", "total"]


def raise_open_file_limit(ceiling: int = OPEN_FILES_CEILING) -> int:
    """Raise the soft open-file limit to the hard limit (at most ``ceiling``) and log it.

    Returns the limit in force afterwards. Many systems start services at a soft limit of
    1,024 under a far higher hard limit, which the process may raise on its own.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft == resource.RLIM_INFINITY or soft >= target:
        current = ceiling if soft == resource.RLIM_INFINITY else soft
        logger.info("open-file limit is %d", current)
        return current
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("open-file limit is %d; raising it to %d failed: %s", soft, target, exc)
        return soft
    logger.info("open-file limit raised from %d to %d", soft, target)
    return target


def connection_cap(open_files: int) -> int:
    """How many connections a process with ``open_files`` descriptors may hold in all."""
    return max(1, open_files - min(FD_RESERVE, open_files // 4))


class ConnectionRegistry:
    """The open connections of this process, by transport, and how many each address
    holds (by ``address_key``: an IPv6 /64 counts as one address).

    ``exempt(host)`` names the addresses not capped per address (trusted proxies).
    """

    def __init__(
        self,
        *,
        max_per_address: int,
        max_total: int,
        exempt: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self.max_per_address = max_per_address
        self.max_total = max_total
        self.exempt = exempt
        # Each connection's address key, or None if it is not counted per address.
        self._key_of: dict[object, str | None] = {}
        self._per_address: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return len(self._key_of)

    def held(self, host: str) -> int:
        return self._per_address[address_key(host)]

    def claim(self, connection: object, host: str | None) -> Refusal | None:
        """Count ``connection`` from ``host``; or say which cap refuses it.

        Claiming a connection already counted changes nothing (and is never refused).
        """
        if connection in self._key_of:
            return None
        if len(self._key_of) >= self.max_total:
            return "total"
        key = None if host is None or self.exempt(host) else address_key(host)
        if key is not None:
            if self._per_address[key] >= self.max_per_address:
                return "address"
            self._per_address[key] += 1
        self._key_of[connection] = key
        return None

    def rekey(self, old: object, new: object) -> None:
        """Count ``old`` as ``new`` from now on (a TCP connection that became TLS)."""
        if old in self._key_of:
            self._key_of[new] = self._key_of.pop(old)

    def release(self, connection: object) -> None:
        """Forget ``connection``; releasing one that is not counted changes nothing."""
        if connection not in self._key_of:
            return
        key = self._key_of.pop(connection)
        if key is not None:
            self._per_address[key] -= 1
            if self._per_address[key] <= 0:
                del self._per_address[key]


def trusted_proxies(forwarded_allow_ips: str | None) -> Callable[[str], bool]:
    """Whether a peer is one of the proxies whose forwarded headers uvicorn trusts.

    uvicorn's own parser of the setting, so both agree on what it names.
    """
    if forwarded_allow_ips is None:
        return lambda host: False
    hosts = _TrustedHosts(forwarded_allow_ips)
    return lambda host: host in hosts


def _answer(status: int, code: str, message: str) -> bytes:
    """A whole HTTP response with the API's JSON error body, after which the connection closes."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


REFUSED: dict[Refusal, bytes] = {
    "address": _answer(429, "too_many_connections", "too many open connections from this address"),
    "total": _answer(503, "too_many_connections", "the server is full; try again later"),
}
REQUEST_TIMEOUT = _answer(408, "request_timeout", "the request did not arrive in time")


@dataclass
class ConnectionGuard:
    """What the protocol classes of one process share: the registry, the timeouts, the log."""

    registry: ConnectionRegistry
    header_timeout: float
    body_progress_timeout: float
    log: RefusalLog = field(default_factory=lambda: RefusalLog(logger))

    @classmethod
    def from_settings(cls, settings: Settings, open_files: int) -> ConnectionGuard:
        max_total = settings.max_connections or connection_cap(open_files)
        guard = cls(
            ConnectionRegistry(
                max_per_address=settings.max_connections_per_address,
                max_total=max_total,
                exempt=trusted_proxies(settings.forwarded_allow_ips),
            ),
            header_timeout=settings.header_timeout_seconds,
            body_progress_timeout=settings.body_progress_timeout_seconds,
        )
        logger.info(
            "connections: at most %d per address and %d in all; request heads within %g s,"
            " bodies progressing at least every %g s",
            settings.max_connections_per_address,
            max_total,
            settings.header_timeout_seconds,
            settings.body_progress_timeout_seconds,
        )
        if settings.forwarded_allow_ips is not None:
            logger.info(
                "connections from trusted proxies (%s) are not capped per address: cap clients at the proxy",
                settings.forwarded_allow_ips,
            )
        return guard

    def refused(self, refusal: Refusal, host: str | None) -> None:
        if refusal == "address":
            assert host is not None
            key = address_key(host)
            self.log.refused(
                f"address {key}",
                "refused a connection from %s: it holds %d connections (SECURECHAT_MAX_CONNECTIONS_PER_ADDRESS)",
                key,
                self.registry.max_per_address,
            )
        else:
            self.log.refused(
                "total",
                "refused a connection from %s: the process holds %d connections, its cap"
                " (SECURECHAT_MAX_CONNECTIONS, or the open-file limit less a reserve)",
                host,
                self.registry.max_total,
            )

    def timed_out(self, part: Literal["head", "body"], host: str | None) -> None:
        if part == "head":
            self.log.refused(
                f"head {host}",
                "closed a connection from %s: its request head did not arrive within %g s"
                " (SECURECHAT_HEADER_TIMEOUT_SECONDS)",
                host,
                self.header_timeout,
            )
        else:
            self.log.refused(
                f"body {host}",
                "closed a connection from %s: its request body made no progress for %g s"
                " (SECURECHAT_BODY_PROGRESS_TIMEOUT_SECONDS)",
                host,
                self.body_progress_timeout,
            )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with the connection caps and the head and body timeouts,
    and TLS (``tls``) begun only once a connection is counted."""

    guard: ClassVar[ConnectionGuard]
    tls: ClassVar[ssl.SSLContext | None] = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._refused = False
        # Armed while a request's head is awaited (from the connection's opening, then
        # from the first byte after an answer); cancelled when the head is complete.
        self._head_timer: asyncio.TimerHandle | None = None
        # Whether any of the awaited head has arrived (a connection that sent nothing is
        # closed without an answer, as uvicorn closes one idle after keep-alive).
        self._head_started = False
        # Between a request's head and the end of its body; the timer is armed only for
        # requests whose body did not come with the head.
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_progress = 0.0
        # A TCP connection whose TLS handshake has not completed yet.
        self._awaiting_handshake: asyncio.Transport | None = None

    @property
    def _host(self) -> str | None:
        return self.client[0] if self.client else None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self.tls is not None and not is_ssl(transport):
            self._start_tls(transport)
            return
        super().connection_made(transport)
        # After a TLS handshake the connection is counted already (this changes nothing).
        refusal = self.guard.registry.claim(transport, self._host)
        if refusal is not None:
            self._refused = True
            self.guard.refused(refusal, self._host)
            transport.write(REFUSED[refusal])
            transport.close()
            return
        self._arm_head_timer()

    def shutdown(self) -> None:
        if self._awaiting_handshake is not None:
            self._awaiting_handshake.abort()
        elif self.transport is not None:
            super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # a TCP connection refused before its TLS handshake
        self._cancel_timers()
        self.guard.registry.release(self.transport)
        super().connection_lost(exc)

    def _start_tls(self, tcp: asyncio.Transport) -> None:
        """Count a TCP connection to a TLS server before its handshake (which may never
        come), then put a TLS layer with the head timeout as handshake timeout between it
        and this protocol. Done at once, as the loop starts reading right after this."""
        peer = get_remote_addr(tcp)
        host = peer[0] if peer else None
        refusal = self.guard.registry.claim(tcp, host)
        if refusal is not None:
            # Nothing to say in clear text to a TLS client.
            self.guard.refused(refusal, host)
            tcp.abort()
            return
        assert self.tls is not None
        # Known to uvicorn from now on, so that a shutdown does not wait for the handshake.
        self._awaiting_handshake = tcp
        self.connections.add(self)
        handover = _TlsHandover(self, tcp)
        handshake = self.loop.create_future()
        handshake.add_done_callback(handover.handshake_done)
        # asyncio's own TLS layer, as loop.start_tls() uses it; start_tls() itself would
        # install it a loop iteration late, after the first bytes reached this protocol.
        layer = sslproto.SSLProtocol(
            self.loop,
            handover,
            self.tls,
            handshake,
            server_side=True,
            ssl_handshake_timeout=math.ceil(self.guard.header_timeout),
            # And a peer that does not answer the close of TLS is dropped as soon (not after
            # asyncio's 30 s), so it holds no descriptor, nor a server stopping, for long.
            ssl_shutdown_timeout=math.ceil(self.guard.header_timeout),
        )
        tcp.set_protocol(layer)
        layer.connection_made(tcp)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._last_progress = self.loop.time()
        if not self._in_body:
            # Bytes outside a body start the next request's head (even bytes that llhttp
            # skips, such as blank lines, which would otherwise cancel the keep-alive
            # timeout without starting a request).
            self._arm_head_timer()
            self._head_started = True
        super().data_received(data)
        if self._in_body and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.guard.body_progress_timeout, self._body_stalled)

    def on_message_begin(self) -> None:
        self._arm_head_timer()
        self._head_started = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()
        # An upgrade leaves this protocol (the WebSocket one takes the transport).
        self._in_body = not (self.parser.should_upgrade() and self._should_upgrade())

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_started = False
            self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_started = False

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_started:
            self.guard.timed_out("head", self._host)
            # Only between answers: never into the middle of one being written.
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _body_stalled(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        timeout = self.guard.body_progress_timeout
        now = self.loop.time()
        if self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue):
            # The server is not reading (the app has not asked for more yet): no fault
            # of the client's, so its time starts again when reading does.
            self._last_progress = now
        quiet = now - self._last_progress
        if quiet < timeout:
            self._body_timer = self.loop.call_later(timeout - quiet, self._body_stalled)
            return
        self.guard.timed_out("body", self._host)
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
            # The app, waiting for the rest of the body, hears that the client is gone
            # and writes nothing more.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


class _TlsHandover(asyncio.Protocol):
    """The TLS layer's protocol until its handshake completes; then it hands the TLS
    transport, which now counts for the connection, to the HTTP protocol."""

    def __init__(self, http: GuardedHttpProtocol, tcp: asyncio.Transport) -> None:
        self.http = http
        self.tcp = tcp
        self.handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tls = cast(asyncio.Transport, transport)
        self.handed_over = True
        self.http._awaiting_handshake = None
        self.http.guard.registry.rekey(self.tcp, tls)
        self.http.connection_made(tls)
        tls.set_protocol(self.http)

    def handshake_done(self, handshake: asyncio.Future[None]) -> None:
        if not handshake.cancelled():
            handshake.exception()  # retrieved: a failed handshake is no error of the server's
        # A failed, timed-out or abandoned handshake: the TLS layer closed the connection.
        if not self.handed_over:
            self.http._awaiting_handshake = None
            self.http.connections.discard(self.http)
            self.http.guard.registry.release(self.tcp)


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, releasing the connection that the HTTP one counted."""

    guard: ClassVar[ConnectionGuard]

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.registry.release(self.transport)
        super().connection_lost(exc)


def guarded_protocols(
    guard: ConnectionGuard, tls: ssl.SSLContext | None = None
) -> tuple[type[GuardedHttpProtocol], type[GuardedWebSocketProtocol]]:
    """The HTTP and WebSocket protocol classes to give ``uvicorn.run``, sharing ``guard``.

    With ``tls`` the HTTP protocol speaks TLS itself: do not give uvicorn a certificate too.
    """

    class Http(GuardedHttpProtocol):
        pass

    class WebSocket(GuardedWebSocketProtocol):
        pass

    Http.guard = guard
    Http.tls = tls
    WebSocket.guard = guard
    return Http, WebSocket
