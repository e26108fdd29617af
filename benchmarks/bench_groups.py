"""Group benchmark: what a message costs as a group grows (2, 16, 64, 256 members).

Run from the repository root::

    python benchmarks/bench_groups.py              # 2, 16, 64, 256 members
    python benchmarks/bench_groups.py --sizes 2,16 --json

A real server process starts on a fresh SQLite data dir; 256 users register (each with
its own Ed25519 and RSA-2048 keys; one password-derived key is shared by all of them,
since only the keys matter here), and one of them creates a group of each size through
the signed membership chain. For each size:

- seal: the sender's ``seal_message`` for a 1 KiB text (one RSA-OAEP wrap per member,
  one signature), median of the repeats;
- send: ``POST /api/v1/messages`` of that envelope until the server answers (it checks
  the envelope, stores it once and adds an inbox entry per member), median;
- open: one recipient's ``open_message`` (one RSA-OAEP unwrap), median;
- envelope: the JSON bytes on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from revision import git_revision

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # for tests.conftest.start_server, as bench_browser.py uses it

from tests.conftest import start_server  # noqa: E402

from securechat.protocol.encoding import b64encode  # noqa: E402
from securechat.protocol.envelope import open_message, seal_message  # noqa: E402
from securechat.protocol.groups import sign_change  # noqa: E402
from securechat.protocol.identifiers import ConversationId, Username  # noqa: E402
from securechat.protocol.kdf import KdfParams, derive_keys  # noqa: E402
from securechat.protocol.keys import PrivateIdentity, seal_key_bundle  # noqa: E402
from securechat.protocol.primitives import pkcs8  # noqa: E402

PASSWORD = "benchmark password for every member"
TEXT = "x" * 1024


def make_identity(name: str) -> tuple[str, bytes, bytes]:
    identity = PrivateIdentity.generate(Username(name))
    return name, pkcs8(identity.signing_private), pkcs8(identity.encryption_private)


def load_identity(name: str, signing: bytes, encryption: bytes) -> PrivateIdentity:
    from cryptography.hazmat.primitives import serialization

    return PrivateIdentity.from_private_keys(
        Username(name),
        serialization.load_der_private_key(signing, None),  # type: ignore[arg-type]
        serialization.load_der_private_key(encryption, None),  # type: ignore[arg-type]
    )


async def register_all(http: httpx.AsyncClient, people: list[PrivateIdentity]) -> dict[str, str]:
    kdf = KdfParams.generate()
    derived = derive_keys(PASSWORD, kdf)
    tokens: dict[str, str] = {}
    for person in people:
        wire = person.public.to_wire()
        body = {
            "username": person.username,
            "auth_key": b64encode(derived.auth_key),
            "kdf": kdf.to_wire(),
            "public_keys": {
                k: wire[k] for k in ("signing_key", "encryption_key", "encryption_key_signature")
            },
            "key_bundle": seal_key_bundle(person, derived.wrap_key),
        }
        answer = (await http.post("/api/v1/auth/register", json=body)).raise_for_status().json()
        tokens[person.username] = answer["access_token"]
    return tokens


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


async def measure(
    url: str, people: list[PrivateIdentity], sizes: list[int], repeats: int
) -> list[dict[str, Any]]:
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        tokens = await register_all(http, people[: max(sizes)])
        sender = people[0]
        headers = {"authorization": f"Bearer {tokens[sender.username]}"}
        for size in sizes:
            members = people[:size]
            create = sign_change(
                sender, None, "create", [p.username for p in members[1:]], at=int(time.time() * 1000)
            )
            (
                await http.post("/api/v1/groups", headers=headers, json={"change": create.to_wire()})
            ).raise_for_status()
            group_id = ConversationId(create.group_id)
            recipients = {p.username: p.public for p in members}
            seal_times, send_times, open_times, sizes_bytes = [], [], [], []
            for _ in range(repeats):
                started = time.perf_counter()
                envelope = seal_message(sender, group_id, recipients, {"type": "text", "text": TEXT})
                seal_times.append(time.perf_counter() - started)
                body = json.dumps({"envelope": envelope.to_wire()})
                sizes_bytes.append(len(envelope.to_json().encode()))
                started = time.perf_counter()
                response = await http.post(
                    "/api/v1/messages", headers={**headers, "content-type": "application/json"}, content=body
                )
                send_times.append(time.perf_counter() - started)
                response.raise_for_status()
                started = time.perf_counter()
                open_message(
                    envelope,
                    me=members[-1],
                    sender_identity=sender.public,
                    conversation_id=group_id,
                    members=frozenset(recipients),
                )
                open_times.append(time.perf_counter() - started)
            results.append(
                {
                    "members": size,
                    "seal_ms": median_ms(seal_times),
                    "send_ms": median_ms(send_times),
                    "open_ms": median_ms(open_times),
                    "envelope_bytes": int(statistics.median(sizes_bytes)),
                }
            )
            print(f"  {size} members done", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2,16,64,256")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    names = [f"member{i:03d}" for i in range(max(sizes))]
    print(f"generating {len(names)} identities...", file=sys.stderr)
    with ProcessPoolExecutor() as pool:
        people = [load_identity(*made) for made in pool.map(make_identity, names)]
    work = Path(tempfile.mkdtemp(prefix="securechat-bench-groups-"))
    data_dir = work / "data"
    server = start_server(data_dir, work / "server.log")
    url = server.url
    try:
        results = asyncio.run(measure(url, people, sizes, args.repeats))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": git_revision(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"# Group messages (1 KiB text, RSA-2048): {report['machine']}, {report['revision']}, {report['date']}"
    )
    print()
    print("| members | seal (client) | send (HTTP, stored) | open (one recipient) | envelope |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['members']} | {r['seal_ms']} ms | {r['send_ms']} ms | {r['open_ms']} ms | "
            f"{r['envelope_bytes']:,} B |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
