"""Delivery benchmark: SecureChat's inbox WebSocket against a bare relay, plus client crypto.

Run from the repository root::

    python benchmarks/bench_delivery.py            # full run, a few minutes
    python benchmarks/bench_delivery.py --quick    # smaller phases, about a minute
    python benchmarks/bench_delivery.py --json     # machine-readable result on stdout

Everything runs on loopback on this machine; progress goes to stderr, the result table
(or JSON) to stdout. ``--help`` lists the knobs (pairs, window, rate, ack policy,
compression, ``--only``, ``--server-src`` to measure another checkout).

A. ``N`` client pairs (sender ``i`` -> receiver ``i``, default 50) talk to a real server
   process started like ``tests/conftest.py`` does, with a fresh SQLite data dir.
   Phase "throughput": every sender keeps a window of unanswered ``send`` frames in
   flight. Phase "steady": a fixed total rate spread over the pairs, open loop. For each
   phase: messages delivered per second (first send -> last delivery), latency from the
   sender's ``send`` to the receiver's ``message`` frame (both ends of a pair live in the
   same load process and use one ``perf_counter_ns`` clock), and the server process's CPU
   time (user + system, all threads, from psutil) per delivered message.
B. The same phases against ``benchmarks/bare_relay.py``: the same frames, no auth, no
   validation, no storage, no receipts. The ratio column is securechat / bare.
C. Client crypto: ``seal_message`` and ``open_message`` for a 1 KiB text in a direct
   conversation (two recipients).

The load generator runs in separate processes and shares the machine's cores with the
server under test; the header says how many there are.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvloop
import websockets
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)
from revision import git_revision  # benchmarks/revision.py, beside this script
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

import securechat
from securechat.protocol.envelope import Envelope, encode_payload, open_message, padded_size, seal_message
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity, seal_key_bundle

REPO = Path(__file__).resolve().parent.parent
BARE_RELAY = Path(__file__).resolve().parent / "bare_relay.py"
WS_PATH = "/api/v1/ws"
WS_MAX_SIZE = 2 * 1024 * 1024
KDF_ITERATIONS = 600_000
DEFAULT_ACK_BATCH = 32
# As SecureChat's clients do (client/realtime.py, web/app/messenger.js).
DEFAULT_ACK_DELAY_MS = 50.0
CONNECT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0
SERVER_START_TIMEOUT = 30.0


# ---------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Config:
    pairs: int
    load_procs: int
    window: int
    throughput_per_pair: int
    steady_rate: float
    steady_seconds: float
    text_chars: int
    ack_batch: int
    ack_delay: float
    crypto_iterations: int
    compression: str | None
    send_timeout: float
    server_src: Path | None
    targets: tuple[str, ...]

    @property
    def steady_per_pair(self) -> int:
        return max(1, round(self.steady_rate * self.steady_seconds / self.pairs))

    @property
    def steady_interval(self) -> float:
        """Seconds between two sends of one sender in the steady phase."""
        return self.pairs / self.steady_rate


def smallest_bucket_text_chars() -> int:
    """The longest ASCII text whose payload still pads to the smallest (256-byte) bucket.

    With two RSA-2048 recipients the wrapped keys and signature alone are ~1 KB of
    base64, so an envelope cannot be 1 KiB; this gives the smallest envelope there is.
    """
    empty = len(encode_payload({"type": "text", "text": ""}))
    chars = padded_size(1) - 4 - empty
    assert padded_size(4 + empty + chars) == padded_size(1)
    return chars


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(description="SecureChat delivery benchmark (loopback only).")
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute in all)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--pairs", type=int, default=50, help="sender/receiver pairs (default 50)")
    parser.add_argument("--load-procs", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--window", type=int, default=32, help="unanswered sends per sender in phase 1")
    parser.add_argument("--per-pair", type=int, help="messages per pair in phase 1 (default 200, quick 40)")
    parser.add_argument("--rate", type=float, default=1000.0, help="total messages/s in phase 2")
    parser.add_argument("--seconds", type=float, help="length of phase 2 (default 10, quick 3)")
    parser.add_argument("--text-chars", type=int, help="text length (default: fill the smallest pad bucket)")
    parser.add_argument(
        "--ack-batch", type=int, default=DEFAULT_ACK_BATCH, help="clients ack after this many message entries"
    )
    parser.add_argument(
        "--ack-delay-ms",
        type=float,
        default=DEFAULT_ACK_DELAY_MS,
        help="...or this long after the first entry it covers",
    )
    parser.add_argument("--crypto-iterations", type=int, default=200)
    parser.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="deflate",
        help="client permessage-deflate offer (default deflate, as the securechat client does)",
    )
    parser.add_argument(
        "--only", choices=("securechat", "bare"), help="benchmark one server only (no ratio column)"
    )
    parser.add_argument(
        "--server-src",
        type=Path,
        help="run the server from another source tree (its src/ goes first on PYTHONPATH)",
    )
    args = parser.parse_args(argv)
    if args.server_src is not None and not (args.server_src / "src" / "securechat" / "__init__.py").is_file():
        parser.error(f"--server-src: no src/securechat package under {args.server_src}")
    if args.pairs < 1 or args.load_procs < 1 or args.window < 1 or args.rate <= 0:
        parser.error("--pairs, --load-procs, --window and --rate must be positive")
    config = Config(
        pairs=args.pairs,
        load_procs=min(args.load_procs, args.pairs),
        window=args.window,
        throughput_per_pair=args.per_pair or (40 if args.quick else 200),
        steady_rate=args.rate,
        steady_seconds=args.seconds or (3.0 if args.quick else 10.0),
        text_chars=args.text_chars if args.text_chars is not None else smallest_bucket_text_chars(),
        ack_batch=args.ack_batch,
        ack_delay=args.ack_delay_ms / 1000,
        crypto_iterations=args.crypto_iterations,
        compression=None if args.compression == "none" else "deflate",
        # Bounds on waiting for the servers' answers: generous, because a saturated server
        # answers at its own pace (~100-200 messages/s for SecureChat on 2 cores).
        send_timeout=120.0 if args.quick else 300.0,
        server_src=args.server_src,
        targets=(args.only,) if args.only else ("securechat", "bare"),
    )
    return config, args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Identities and envelopes, made in a process pool (RSA generation and sealing are slow)


@dataclass(frozen=True)
class IdentityKeys:
    """A picklable identity: the private keys as PKCS#8 DER."""

    username: str
    signing_der: bytes
    encryption_der: bytes

    def load(self) -> PrivateIdentity:
        signing = load_der_private_key(self.signing_der, password=None)
        encryption = load_der_private_key(self.encryption_der, password=None)
        assert isinstance(signing, ed25519.Ed25519PrivateKey)
        assert isinstance(encryption, rsa.RSAPrivateKey)
        return PrivateIdentity.from_private_keys(Username(self.username), signing, encryption)


