"""Slow connections from one address against a normal client from another.

Run from the repository root::

    python benchmarks/bench_connections.py                       # 1,100 slow, at 1,024 open files
    python benchmarks/bench_connections.py --slow 300 --open-files 256
    python benchmarks/bench_connections.py --server-src ../old   # another checkout's server
    python benchmarks/bench_connections.py --json

A real server process starts with a fresh SQLite data dir, its open-file limit set to
``--open-files`` (soft and hard, so it cannot raise it) and the default caps per address.
A normal client on 127.0.0.2 makes ``--requests`` keep-alive requests to ``/healthz`` and
opens and authenticates one inbox WebSocket, first on an idle server, then while
``--slow`` connections from 127.0.0.1 hold half a request head each (Linux routes all of
127/8 to the loopback device, so the server sees two addresses). Reported: how many slow
connections the server refused or closed within a few seconds, and the normal client's
successes and request latency. Times are wall clock on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets.sync.client
from revision import git_revision
from websockets.typing import Origin

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # for tests.conftest.start_server, as bench_browser.py uses it

from tests.api.support import registration_body  # noqa: E402
from tests.conftest import LiveServer, start_server  # noqa: E402

OTHER_ADDRESS = "127.0.0.2"


def normal_client(server: LiveServer, requests: int, token: str) -> dict[str, Any]:
    """Keep-alive requests and one WebSocket from the other address: what worked, how fast."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    transport = httpx.HTTPTransport(local_address=OTHER_ADDRESS)
    with httpx.Client(transport=transport, base_url=server.url, timeout=10) as client:
        for _ in range(requests):
            started = time.perf_counter()
            try:
                status = client.get("/healthz").status_code
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures[str(status)] = failures.get(str(status), 0) + 1
    websocket = "ready"
    try:
        with websockets.sync.client.connect(
            server.url.replace("http://", "ws://") + "/api/v1/ws",
            origin=Origin(server.url),
            source_address=(OTHER_ADDRESS, 0),
            open_timeout=10,
        ) as ws:
            ws.send(json.dumps({"type": "auth", "token": token, "since": 0}))
            websocket = json.loads(ws.recv(timeout=10))["type"]
    except Exception as exc:  # any failure is the result here
        websocket = type(exc).__name__
    ms = sorted(1000 * seconds for seconds in latencies)
    return {
        "ok": len(latencies),
        "failed": failures,
        "median_ms": round(statistics.median(ms), 2) if ms else None,
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2) if ms else None,
        "websocket": websocket,
    }


def flood(server: LiveServer, count: int, settle: float) -> tuple[list[socket.socket], int]:
    """``count`` connections from 127.0.0.1, each with half a request head; how many the
    server closed (refused, or answered and closed) within ``settle`` seconds."""
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    sockets = []
    for _ in range(count):
        try:
            sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            continue
        sockets.append(sock)
    closed = 0
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + settle
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                closed += 1
    return sockets, closed


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = {
        # The defaults meant for a public address (start_server lifts them for tests);
        # a head timeout long enough that the slow connections outlast the measurement.
        "SECURECHAT_MAX_CONNECTIONS_PER_ADDRESS": "256",
        "SECURECHAT_WS_MAX_PER_ADDRESS": "128",
        "SECURECHAT_HEADER_TIMEOUT_SECONDS": "600",
    }
    if args.server_src:
        env["PYTHONPATH"] = str(Path(args.server_src).resolve() / "src")
    server = start_server(
        work / "data", work / "server.log", extra_env=env, open_files=(args.open_files, args.open_files)
    )
    slow: list[socket.socket] = []
    try:
        token = httpx.post(
            f"{server.url}/api/v1/auth/register", json=registration_body("bob"), timeout=30
        ).json()["access_token"]
        normal_client(server, 50, token)  # warm up
        idle = normal_client(server, args.requests, token)
        slow, closed = flood(server, args.slow, args.settle)
        flooded = normal_client(server, args.requests, token)
        log = server.log()
        return {
            "idle": idle,
            "flooded": flooded,
            "slow_opened": len(slow),
            "slow_closed_by_server": closed,
            "cap_log_lines": log.count("refused a connection from"),
        }
    finally:
        for sock in slow:
            sock.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--slow", type=int, default=1100, help="slow connections from 127.0.0.1 (default 1100)"
    )
    parser.add_argument(
        "--open-files", type=int, default=1024, help="the server's open-file limit (default 1024)"
    )
    parser.add_argument(
        "--requests", type=int, default=500, help="normal client requests per phase (default 500)"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to watch the slow connections")
    parser.add_argument("--server-src", help="run the server of another checkout (its directory)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="securechat-bench-connections-"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": f"server from {args.server_src}" if args.server_src else git_revision(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "slow": args.slow,
        "open_files": args.open_files,
        **result,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"# {args.slow} slow connections from 127.0.0.1, server at {args.open_files} open files;"
        f" {report['machine']}, {report['revision']}, {report['date']}"
    )
    print()
    print(
        f"slow connections opened {result['slow_opened']}, closed by the server within {args.settle:g} s:"
        f" {result['slow_closed_by_server']}; cap log lines: {result['cap_log_lines']}"
    )
    print()
    print("| normal client (127.0.0.2) | requests ok | failed | median | p95 | WebSocket |")
    print("|---|---:|---|---:|---:|---|")
    for phase in ("idle", "flooded"):
        r = result[phase]
        print(
            f"| {phase} | {r['ok']} / {args.requests} | {r['failed'] or '-'} | {r['median_ms']} ms |"
            f" {r['p95_ms']} ms | {r['websocket']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
