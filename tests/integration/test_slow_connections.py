"""Slow, idle and too many connections against a real server (issue 12, items 1 and 12).

A request whose headers or body stop arriving is closed; one address holds at most its
share of the server's connections, HTTP and WebSocket, while a client from another
address (127.0.0.2: Linux routes all of 127/8 to the loopback device) is served; and
the server raises its open-file limit at start where the hard limit allows.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import selectors
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from ..api.support import registration_body
from ..conftest import LiveServer, start_server
from .test_tls import self_signed

# Far beyond every timeout the servers here are given: a connection still open after
# this long was not going to be closed.
WAIT = 30
OTHER_ADDRESS = "127.0.0.2"


def address_of(server: LiveServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def closed_by_server(sock: socket.socket, wait: float = WAIT) -> bytes:
    """Everything the server sends until it closes the connection.

    Fails if the connection is still open after ``wait`` seconds.
    """
    sock.settimeout(wait)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"still open after {wait} s (received {received[:60]!r})") from None
    except ConnectionResetError:
        pass
    return received


def test_a_request_whose_headers_stop_arriving_is_closed(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_HEADER_TIMEOUT_SECONDS": "2"}
    )
    host, port = address_of(server)
    kept = http.client.HTTPConnection(host, port, timeout=WAIT)
    with contextlib.ExitStack() as opened:
        opened.callback(server.stop)
        opened.callback(kept.close)
        partial = {
            "nothing": b"",
            "half a request line": b"GET /api/v1/hea",
            "half the headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1",
        }
        sockets = {name: opened.enter_context(socket.create_connection((host, port))) for name in partial}
        for name, data in partial.items():
            sockets[name].sendall(data)
        # A kept-alive connection, after its first answer, starting a second request.
        kept.request("GET", "/healthz")
        first = kept.getresponse()
        assert first.status == 200
        first.read()
        assert kept.sock is not None
        kept.sock.sendall(b"GET /api/v1/hea")

        answers = {name: closed_by_server(sock) for name, sock in sockets.items()}
        answers["a second request"] = closed_by_server(kept.sock)
        # A connection that sent nothing is closed without an answer (as after keep-alive).
        assert answers.pop("nothing") == b""
        for name, answer in answers.items():
            assert answer.startswith(b"HTTP/1.1 408 "), (name, answer[:80])
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
        assert httpx.get(f"{server.url}/healthz", timeout=WAIT).status_code == 200
        assert "Traceback" not in server.log()


def test_a_request_body_that_stops_arriving_is_closed(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_BODY_PROGRESS_TIMEOUT_SECONDS": "2"}
    )
    try:
        host, port = address_of(server)
        with socket.create_connection((host, port)) as sock:
            sock.sendall(
                b"POST /api/v1/auth/prelogin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            # Some progress first, then none.
            sock.sendall(b'{"username": ')
            sock.sendall(b'"alice"')
            answer = closed_by_server(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
        # A body that keeps coming is read to the end and answered.
        assert httpx.post(f"{server.url}/api/v1/auth/prelogin", json={"username": "alice"}).status_code == 200
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def wait_closed(sockets: list[socket.socket], at_least: int, wait: float = WAIT) -> list[socket.socket]:
    """The sockets the server has closed (or answered), once at least ``at_least`` are."""
    closed: list[socket.socket] = []
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + wait
        while len(closed) < at_least and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                closed.append(key.fileobj)  # type: ignore[arg-type]
    return closed


SLOW = 300
CAP = 100


def test_slow_connections_from_one_address_leave_room_for_others(tmp_path: Path) -> None:
    # 256 open files (soft and hard, so the server cannot raise it): 300 connections
    # from one address would use them all. A long header timeout keeps them open for
    # the whole test: the cap per address is what must hold here.
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        extra_env={
            "SECURECHAT_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
            "SECURECHAT_HEADER_TIMEOUT_SECONDS": "300",
        },
        open_files=(256, 256),
    )
    host, port = address_of(server)
    slow: list[socket.socket] = []
    other = httpx.Client(
        transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS), base_url=server.url, timeout=WAIT
    )
    try:
        for _ in range(SLOW):
            sock = socket.create_connection((host, port), timeout=WAIT)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)

        # A client from another address is served: over HTTP ...
        try:
            health = other.get("/healthz").status_code
        except httpx.HTTPError as exc:
            health = repr(exc)  # type: ignore[assignment]
        assert health == 200, health
        registered = other.post("/api/v1/auth/register", json=registration_body("bob"))
        assert registered.status_code == 201, registered.text
        # ... and over the WebSocket.
        with websockets.sync.client.connect(
            server.url.replace("http://", "ws://") + "/api/v1/ws",
            origin=Origin(server.url),
            source_address=(OTHER_ADDRESS, 0),
            open_timeout=WAIT,
        ) as ws:
            ws.send(json.dumps({"type": "auth", "token": registered.json()["access_token"], "since": 0}))
            assert json.loads(ws.recv(timeout=WAIT))["type"] == "ready"

        # The slow address holds its share and no more: the rest were refused at once.
        closed = wait_closed(slow, SLOW - CAP)
        assert len(closed) >= SLOW - CAP
        answers = {closed_by_server(sock)[:12] for sock in closed}
        assert answers <= {b"", b"HTTP/1.1 429"}, answers
        log = server.log()
        assert f"refused a connection from 127.0.0.1: it holds {CAP} connections" in log
        # One line for the flood, not one per refused connection.
        assert log.count("refused a connection from") < 5
    finally:
        for sock in slow:
            sock.close()
        other.close()
        server.stop()


def test_the_open_file_limit_is_raised_at_start(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log", open_files=(256, 4096))
    try:
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
        (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert line.split()[3:5] == ["4096", "4096"], line
        assert "open-file limit raised from 256 to 4096" in server.log()
    finally:
        server.stop()


WS_CAP = 3


def test_websockets_per_address_are_capped(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        # Sockets that never authenticate stay for the whole test.
        extra_env={"SECURECHAT_WS_MAX_PER_ADDRESS": str(WS_CAP), "SECURECHAT_WS_AUTH_TIMEOUT_SECONDS": "300"},
    )
    url = server.url.replace("http://", "ws://") + "/api/v1/ws"

    def connect(source: str = "127.0.0.1") -> websockets.sync.client.ClientConnection:
        return websockets.sync.client.connect(
            url, origin=Origin(server.url), source_address=(source, 0), open_timeout=WAIT
        )

    with contextlib.ExitStack() as held:
        held.callback(server.stop)
        token = httpx.post(f"{server.url}/api/v1/auth/register", json=registration_body("alice")).json()[
            "access_token"
        ]
        sockets = [held.enter_context(connect()) for _ in range(WS_CAP)]
        # Over the cap: refused with a frame and 4429, before any authentication.
        with connect() as refused:
            try:
                frame = json.loads(refused.recv(timeout=WAIT))
            except (ConnectionClosed, TimeoutError) as exc:
                pytest.fail(f"no refusal frame: {exc!r}")
            assert frame["code"] == "too_many_connections", frame
            with pytest.raises(ConnectionClosed):
                refused.recv(timeout=WAIT)
            assert refused.close_code == 4429
        assert "refused a WebSocket from 127.0.0.1" in server.log()
        # Another address is not affected.
        with connect(OTHER_ADDRESS) as ws:
            ws.send(json.dumps({"type": "auth", "token": token, "since": 0}))
            assert json.loads(ws.recv(timeout=WAIT))["type"] == "ready"
        # A closed socket frees its place (once the server has seen it go).
        sockets.pop().close()
        deadline = time.monotonic() + WAIT
        while True:
            with connect() as ws:
                ws.send(json.dumps({"type": "auth", "token": token, "since": 0}))
                frame = json.loads(ws.recv(timeout=WAIT))
            if frame["type"] == "ready" or time.monotonic() > deadline:
                break
        assert frame["type"] == "ready", frame


def test_a_trusted_proxy_is_capped_by_its_clients_addresses(tmp_path: Path) -> None:
    # Every client behind a proxy shares its address: connections from it are not
    # capped per address (the proxy caps its clients), and the WebSocket cap counts the
    # forwarded client address.
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        extra_env={
            "SECURECHAT_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "SECURECHAT_MAX_CONNECTIONS_PER_ADDRESS": "5",
            "SECURECHAT_WS_MAX_PER_ADDRESS": "2",
            "SECURECHAT_WS_AUTH_TIMEOUT_SECONDS": "300",
        },
    )
    host, port = address_of(server)
    with contextlib.ExitStack() as opened:
        opened.callback(server.stop)

        def answers(source: str, count: int) -> list[int]:
            """One request on each of ``count`` connections from ``source``, opened one after
            the other; each answered one is kept open (a second request begun on it)."""
            statuses = []
            for _ in range(count):
                sock = opened.enter_context(
                    socket.create_connection((host, port), source_address=(source, 0))
                )
                sock.settimeout(WAIT)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                response = http.client.HTTPResponse(sock)
                response.begin()
                response.read()
                statuses.append(response.status)
                if response.status == 200:
                    sock.sendall(b"GET /hea")
            return statuses

        assert answers("127.0.0.1", 10) == [200] * 10
        assert answers(OTHER_ADDRESS, 10) == [200] * 5 + [429] * 5

        url = server.url.replace("http://", "ws://") + "/api/v1/ws"

        def first_frame(client: str) -> dict[str, object]:
            ws = opened.enter_context(
                websockets.sync.client.connect(
                    url, origin=Origin(server.url), additional_headers={"X-Forwarded-For": client}
                )
            )
            with contextlib.suppress(ConnectionClosed):  # a refused socket may be closed already
                ws.send(json.dumps({"type": "auth", "token": "not-a-token", "since": 0}))
            frame: dict[str, object] = json.loads(ws.recv(timeout=WAIT))
            return frame

        # Two sockets from one client behind the proxy (refused for their bad token, but
        # only after the address cap let them in), then the third is refused by the cap.
        held = [
            opened.enter_context(
                websockets.sync.client.connect(
                    url, origin=Origin(server.url), additional_headers={"X-Forwarded-For": "203.0.113.9"}
                )
            )
            for _ in range(2)
        ]
        assert len(held) == 2
        assert first_frame("203.0.113.9")["code"] == "too_many_connections"
        assert first_frame("203.0.113.10")["code"] != "too_many_connections"
        assert "refused a WebSocket from 203.0.113.9" in server.log()


def test_with_tls_connections_are_counted_before_their_handshake(tmp_path: Path) -> None:
    # `serve --tls-cert`: uvicorn's own TLS would show a connection to the server only
    # after its handshake, so connections that never send one would be counted nowhere.
    cert, key = self_signed(tmp_path)
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        extra_env={
            "SECURECHAT_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
            "SECURECHAT_HEADER_TIMEOUT_SECONDS": "300",
        },
        open_files=(256, 256),
        tls=(cert, key),
    )
    host, port = address_of(server)
    context = ssl.create_default_context(cafile=str(cert))
    with contextlib.ExitStack() as opened:
        opened.callback(server.stop)
        # Connections that never start their handshake.
        silent = [
            opened.enter_context(socket.create_connection((host, port), timeout=WAIT)) for _ in range(SLOW)
        ]
        other = opened.enter_context(
            httpx.Client(
                transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS, verify=context),
                base_url=server.url,
                timeout=WAIT,
            )
        )
        try:
            health = other.get("/healthz").status_code
        except httpx.HTTPError as exc:
            health = repr(exc)  # type: ignore[assignment]
        assert health == 200, health
        assert len(wait_closed(silent, SLOW - CAP)) >= SLOW - CAP
        assert f"refused a connection from 127.0.0.1: it holds {CAP} connections" in server.log()
        # It stops at once and cleanly with handshakes still awaited.
        other.close()
        server.stop()
        assert "Traceback" not in server.log() and "ERROR" not in server.log()


def test_with_tls_a_handshake_must_arrive_in_time(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = start_server(
        tmp_path / "data",
        tmp_path / "log",
        extra_env={"SECURECHAT_HEADER_TIMEOUT_SECONDS": "2"},
        tls=(cert, key),
    )
    host, port = address_of(server)
    context = ssl.create_default_context(cafile=str(cert))
    with contextlib.ExitStack() as opened:
        opened.callback(server.stop)
        silent = opened.enter_context(socket.create_connection((host, port)))
        # After the handshake, the head has its own deadline.
        slow = opened.enter_context(
            context.wrap_socket(socket.create_connection((host, port)), server_hostname="127.0.0.1")
        )
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert closed_by_server(silent) == b""
        assert closed_by_server(slow).startswith(b"HTTP/1.1 408 ")
        assert httpx.get(f"{server.url}/healthz", verify=context).status_code == 200
        assert "Traceback" not in server.log()