def der(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def make_identity(username: str) -> IdentityKeys:
    identity = PrivateIdentity.generate(Username(username))
    return IdentityKeys(username, der(identity.signing_private), der(identity.encryption_private))


_POOL_IDENTITIES: dict[str, IdentityKeys] = {}
_POOL_LOADED: dict[str, PrivateIdentity] = {}


def init_sealer(identities: dict[str, IdentityKeys]) -> None:
    _POOL_IDENTITIES.update(identities)


def _loaded(username: str) -> PrivateIdentity:
    if username not in _POOL_LOADED:
        _POOL_LOADED[username] = _POOL_IDENTITIES[username].load()
    return _POOL_LOADED[username]


def seal_batch(task: tuple[str, str, int, int]) -> list[tuple[str, str]]:
    """Seal ``count`` texts from sender to receiver; return (message_id, envelope JSON) pairs."""
    sender_name, receiver_name, count, text_chars = task
    sender, receiver = _loaded(sender_name), _loaded(receiver_name)
    conversation_id = direct_conversation_id(sender.username, receiver.username)
    recipients = {sender.username: sender.public, receiver.username: receiver.public}
    sealed: list[tuple[str, str]] = []
    for _ in range(count):
        envelope = seal_message(
            sender, conversation_id, recipients, {"type": "text", "text": "x" * text_chars}
        )
        sealed.append((envelope.header.message_id, json.dumps(envelope.to_wire(), separators=(",", ":"))))
    return sealed


def send_frames(sealed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pre-build the ``send`` frames so the timed phases only write them."""
    return [
        (mid, f'{{"type":"send","ref":{ref},"envelope":{text}}}') for ref, (mid, text) in enumerate(sealed)
    ]


# ---------------------------------------------------------------------------------------
# Server processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    name: str
    command: list[str]
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + WS_PATH

    def cpu_sample(self) -> dict[str, float]:
        """CPU seconds so far of the whole server process (every thread): user, system, and
        the main (event loop) thread's user + system."""
        process = psutil.Process(self.process.pid)
        times = process.cpu_times()
        main = next((t for t in process.threads() if t.id == process.pid), None)
        return {
            "user": float(times.user),
            "system": float(times.system),
            "main_thread": float(main.user_time + main.system_time) if main else 0.0,
        }

    def log_tail(self, lines: int = 30) -> str:
        """The last warnings and errors of the server's log (or its last lines if none)."""
        try:
            log = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        markers = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error", "  File ")
        notable = [line for line in log if any(marker in line for marker in markers)]
        return "\n".join((notable or log)[-lines:]) or "(empty)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    name: str, command: list[str], env: dict[str, str], port: int, log_path: Path
) -> ServerProcess:
    """Start a server and wait for ``GET /healthz`` to answer 200, as tests/conftest.py does."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    server = ServerProcess(name, command, f"http://127.0.0.1:{port}", log_path, process)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    with httpx.Client(trust_env=False, timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{server.log_tail()}")
            try:
                if client.get(f"{server.url}/healthz").status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")


def securechat_command(port: int, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "securechat", "serve", "--port", str(port), "--data-dir", str(data_dir)]


def origin_of(ws_url: str) -> Origin:
    """The web origin of a ws:// URL, which the server's handshake requires."""
    return Origin("http://" + ws_url.split("://", 1)[1].split("/", 1)[0])


def bare_command(port: int, *, deflate: bool = True) -> list[str]:
    return [sys.executable, str(BARE_RELAY), "--port", str(port), *([] if deflate else ["--no-deflate"])]


async def negotiated_extensions(ws_url: str, compression: str | None) -> str:
    """What the server answers to our handshake's extension offer (no auth needed)."""
    async with connect(
        ws_url, compression=compression, proxy=None, open_timeout=10, origin=origin_of(ws_url)
    ) as ws:
        assert ws.response is not None
        return str(ws.response.headers.get("Sec-WebSocket-Extensions", ""))


def server_env(config: Config, data_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    # The load comes from one address: lift the per-address limits meant for the open internet.
    for name in (
        "REGISTER_PER_MINUTE",
        "PRELOGIN_PER_MINUTE",
        "WS_CONNECTS_PER_MINUTE",
        "MESSAGES_PER_MINUTE",
        "MAX_CONNECTIONS_PER_ADDRESS",
        "WS_MAX_PER_ADDRESS",
    ):
        env.setdefault(f"SECURECHAT_{name}", "1000000")
    if data_dir is not None:
        env["SECURECHAT_DATA_DIR"] = str(data_dir)
    if config.server_src is not None:
        src = str((config.server_src / "src").resolve())
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def register_users(
    base_url: str, identities: list[IdentityKeys], concurrency: int = 4
) -> dict[str, str]:
    """Register every user over HTTP with the real protocol; return their access tokens.

    A real client derives the auth and wrap keys from the password with PBKDF2 (600,000
    iterations, ~0.3 s each). The server only ever sees the auth key, and what it does
    with it (argon2id) is the same for any 32 bytes, so benchmark users skip PBKDF2 and
    use random keys.
    """
    slots = asyncio.Semaphore(concurrency)
    tokens: dict[str, str] = {}

    async def register(client: httpx.AsyncClient, keys: IdentityKeys) -> None:
        identity = keys.load()
        public = {k: v for k, v in identity.public.to_wire().items() if k != "username"}
        body = {
            "username": keys.username,
            "auth_key": base64.b64encode(os.urandom(32)).decode(),
            "kdf": {
                "algorithm": "pbkdf2-sha256",
                "iterations": KDF_ITERATIONS,
                "salt": base64.b64encode(os.urandom(16)).decode(),
            },
            "public_keys": public,
            "key_bundle": seal_key_bundle(identity, os.urandom(32)),
        }
        async with slots:
            response = await client.post("/api/v1/auth/register", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"register {keys.username}: {response.status_code} {response.text[:300]}")
        tokens[keys.username] = response.json()["access_token"]

    async with httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False) as client:
        await asyncio.gather(*(register(client, keys) for keys in identities))
    return tokens


async def open_conversations(base_url: str, pairs: list[tuple[str, str]], tokens: dict[str, str]) -> None:
    """Create the direct conversations up front, so the timed phases only send."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False) as client:
        for sender, receiver in pairs:
            response = await client.post(
                "/api/v1/conversations/direct",
                json={"peer": receiver},
                headers={"Authorization": f"Bearer {tokens[sender]}"},
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"open conversation {sender}->{receiver}: {response.status_code} {response.text}"
                )


# ---------------------------------------------------------------------------------------
# Load generator (runs in child processes)


@dataclass(frozen=True)
class PairSpec:
    index: int
    sender: str
    sender_token: str
    sender_since: int
    receiver: str
    receiver_token: str
    receiver_since: int
    frames: list[tuple[str, str]]


@dataclass(frozen=True)
class WorkerSpec:
    worker: int
    ws_url: str
    mode: str  # "throughput" or "steady"
    pairs: list[PairSpec]
    total_pairs: int
    window: int
    interval: float
    expect_receipts: bool
    compression: str | None
    send_timeout: float
    drain_timeout: float
    ack_batch: int
    ack_delay: float


class ConnectionLost(Exception):
    """A peer's socket closed before its pair finished."""


@dataclass
class Shared:
    """What the peers of one load process share and record; joined by the parent afterwards."""

    ack_batch: int
    ack_delay: float
    send_ns: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    first_send_wall_ns: int | None = None
    last_send_wall_ns: int | None = None
    last_delivery_wall_ns: int | None = None
    max_schedule_lag: float = 0.0

    def note_send(self, message_id: str) -> None:
        self.send_ns[message_id] = time.perf_counter_ns()
        wall = time.time_ns()
        if self.first_send_wall_ns is None:
            self.first_send_wall_ns = wall
        self.last_send_wall_ns = wall


class Peer:
    """One authenticated WebSocket: reads every frame and acknowledges message entries as
    SecureChat's clients do: every ``ack_batch`` of them, or ``ack_delay`` seconds after
    the first one not yet acknowledged (receipts alone are not acknowledged)."""

    def __init__(self, ws: ClientConnection, username: str, since: int, shared: Shared) -> None:
        self.ws = ws
        self.username = username
        self.shared = shared
        self.sends = 0
        self.max_seq = since
        self.ack_sent = since
        self.acked = since
        self.pending = 0
        self.acks = 0
        self.replies = 0
        self.send_errors = 0
        self.delivered = 0
        self.own_copies = 0
        self.receipts = 0
        self.receipt_frames = 0
        self.stray = 0
        self.errors: Counter[str] = Counter()
        self.closed: str | None = None
        self.changed = asyncio.Event()
        self.has_pending = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        url: str,
        username: str,
        token: str,
        since: int,
        shared: Shared,
        compression: str | None,
    ) -> Peer:
        ws = await connect(
            url,
            max_size=WS_MAX_SIZE,
            compression=compression,
            proxy=None,
            open_timeout=20,
            origin=origin_of(url),
        )
        await ws.send(json.dumps({"type": "auth", "token": token, "since": since}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if ready.get("type") != "ready":
            await ws.close()
            raise RuntimeError(f"{username}: expected a ready frame, got {ready}")
        peer = cls(ws, username, since, shared)
        peer.tasks = [asyncio.create_task(peer.read_loop()), asyncio.create_task(peer.flush_loop())]
        return peer

    async def read_loop(self) -> None:
        try:
            async for text in self.ws:
                self.handle(text)
                if self.pending >= self.shared.ack_batch:
                    await self.flush()
        except websockets.ConnectionClosed as exc:
            self.closed = f"connection closed: {exc}"
        except Exception as exc:  # a frame we cannot read: stop this peer, loudly
            self.closed = f"reader failed: {exc!r}"
        else:
            self.closed = "connection closed by the server"
        finally:
            self.changed.set()

    def handle(self, text: str | bytes) -> None:
        now = time.perf_counter_ns()
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "message":
            self._entry(frame["seq"])
            if frame["sender"] == self.username:
                self.own_copies += 1
            else:
                sent = self.shared.send_ns.pop(frame["message_id"], None)
                if sent is None:
                    self.stray += 1
                else:
                    self.delivered += 1
                    self.shared.latencies_ns.append(now - sent)
                    self.shared.last_delivery_wall_ns = time.time_ns()
        elif kind == "receipt":
            # Processed, so the next ack covers it, but it asks for no ack of its own.
            self.max_seq = max(self.max_seq, frame["seq"])
            # One receipt lists every message an acknowledgement covered (PROTOCOL.md,
            # "Transport"); count messages, not frames.
            ids = frame.get("message_ids")
            self.receipts += len(ids) if isinstance(ids, list) else 1
            self.receipt_frames += 1
        elif kind == "sent":
            self.replies += 1
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1
            if frame.get("ref") is not None:  # the answer to one of our sends
                self.replies += 1
                self.send_errors += 1
        elif kind == "acked":
            self.acked = max(self.acked, int(frame["seq"]))
        self.changed.set()

    def _entry(self, seq: int) -> None:
        self.max_seq = max(self.max_seq, seq)
        self.pending += 1
        self.has_pending.set()

    async def flush(self) -> None:
        self.pending = 0
        self.has_pending.clear()
        if self.max_seq > self.ack_sent:
            self.ack_sent = self.max_seq
            self.acks += 1
            await self.ws.send(json.dumps({"type": "ack", "seq": self.ack_sent}))

    async def flush_loop(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await self.has_pending.wait()
                await asyncio.sleep(self.shared.ack_delay)
                if self.pending:
                    await self.flush()

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self.closed:
                raise ConnectionLost(self.closed)
            self.changed.clear()
            await self.changed.wait()

    async def finish(self) -> None:
        """Acknowledge everything seen and wait for the server to confirm it."""
        await self.flush()
        if self.acked < self.ack_sent:
            await self.ws.send(json.dumps({"type": "ack", "seq": self.ack_sent, "confirm": True}))
        await self.until(lambda: self.acked >= self.ack_sent)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)


async def send_pipelined(peer: Peer, frames: list[tuple[str, str]], window: int) -> None:
    """Keep ``window`` sends without an answer in flight."""
    for message_id, frame in frames:
        if peer.sends - peer.replies >= window:
            await peer.until(lambda: peer.sends - peer.replies < window)
        peer.shared.note_send(message_id)
        peer.sends += 1
        await peer.ws.send(frame)


async def send_steady(peer: Peer, frames: list[tuple[str, str]], start: float, interval: float) -> None:
    loop = asyncio.get_running_loop()
    for number, (message_id, frame) in enumerate(frames):
        delay = start + number * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            peer.shared.max_schedule_lag = max(peer.shared.max_schedule_lag, -delay)
        peer.shared.note_send(message_id)
        peer.sends += 1
        await peer.ws.send(frame)


async def run_load(spec: WorkerSpec, start_barrier: Any, end_barrier: Any) -> dict[str, Any]:
    shared = Shared(ack_batch=spec.ack_batch, ack_delay=spec.ack_delay)
    slots = asyncio.Semaphore(16)

    async def open_peer(username: str, token: str, since: int) -> Peer:
        async with slots:
            return await Peer.open(spec.ws_url, username, token, since, shared, spec.compression)

    async with asyncio.timeout(CONNECT_TIMEOUT):
        opened = await asyncio.gather(
            *(
                open_peer(name, token, since)
                for pair in spec.pairs
                for name, token, since in (
                    (pair.sender, pair.sender_token, pair.sender_since),
                    (pair.receiver, pair.receiver_token, pair.receiver_since),
                )
            )
        )
    senders, receivers = opened[0::2], opened[1::2]
    outcome = "ok"
    failures: Counter[str] = Counter()
    try:
        await asyncio.to_thread(start_barrier.wait, CONNECT_TIMEOUT)
        cpu_start = time.process_time()
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def send_all(pair: PairSpec, sender: Peer) -> None:
            if spec.mode == "throughput":
                await send_pipelined(sender, pair.frames, spec.window)
            else:
                offset = pair.index / spec.total_pairs * spec.interval
                await send_steady(sender, pair.frames, start + offset, spec.interval)
            await sender.until(lambda: sender.replies >= len(pair.frames))

        async def drain_sender(pair: PairSpec, sender: Peer) -> None:
            # The sender's own copies are not awaited: the server may skip echoing them to
            # the connection that sent them. Receipts are part of the work being measured.
            stored = len(pair.frames) - sender.send_errors
            if spec.expect_receipts:
                await sender.until(lambda: sender.receipts >= stored)
            await sender.finish()

        async def drain_receiver(pair: PairSpec, sender: Peer, receiver: Peer) -> None:
            await receiver.until(lambda: receiver.delivered >= len(pair.frames) - sender.send_errors)
            await receiver.finish()

        async def run_pair(pair: PairSpec, sender: Peer, receiver: Peer) -> None:
            # Pairs are independent: one lost connection does not stop the others.
            stage[pair.index] = "send"
            await send_all(pair, sender)
            stage[pair.index] = "drain"
            results = await asyncio.gather(
                drain_sender(pair, sender), drain_receiver(pair, sender, receiver), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            stage[pair.index] = "done"

        stage: dict[int, str] = {}
        timeout = spec.send_timeout + spec.drain_timeout
        results = await _gather_with_timeout(
            [run_pair(*pps) for pps in zip(spec.pairs, senders, receivers, strict=True)], timeout
        )
        if results is None:
            waiting = Counter(stage.values())
            del waiting["done"]
            outcome = f"timeout after {timeout:.0f} s with pairs still in stage {dict(waiting)}"
        else:
            failures.update(f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException))
        cpu_used = time.process_time() - cpu_start
        await asyncio.to_thread(end_barrier.wait, spec.send_timeout + spec.drain_timeout + 60)
    finally:
        await asyncio.gather(*(peer.close() for peer in opened))
    errors: Counter[str] = Counter()
    for peer in opened:
        errors.update(peer.errors)
    return {
        "worker": spec.worker,
        "outcome": outcome,
        "failures": dict(failures),
        "expected": sum(len(p.frames) for p in spec.pairs),
        "sent": sum(p.replies - p.send_errors for p in senders),
        "send_errors": sum(p.send_errors for p in senders),
        "delivered": sum(p.delivered for p in receivers),
        "own_copies": sum(p.own_copies for p in senders),
        "receipts": sum(p.receipts for p in senders),
        "receipt_frames": sum(p.receipt_frames for p in senders),
        "acks": sum(p.acks for p in opened),
        "sender_acks": sum(p.acks for p in senders),
        "stray": sum(p.stray for p in opened),
        "errors": dict(errors),
        "latencies_ns": shared.latencies_ns,
        "first_send_wall_ns": shared.first_send_wall_ns,
        "last_send_wall_ns": shared.last_send_wall_ns,
        "last_delivery_wall_ns": shared.last_delivery_wall_ns,
        "max_schedule_lag": shared.max_schedule_lag,
        "cpu_seconds": cpu_used,
        "max_seq": {p.username: p.max_seq for p in opened},
    }


async def _gather_with_timeout(coroutines: list[Any], timeout: float) -> list[Any] | None:
    """Run coroutines together; None if they did not all finish within ``timeout``."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        return None
    return [task.exception() or task.result() for task in done]


def load_worker(spec: WorkerSpec, start_barrier: Any, end_barrier: Any, results: Any) -> None:
    """Child process entry point: run one share of the pairs, report through ``results``."""
    try:
        # uvloop, as under both servers (uvicorn picks it): the load generator shares
        # the cores with the server, so the less CPU it takes the less it disturbs.
        result = uvloop.run(run_load(spec, start_barrier, end_barrier))
    except BaseException:
        # Wake the parent and the other workers instead of leaving them at a barrier.
        start_barrier.abort()
        end_barrier.abort()
        result = {"worker": spec.worker, "exception": traceback.format_exc()}
    results.put(result)


# ---------------------------------------------------------------------------------------
# Phases (parent process)


@dataclass
class Users:
    pairs: list[tuple[str, str]]
    tokens: dict[str, str]
    since: dict[str, int]


def run_phase(
    config: Config,
    server: ServerProcess,
    users: Users,
    mode: str,
    frames: list[list[tuple[str, str]]],
    expect_receipts: bool,
) -> dict[str, Any]:
    """Run one phase with ``config.load_procs`` load processes; return its summary."""
    context = multiprocessing.get_context("spawn")
    procs = config.load_procs
    start_barrier, end_barrier = context.Barrier(procs + 1), context.Barrier(procs + 1)
    results_queue = context.Queue()
    send_timeout = config.send_timeout + (config.steady_seconds if mode == "steady" else 0.0)
    specs = []
    for worker in range(procs):
        pair_specs = [
            PairSpec(
                index=i,
                sender=sender,
                sender_token=users.tokens[sender],
                sender_since=users.since.get(sender, 0),
                receiver=receiver,
                receiver_token=users.tokens[receiver],
                receiver_since=users.since.get(receiver, 0),
                frames=frames[i],
            )
            for i, (sender, receiver) in enumerate(users.pairs)
            if i % procs == worker
        ]
        specs.append(
            WorkerSpec(
                worker=worker,
                ws_url=server.ws_url,
                mode=mode,
                pairs=pair_specs,
                total_pairs=len(users.pairs),
                window=config.window,
                interval=config.steady_interval,
                expect_receipts=expect_receipts,
                compression=config.compression,
                send_timeout=send_timeout,
                drain_timeout=DRAIN_TIMEOUT,
                ack_batch=config.ack_batch,
                ack_delay=config.ack_delay,
            )
        )
    processes = [
        context.Process(
            target=load_worker, args=(spec, start_barrier, end_barrier, results_queue), daemon=True
        )
        for spec in specs
    ]
    for process in processes:
        process.start()
    broken = None
    zero = {"user": 0.0, "system": 0.0, "main_thread": 0.0, "busy": 0.0, "steal": 0.0}
    before, after = dict(zero), dict(zero)
    wall = 0.0
    results: list[dict[str, Any]] = []
    try:
        try:
            start_barrier.wait(timeout=CONNECT_TIMEOUT * 2)
            before = {**server.cpu_sample(), **machine_cpu()}
            wall_start = time.perf_counter()
            end_barrier.wait(timeout=send_timeout + DRAIN_TIMEOUT + 30)
            wall = time.perf_counter() - wall_start
            after = {**server.cpu_sample(), **machine_cpu()}
        except threading.BrokenBarrierError:
            broken = "a load process failed or a barrier timed out"
        except psutil.Error:
            after, wall = dict(before), 0.0
            broken = "the server process exited during the phase"
        for _ in processes:
            try:
                results.append(results_queue.get(timeout=60))
            except Exception:  # queue.Empty, or a dead child
                broken = broken or "a load process sent no result"
                break
    finally:
        # On any failure here (including Ctrl-C), release workers still waiting at a barrier.
        start_barrier.abort()
        end_barrier.abort()
        for process in processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    exceptions = [r["exception"] for r in results if "exception" in r]
    for exception in exceptions:
        progress(f"a load process failed:\n{exception}")
    good = [r for r in results if "exception" not in r]
    for users_seq in (r["max_seq"] for r in good):
        users.since.update(users_seq)
    # No measurement unless both barriers were passed.
    used = {key: after[key] - before[key] if wall else 0.0 for key in zero}
    server_cpu = used["user"] + used["system"]
    summary = summarise(config, mode, good, exceptions, broken, server_cpu, wall, len(users.pairs))
    if wall and server_cpu:
        load = sum(r["cpu_seconds"] for r in good)
        summary["server_system_cpu_pct"] = 100 * used["system"] / server_cpu
        summary["server_main_thread_cpu_pct"] = min(100.0, 100 * used["main_thread"] / server_cpu)
        summary["machine_cpu_cores"] = used["busy"] / wall
        summary["other_cpu_cores"] = max(0.0, used["busy"] - server_cpu - load) / wall
        summary["steal_cores"] = used["steal"] / wall
    return summary


def machine_cpu() -> dict[str, float]:
    """Machine-wide busy and stolen CPU seconds so far (all cores together)."""
    times = psutil.cpu_times()
    busy = times.user + times.system + getattr(times, "nice", 0.0)
    busy += getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
    return {"busy": busy, "steal": getattr(times, "steal", 0.0)}


def percentile(sorted_values: list[int], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return float(sorted_values[rank - 1])


def summarise(
    config: Config,
    mode: str,
    results: list[dict[str, Any]],
    exceptions: list[str],
    broken: str | None,
    server_cpu: float,
    wall: float,
    pairs: int,
) -> dict[str, Any]:
    latencies = sorted(ns for r in results for ns in r["latencies_ns"])
    delivered = sum(r["delivered"] for r in results)
    firsts = [r["first_send_wall_ns"] for r in results if r["first_send_wall_ns"]]
    last_sends = [r["last_send_wall_ns"] for r in results if r["last_send_wall_ns"]]
    lasts = [r["last_delivery_wall_ns"] for r in results if r["last_delivery_wall_ns"]]
    window = (max(lasts) - min(firsts)) / 1e9 if firsts and lasts else None
    send_span = (max(last_sends) - min(firsts)) / 1e9 if firsts and last_sends else None
    sent = sum(r["sent"] + r["send_errors"] for r in results)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    outcomes = sorted({r["outcome"] for r in results} - {"ok"})
    crashes = [f"load process crashed: {e.strip().splitlines()[-1]}" for e in exceptions]
    problems = [*outcomes, *([broken] if broken else []), *crashes]
    failures: Counter[str] = Counter()
    for r in results:
        failures.update(r["failures"])
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return {
        "mode": mode,
        "pairs": pairs,
        "expected": pairs * (config.throughput_per_pair if mode == "throughput" else config.steady_per_pair),
        "sent_frames": sent,
        "stored": sum(r["sent"] for r in results),
        "send_errors": sum(r["send_errors"] for r in results),
        "delivered": delivered,
        "own_copies": sum(r["own_copies"] for r in results),
        "receipts": sum(r["receipts"] for r in results),
        "receipt_frames": sum(r["receipt_frames"] for r in results),
        "acks": sum(r["acks"] for r in results),
        "stray": sum(r["stray"] for r in results),
        "error_codes": dict(errors),
        "messages_per_s": delivered / window if window else None,
        "delivery_window_s": window,
        "send_rate_per_s": (sent - 1) / send_span if send_span and mode == "steady" else None,
        "max_schedule_lag_ms": max((r["max_schedule_lag"] for r in results), default=0.0) * 1000,
        "latency_p50_ms": p50 / 1e6 if p50 is not None else None,
        "latency_p99_ms": p99 / 1e6 if p99 is not None else None,
        "latency_max_ms": latencies[-1] / 1e6 if latencies else None,
        "phase_wall_s": wall,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_msg": server_cpu / delivered * 1e6 if delivered else None,
        "server_cpu_cores": server_cpu / wall if wall else None,
        "acks_per_msg": sum(r["acks"] for r in results) / delivered if delivered else None,
        "sender_acks_per_msg": sum(r["sender_acks"] for r in results) / delivered if delivered else None,
        "receipt_frames_per_msg": sum(r["receipt_frames"] for r in results) / delivered
        if delivered
        else None,
        "load_cpu_us_per_msg": sum(r["cpu_seconds"] for r in results) / delivered * 1e6
        if delivered
        else None,
        "problems": problems + [f"{count} pair(s) failed: {failure}" for failure, count in failures.items()],
    }


def run_target(
    config: Config,
    target: str,
    workdir: Path,
    identities: list[IdentityKeys],
    pair_names: list[tuple[str, str]],
    throughput_frames: list[list[tuple[str, str]]],
    steady_frames: list[list[tuple[str, str]]],
    extensions: dict[str, str],
) -> tuple[dict[str, Any], list[str]]:
    """Start one server, run both phases against it, stop it. ``extensions`` collects the
    WebSocket extensions each server negotiated; the relay copies SecureChat's choice."""
    port = free_port()
    if target == "securechat":
        data_dir = workdir / "server-data"
        command = securechat_command(port, data_dir)
        env = server_env(config, data_dir)
    else:
        deflate = "permessage-deflate" in extensions.get("securechat", "permessage-deflate")
        command = bare_command(port, deflate=deflate)
        env = server_env(config, None)
    progress(f"{target}: starting {' '.join(command)}")
    server = start_server(target, command, env, port, workdir / f"{target}.log")
    try:
        extensions[target] = asyncio.run(negotiated_extensions(server.ws_url, config.compression))
        progress(f"{target}: WebSocket extensions negotiated: {extensions[target] or 'none'}")
        if target == "securechat":
            progress(f"securechat: registering {len(identities)} users")
            tokens = asyncio.run(register_users(server.url, identities))
            asyncio.run(open_conversations(server.url, pair_names, tokens))
        else:
            # The relay takes the username as the token.
            tokens = {keys.username: keys.username for keys in identities}
        users = Users(pair_names, tokens, {})
        phases = {}
        for mode, frames in (("throughput", throughput_frames), ("steady", steady_frames)):
            progress(f"{target}: phase {mode} ({sum(map(len, frames))} messages)")
            phases[mode] = run_phase(
                config, server, users, mode, frames, expect_receipts=target == "securechat"
            )
            summary = phases[mode]
            if summary["problems"]:
                progress(f"{target}: last lines of the server log:\n{server.log_tail()}")
            progress(
                f"{target}: {mode}: delivered {summary['delivered']}/{summary['expected']}, "
                f"{_fmt(summary['messages_per_s'], 0)} msg/s, p50 {_fmt(summary['latency_p50_ms'], 1)} ms, "
                f"p99 {_fmt(summary['latency_p99_ms'], 1)} ms, "
                f"server {_fmt(summary['server_cpu_us_per_msg'], 0)} us/msg"
                + "".join(f"; {problem}" for problem in summary["problems"])
            )
    finally:
        server.stop()
    return phases, server.command


# ---------------------------------------------------------------------------------------
# C. Client crypto


def crypto_benchmark(alice: PrivateIdentity, bob: PrivateIdentity, iterations: int) -> dict[str, Any]:
    conversation_id = direct_conversation_id(alice.username, bob.username)
    recipients = {alice.username: alice.public, bob.username: bob.public}
    members = frozenset(recipients)
    payload = {"type": "text", "text": "x" * 1024}

    def seal() -> Envelope:
        return seal_message(alice, conversation_id, recipients, payload)

    def open_(envelope: Envelope) -> None:
        open_message(
            envelope, me=bob, sender_identity=alice.public, conversation_id=conversation_id, members=members
        )

    for _ in range(10):  # warm-up
        open_(seal())
    seal_ns, open_ns, envelopes = [], [], []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        envelope = seal()
        seal_ns.append(time.perf_counter_ns() - start)
        envelopes.append(envelope)
    for envelope in envelopes:
        start = time.perf_counter_ns()
        open_(envelope)
        open_ns.append(time.perf_counter_ns() - start)
    size = len(json.dumps(envelopes[0].to_wire(), separators=(",", ":")))

    def stats(values: list[int]) -> dict[str, float]:
        ordered = sorted(values)
        return {"mean_us": sum(ordered) / len(ordered) / 1e3, "p50_us": (percentile(ordered, 0.5) or 0) / 1e3}

    return {
        "iterations": iterations,
        "text_bytes": 1024,
        "recipients": 2,
        "envelope_bytes": size,
        "seal": stats(seal_ns),
        "open": stats(open_ns),
    }


# ---------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _filesystem(path: Path) -> str:
    best = None
    for partition in psutil.disk_partitions(all=True):
        if str(path).startswith(partition.mountpoint) and (
            best is None or len(partition.mountpoint) > len(best.mountpoint)
        ):
            best = partition
    return best.fstype if best else "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


ROWS: list[tuple[str, str, int, bool]] = [
    # label, key, digits, whether a ratio makes sense
    ("delivered / expected", "delivered", 0, False),
    ("messages/s (first send -> last delivery)", "messages_per_s", 0, True),
    ("latency p50, ms", "latency_p50_ms", 2, True),
    ("latency p99, ms", "latency_p99_ms", 2, True),
    ("latency max, ms", "latency_max_ms", 1, True),
    ("server CPU per message, us", "server_cpu_us_per_msg", 0, True),
    ("server CPU, cores busy", "server_cpu_cores", 2, True),
    ("  % of it in the kernel (system time)", "server_system_cpu_pct", 0, False),
    ("  % of it on the event-loop thread", "server_main_thread_cpu_pct", 0, False),
    ("client acks per message (all clients)", "acks_per_msg", 2, True),
    ("load generator CPU per message, us", "load_cpu_us_per_msg", 0, True),
    ("machine CPU busy, cores", "machine_cpu_cores", 2, False),
    ("  of which other processes, cores", "other_cpu_cores", 2, False),
]


def render_table(report: dict[str, Any]) -> str:
    meta, config = report["meta"], report["config"]
    lines = [
        f"SecureChat delivery benchmark, {meta['date']}",
        f"host: nproc={meta['nproc']} ({meta['cpu']}); Python {meta['python']}; {meta['platform']}",
        f"securechat {meta['securechat_version']} at {meta['revision']}",
        f"server: {meta['server_command']}",
        f"  SQLite data dir on {meta['data_dir_fs']}; baseline: {meta['bare_command']}",
        f"load: {config['pairs']} pairs in {config['load_procs']} load processes (websockets "
        f"{meta['websockets']}, uvloop {meta['uvloop']}); server and load generator share the {meta['nproc']} cores",
        "permessage-deflate: client offers it: "
        + ("yes" if config["compression"] else "no")
        + "; "
        + ", ".join(
            f"{name} accepts it: {'yes' if 'permessage-deflate' in value else 'no'}"
            for name, value in meta["ws_extensions"].items()
        ),
        f"envelope: {_fmt(report['envelope']['mean_bytes'], 0)} B JSON on average "
        f"(text {config['text_chars']} chars, 2 RSA-2048 recipients; send frame "
        f"{_fmt(report['envelope']['mean_frame_bytes'], 0)} B)",
    ]
    if report["envelope"]["mean_bytes"] > 1024 * 1.1:
        lines.append(
            "  (1 KiB is out of reach: two wrapped RSA-2048 keys and the signature alone are ~1 KB of base64)"
        )
    titles = {
        "throughput": f"A1. max throughput: window {config['window']} sends in flight per sender, "
        f"{config['throughput_per_pair']} messages per pair",
        "steady": f"A2. steady rate: {config['steady_rate']:,.0f} messages/s in total for "
        f"{config['steady_seconds']:g} s ({config['steady_per_pair']} per pair)",
    }
    targets = [t for t in ("securechat", "bare") if t in report["servers"]]
    both = len(targets) == 2
    for mode, title in titles.items():
        lines += ["", title]
        header = f"{'':42}" + "".join(f"{t:>12}" for t in targets) + (f"{'ratio':>9}" if both else "")
        lines.append(header)
        phases = [report["servers"][t][mode] for t in targets]
        rows = list(ROWS)
        if mode == "steady":
            rows.insert(1, ("achieved send rate, msg/s", "send_rate_per_s", 0, False))
        for label, key, digits, ratio in rows:
            if key == "delivered":
                cells = [f"{p['delivered']}/{p['expected']}" for p in phases]
            else:
                cells = [_fmt(p.get(key), digits) for p in phases]
            line = f"{label:42}" + "".join(f"{c:>12}" for c in cells)
            if both and ratio and phases[0].get(key) and phases[1].get(key):
                line += f"{_ratio(phases[0][key] / phases[1][key]):>9}"
            lines.append(line)
        for target, phase in zip(targets, phases, strict=True):
            extras = []
            if phase["send_errors"] or phase["error_codes"]:
                extras.append(f"errors {phase['error_codes']}")
            if phase["stray"]:
                extras.append(f"{phase['stray']} unexpected message frames")
            if (phase.get("steal_cores") or 0) > 0.05:
                extras.append(f"hypervisor steal {phase['steal_cores']:.2f} cores")
            if (
                mode == "steady"
                and phase["messages_per_s"]
                and phase["messages_per_s"] < 0.9 * config["steady_rate"]
            ):
                extras.append("saturated: delivered less than offered, so latency is mostly queueing")
            if mode == "steady" and phase["max_schedule_lag_ms"] > 50:
                extras.append(f"sender fell up to {phase['max_schedule_lag_ms']:.0f} ms behind schedule")
            extras += phase["problems"]
            if extras:
                lines.append(f"  {target}: " + "; ".join(extras))
    if report.get("crypto"):
        crypto = report["crypto"]
        lines += [
            "",
            f"C. client crypto: 1 KiB text, direct conversation (2 recipients), "
            f"{crypto['iterations']} iterations, envelope {crypto['envelope_bytes']:,} B",
            f"{'':42}{'mean, us':>12}{'p50, us':>12}",
            f"{'seal_message':42}{crypto['seal']['mean_us']:>12,.0f}{crypto['seal']['p50_us']:>12,.0f}",
            f"{'open_message':42}{crypto['open']['mean_us']:>12,.0f}{crypto['open']['p50_us']:>12,.0f}",
        ]
    lines += [
        "",
        "messages/s = messages received by receivers / (first send -> last delivery). Latency = the",
        "sender's send() -> the receiver's frame, on one clock. Server CPU = psutil user+sys of the server",
        "process (all threads) over the phase, acks, receipts and sender copies included, / messages",
        f"delivered. Clients ack as SecureChat's clients do: message entries only, every {config['ack_batch']}",
        f"or {config['ack_delay_ms']:g} ms after the first unacknowledged one. 'Other processes' = machine-wide busy CPU minus server",
        "and load generator: anything else running meanwhile. The bare relay has no auth, validation,",
        "storage, receipts or sender copies; ratio = securechat / bare.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Main


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Unwind normally, so the finally blocks stop the server and remove the temp dir.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="securechat-bench-"))
    try:
        report = run(config, workdir)
    except RuntimeError as exc:
        # A server that does not start or a failed registration: nothing to report.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))
    failed = any(
        phase["problems"] or phase["delivered"] < phase["expected"]
        for server in report["servers"].values()
        for phase in server.values()
    )
    return 1 if failed else 0


def run(config: Config, workdir: Path) -> dict[str, Any]:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    names = [(f"bench-s{i:03d}", f"bench-r{i:03d}") for i in range(config.pairs)]
    all_names = [name for pair in names for name in pair]
    context = multiprocessing.get_context("spawn")
    progress(f"generating {len(all_names)} identities (RSA-2048) in {nproc} processes")
    with context.Pool(nproc) as pool:
        identities = pool.map(make_identity, all_names, chunksize=4)
    by_name = {keys.username: keys for keys in identities}
    progress(
        f"sealing {config.pairs * (config.throughput_per_pair + config.steady_per_pair)} envelopes "
        f"(text {config.text_chars} chars)"
    )
    tasks = [(s, r, config.throughput_per_pair, config.text_chars) for s, r in names]
    tasks += [(s, r, config.steady_per_pair, config.text_chars) for s, r in names]
    with context.Pool(nproc, initializer=init_sealer, initargs=(by_name,)) as pool:
        sealed = pool.map(seal_batch, tasks)
    envelope_sizes = [len(text) for batch in sealed for _, text in batch]
    throughput_frames = [send_frames(batch) for batch in sealed[: config.pairs]]
    steady_frames = [send_frames(batch) for batch in sealed[config.pairs :]]
    frame_sizes = [len(frame) for batch in throughput_frames for _, frame in batch]
    servers: dict[str, Any] = {}
    commands: dict[str, list[str]] = {}
    extensions: dict[str, str] = {}
    for target in config.targets:
        # The bare relay stores nothing, so it can take the same envelopes again.
        servers[target], commands[target] = run_target(
            config, target, workdir, identities, names, throughput_frames, steady_frames, extensions
        )
    progress("client crypto")
    crypto = crypto_benchmark(
        by_name[names[0][0]].load(), by_name[names[0][1]].load(), config.crypto_iterations
    )
    placeholder = workdir / "server-data"
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": nproc,
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "securechat_version": securechat.__version__,
            "revision": git_revision() if config.server_src is None else f"source tree {config.server_src}",
            "websockets": importlib.metadata.version("websockets"),
            "uvloop": importlib.metadata.version("uvloop"),
            "server_command": " ".join(commands.get("securechat", securechat_command(0, placeholder))),
            "bare_command": " ".join(commands["bare"]) if "bare" in commands else "(not run)",
            "data_dir_fs": _filesystem(workdir),
            "ws_extensions": extensions,
        },
        "config": {
            "pairs": config.pairs,
            "load_procs": config.load_procs,
            "window": config.window,
            "throughput_per_pair": config.throughput_per_pair,
            "steady_rate": config.steady_rate,
            "steady_seconds": config.steady_seconds,
            "steady_per_pair": config.steady_per_pair,
            "text_chars": config.text_chars,
            "compression": config.compression,
            "ack_batch": config.ack_batch,
            "ack_delay_ms": config.ack_delay * 1000,
        },
        "envelope": {
            "mean_bytes": sum(envelope_sizes) / len(envelope_sizes),
            "min_bytes": min(envelope_sizes),
            "max_bytes": max(envelope_sizes),
            "mean_frame_bytes": sum(frame_sizes) / len(frame_sizes),
        },
        "servers": servers,
        "crypto": crypto,
    }


if __name__ == "__main__":
    sys.exit(main())
