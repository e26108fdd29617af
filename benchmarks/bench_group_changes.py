"""Group-change benchmark: what one membership change costs as the chain grows, and what
a member appending changes back to back does to other users' sends (issue 12, item 2).

Run from the repository root::

    python benchmarks/bench_group_changes.py                      # changes 10, 100, 1,000
    python benchmarks/bench_group_changes.py --positions 10,100,300 --server-src /tmp/old

A real server process starts on a fresh SQLite data dir (started like tests/conftest.py
does; ``--server-src`` runs another checkout's server, e.g. an export of an older
commit). Alice makes a group with bob and then alternates ``add carol`` and ``remove
carol``, each change signed on her verified state and sent as soon as the previous one
is answered: the chain grows as fast as the server lets it. Around each position in
``--positions`` two windows of ``--window`` changes each are measured:

- change: ``POST /api/v1/groups/{id}/changes`` until the server answers (it counts the
  change against the account's limit, checks it and stores it), median and 95th
  percentile over the first window, and the server process's CPU time (user + system,
  all threads, from psutil) per change in it: the number least disturbed by whatever
  else the machine runs;
- others' sends: in the second window dave sends erin 1 KiB messages one after the
  other (sealed beforehand, so only the ``POST /api/v1/messages`` is timed) while alice
  goes on changing the group; median and 95th percentile of those sends.

A first row measures dave's sends with nobody changing a group. Between windows the chain
grows without measurement. Progress goes to stderr, the table (or JSON) to stdout.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from revision import git_revision

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # for tests.conftest.start_server and the test personas

from tests.api.support import identity_for, registration_body  # noqa: E402
from tests.conftest import start_server  # noqa: E402

from securechat.protocol.envelope import seal_message  # noqa: E402
from securechat.protocol.groups import GroupState, genesis, sign_change  # noqa: E402
from securechat.protocol.identifiers import Username, direct_conversation_id  # noqa: E402

TEXT = "x" * 1024
PEOPLE = ("alice", "bob", "carol", "dave", "erin")


def now_ms() -> int:
    return int(time.time() * 1000)


def ms(samples: list[float], quantile: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 1)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1) if samples else float("nan")


class Appender:
    """Alice's side: her verified state and the next change on it."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers
        self.state: GroupState | None = None

    async def create(self) -> None:
        change = sign_change(identity_for("alice"), None, "create", ["bob"], at=now_ms())
        response = await self.http.post(
            "/api/v1/groups", headers=self.headers, json={"change": change.to_wire()}
        )
        response.raise_for_status()
        self.state = genesis(change, lambda name: identity_for(name).public)

    async def append(self) -> float:
        """One more change; the seconds until the server answered."""
        assert self.state is not None
        action = "add" if "carol" not in self.state.members else "remove"
        change = sign_change(identity_for("alice"), self.state, action, ["carol"], at=now_ms())
        body = {"change": change.to_wire()}
        started = time.perf_counter()
        response = await self.http.post(
            f"/api/v1/groups/{change.group_id}/changes", headers=self.headers, json=body
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"change {change.seq}: {response.status_code} {response.text}")
        # Verified when signed: the replay needs only the rules and the hash.
        self.state = self.state.apply(change, lambda _: None, check_signature=False)
        return elapsed

    @property
    def length(self) -> int:
        return 0 if self.state is None else self.state.seq + 1


async def sends_until(
    http: httpx.AsyncClient, headers: dict[str, str], envelopes: list[str], stop: asyncio.Event
) -> list[float]:
    """Dave's sends to erin, one after the other, until ``stop`` (or out of envelopes)."""
    times = []
    for body in envelopes:
        if stop.is_set():
            break
        started = time.perf_counter()
        response = await http.post(
            "/api/v1/messages", headers={**headers, "content-type": "application/json"}, content=body
        )
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def sealed(count: int) -> list[str]:
    dave, erin = identity_for("dave"), identity_for("erin")
    conversation = direct_conversation_id(Username("dave"), Username("erin"))
    recipients = {dave.username: dave.public, erin.username: erin.public}
    return [
        json.dumps(
            {
                "envelope": seal_message(
                    dave, conversation, recipients, {"type": "text", "text": TEXT}
                ).to_wire()
            }
        )
        for _ in range(count)
    ]


