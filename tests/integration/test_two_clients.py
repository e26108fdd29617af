"""Two real clients against a real server process: online and offline delivery, order,
receipts, the terminal client's view, and a byte-wise scan of what the server kept."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from securechat.client.messenger import InboxItem
from securechat.client.realtime import InboxSocket
from securechat.protocol.primitives import pkcs8

from .conftest import PASSWORDS


async def receive(socket: InboxSocket, count: int, timeout: float = 20) -> list[InboxItem]:
    """Collect the next ``count`` message items from a socket (receipts are skipped)."""
    items: list[InboxItem] = []

    async def collect() -> None:
        async for item in socket.items():
            if item.kind == "message":
                items.append(item)
                if len(items) == count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return items


def run_cli(home: Path, server: str, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server}
    return subprocess.run(
        [sys.executable, "-m", "securechat", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def forms(secret: bytes) -> list[bytes]:
    """The raw, hex and base64 forms of a secret, as they might leak."""
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def scan(paths: list[Path], needles: dict[str, bytes]) -> list[str]:
    found = []
    for path in paths:
        data = path.read_bytes()
        for label, needle in needles.items():
            for form in forms(needle):
                if form in data:
                    found.append(f"{label} in {path.name}")
    return found


async def test_online_offline_delivery_receipts_and_nothing_in_clear(live_server, make_client, tmp_path):
    alice = await make_client("alice")
    bob = await make_client("bob")

    # Bob is online: messages arrive live, in order.
    bob_socket = InboxSocket(bob)
    await bob_socket.connect()
    online_texts = [f"online message {i} ✓ 你好" for i in range(3)]
    for text in online_texts:
        await alice.send_text("bob", text)
    live = await receive(bob_socket, 3)
    assert [item.text for item in live] == online_texts
    assert all(item.verified and item.sender == "alice" for item in live)
    await bob_socket.close()

    # Bob is offline: messages wait in his inbox and arrive on reconnect, in order,
    # with no gap and no duplicate.
    offline_texts = [f"offline message {i}" for i in range(5)]
    for text in offline_texts:
        await alice.send_text("bob", text)
    bob_socket = InboxSocket(bob)
    await bob_socket.connect()
    resumed = await receive(bob_socket, 5)
    assert [item.text for item in resumed] == offline_texts
    seqs = [item.seq for item in live + resumed]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    await bob_socket.close()

    # Bob replies; alice receives the reply and the delivery receipts for her 8 messages.
    await bob.send_text("alice", "got them all")
    # Acknowledgements travel asynchronously: wait for the receipts (bounded), no sleep.
    items: list[InboxItem] = []

    def receipted() -> list[str]:
        return [m for item in items if item.kind == "receipt" for m in item.message_ids]

    async with asyncio.timeout(20):
        while len(receipted()) < 8:
            items += await alice.sync_inbox()
    assert {item.recipient for item in items if item.kind == "receipt"} == {"bob"}
    own = [row["message_id"] for row in alice.stored_messages() if row["sender"] == "alice"]
    assert sorted(receipted()) == sorted(own)
    replies = [item for item in items if item.kind == "message" and item.sender == "bob"]
    assert [r.text for r in replies] == ["got them all"] and replies[0].verified
    statuses = {row["text"]: row["status"] for row in alice.stored_messages() if row["sender"] == "alice"}
    assert all(statuses[text] == "delivered" for text in online_texts + offline_texts)

    # The terminal client shows bob's messages as verified, in order.
    result = run_cli(bob.state.home, live_server.url, "inbox", "--json", password=PASSWORDS["bob"])
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == online_texts + offline_texts
    assert all(r["verified"] and r["sender"] == "alice" and r["server_ts"] and r["sent_at"] for r in records)

    # Nothing the server stored or logged contains a plaintext, password or private key.
    live_server.stop()
    assert alice.identity is not None and bob.identity is not None
    needles: dict[str, bytes] = {}
    for text in [*online_texts, *offline_texts, "got them all"]:
        needles[f"plaintext {text!r}"] = text.encode()
    for name, password in PASSWORDS.items():
        needles[f"password of {name}"] = password.encode()
    for client in (alice, bob):
        assert client.identity is not None
        needles[f"RSA key of {client.username}"] = pkcs8(client.identity.encryption_private)
        needles[f"Ed25519 key of {client.username}"] = pkcs8(client.identity.signing_private)
        raw_seed = client.identity.signing_private.private_bytes_raw()
        needles[f"Ed25519 seed of {client.username}"] = raw_seed
    # Only the server's user may read what it stores.
    assert stat.S_IMODE(live_server.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((live_server.data_dir / "server-secret").stat().st_mode) == 0o600
    paths = [p for p in live_server.data_dir.rglob("*") if p.is_file()] + [live_server.log_path]
    assert any(p.name.startswith("securechat.db") for p in paths)
    # The scan must be able to find things: the ciphertext is there in base64.
    assert scan(paths, {"username": b"alice"})
    assert scan(paths, needles) == []