async def measure(url: str, server_pid: int, positions: list[int], window: int) -> dict[str, Any]:
    server = psutil.Process(server_pid)

    def server_cpu() -> float:
        times = server.cpu_times()
        return float(times.user + times.system)

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        headers = {}
        for name in PEOPLE:
            response = await http.post("/api/v1/auth/register", json=registration_body(name))
            response.raise_for_status()
            headers[name] = {"authorization": f"Bearer {response.json()['access_token']}"}
        print("registered", file=sys.stderr)

        idle = await sends_until(http, headers["dave"], sealed(60), asyncio.Event())
        rows: list[dict[str, Any]] = []
        alice = Appender(http, headers["alice"])
        await alice.create()
        for position in positions:
            # Two windows around the position (the chain's length after a change): the
            # changes alone, then the changes while dave sends.
            while alice.length < max(2, position - window):
                await alice.append()
            first = alice.length + 1
            cpu_before = server_cpu()
            alone = [await alice.append() for _ in range(window)]
            cpu_per_change = (server_cpu() - cpu_before) / window
            envelopes = sealed(window * 4)
            stop = asyncio.Event()
            sender = asyncio.create_task(sends_until(http, headers["dave"], envelopes, stop))
            busy = [await alice.append() for _ in range(window)]
            stop.set()
            send_times = await sender
            rows.append(
                {
                    "position": position,
                    "changes": f"{first}-{alice.length}",
                    "change_median_ms": median_ms(alone),
                    "change_p95_ms": ms(alone, 0.95),
                    "server_cpu_ms": round(cpu_per_change * 1000, 1),
                    "change_with_sends_median_ms": median_ms(busy),
                    "sends": len(send_times),
                    "send_median_ms": median_ms(send_times),
                    "send_p95_ms": ms(send_times, 0.95),
                }
            )
            print(f"  change {position} done", file=sys.stderr)
    return {
        "idle_send_median_ms": median_ms(idle),
        "idle_send_p95_ms": ms(idle, 0.95),
        "idle_sends": len(idle),
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--positions", default="10,100,1000", help="chain lengths to measure around")
    parser.add_argument("--window", type=int, default=20, help="changes measured around each position")
    parser.add_argument("--server-src", type=Path, help="a checkout whose src/ the server runs from")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    positions = sorted(int(p) for p in args.positions.split(","))
    env: dict[str, str] = {
        # Generous for this run: the benchmark appends as fast as the server answers.
        "SECURECHAT_GROUP_CHANGES_PER_MINUTE": "1000000",
        "SECURECHAT_MESSAGES_PER_MINUTE": "1000000",
    }
    if args.server_src is not None:
        if not (args.server_src / "src" / "securechat" / "__init__.py").is_file():
            parser.error(f"--server-src: no src/securechat package under {args.server_src}")
        env["PYTHONPATH"] = str((args.server_src / "src").resolve())
    work = Path(tempfile.mkdtemp(prefix="securechat-bench-group-changes-"))
    server = start_server(work / "data", work / "server.log", extra_env=env)
    try:
        started = time.perf_counter()
        result = asyncio.run(measure(server.url, server.process.pid, positions, args.window))
        result["seconds"] = round(time.perf_counter() - started, 1)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": git_revision() if args.server_src is None else f"source tree {args.server_src}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        **result,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"# Group changes (SQLite): {report['machine']}, {report['revision']}, {report['date']}")
    print()
    print(
        f"Others' sends with no group changes: median {report['idle_send_median_ms']} ms, "
        f"p95 {report['idle_send_p95_ms']} ms ({report['idle_sends']} sends)."
    )
    print()
    print(
        "| chain length | changes | change (median) | change (p95) | server CPU per change "
        "| change while others send (median) | others' sends | send (median) | send (p95) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["rows"]:
        print(
            f"| {r['position']:,} | {r['changes']} | {r['change_median_ms']} ms | {r['change_p95_ms']} ms "
            f"| {r['server_cpu_ms']} ms | {r['change_with_sends_median_ms']} ms | {r['sends']} "
            f"| {r['send_median_ms']} ms | {r['send_p95_ms']} ms |"
        )
    print()
    print(f"({report['seconds']} s in all.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
