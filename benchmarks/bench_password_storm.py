"""Password-change storm benchmark: how other users' logins fare while one account
floods ``POST /api/v1/account/password`` (issue 12, item 3).

Run from the repository root::

    python benchmarks/bench_password_storm.py                        # this tree
    python benchmarks/bench_password_storm.py --compare-with 0d46642 # and an older revision
    python benchmarks/bench_password_storm.py --json

For each server (this tree's code, and with ``--compare-with REV`` that revision's
``src/``, exported with ``git archive`` into a temporary directory) a real server
process starts on SQLite with a fresh data dir and default settings, trusting
127.0.0.1 as a proxy so the benchmark can speak from several addresses. Then, in turn:

- ``baseline``: other users log in one after another (``--logins`` times); nothing else runs;
- ``reference: account reads``: the same logins while the account keeps ``--in-flight``
  reads of ``GET /api/v1/account`` in flight, the cheapest authenticated request: the
  floor any flood of requests costs, whatever the endpoint;
- ``wrong keys``: the same logins while one account keeps ``--in-flight`` password
  changes with a wrong current key in flight, all from one address (the issue's attack);
- ``valid, many addresses``: the same, with the right current key (a change to the same
  password) and each change from its own address, so intrusion detection has nothing to
  count and only the hashing bounds stand between the storm and the logins.

Each phase reports the logins' median, 90th percentile and maximum (wall clock on
loopback), how many logins failed, and the storm's answers by status. The client shares
the machine with the server, so numbers are for comparing rows, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from revision import git_revision

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # tests.conftest.start_server and tests.api.support, as bench_files.py does

from tests.api.support import bearer, material, registration_body  # noqa: E402
from tests.conftest import start_server  # noqa: E402

from securechat.protocol.keys import seal_key_bundle  # noqa: E402

WRONG_KEY = "A" * 43 + "="
LOGIN_USERS = ["bob", "carol", "dave", "erin"]
LOGIN_ADDRESS = "203.0.113.10"
STORM_ADDRESS = "198.51.100.7"


def password_body(name: str, current_auth_key: str) -> dict[str, Any]:
    mat = material(name)
    return {
        "current_auth_key": current_auth_key,
        "new_auth_key": mat.auth_key,
        "kdf": mat.kdf.to_wire(),
        "key_bundle": seal_key_bundle(mat.identity, mat.derived.wrap_key),
    }


async def login(http: httpx.AsyncClient, url: str, name: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = await http.post(
        f"{url}/api/v1/auth/login",
        json={"username": name, "auth_key": material(name).auth_key},
        headers={"X-Forwarded-For": LOGIN_ADDRESS},
    )
    return (time.perf_counter() - started) * 1000, response.status_code


async def storm(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    body: dict[str, Any] | None,
    many: bool,
    in_flight: int,
    stop: asyncio.Event,
) -> Counter[int]:
    """Keep ``in_flight`` password changes (or, with no body, account reads) going until
    ``stop``; their statuses."""
    statuses: Counter[int] = Counter()
    sent = 0

    async def one(n: int) -> None:
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" if many else STORM_ADDRESS
        try:
            headers = {**bearer(token), "X-Forwarded-For": address}
            if body is None:
                response = await http.get(f"{url}/api/v1/account", headers=headers)
            else:
                response = await http.post(f"{url}/api/v1/account/password", json=body, headers=headers)
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses[0] += 1

    async def worker() -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            await one(sent)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return statuses


async def phase(
    http: httpx.AsyncClient,
    url: str,
    logins: int,
    storm_args: tuple[str, dict[str, Any] | None, bool, int] | None,
) -> dict[str, Any]:
    stop = asyncio.Event()
    storm_task = None
    if storm_args is not None:
        token, body, many, in_flight = storm_args
        storm_task = asyncio.create_task(storm(http, url, token, body, many, in_flight, stop))
        await asyncio.sleep(1.0)  # let the storm build up before measuring
    times: list[float] = []
    failed: Counter[int] = Counter()
    for n in range(logins):
        ms, status = await login(http, url, LOGIN_USERS[n % len(LOGIN_USERS)])
        times.append(ms)
        if status != 200:
            failed[status] += 1
    stop.set()
    statuses = await storm_task if storm_task is not None else Counter()
    times.sort()
    return {
        "login_median_ms": round(statistics.median(times), 1),
        "login_p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
        "login_max_ms": round(times[-1], 1),
        "logins_failed": dict(failed),
        "storm_statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def run_server(
    label: str, src: Path | None, work: Path, logins: int, in_flight: int, settings: dict[str, str]
) -> dict[str, Any]:
    env = {"SECURECHAT_FORWARDED_ALLOW_IPS": "127.0.0.1", **settings}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    safe = label.replace(" ", "-")
    server = start_server(work / f"data-{safe}", work / f"server-{safe}.log", extra_env=env)
    limits = httpx.Limits(max_connections=in_flight + 16, max_keepalive_connections=in_flight + 16)
    try:
        async with httpx.AsyncClient(timeout=300, limits=limits) as http:
            registered = {}
            for name in ["alice", *LOGIN_USERS]:
                response = await http.post(f"{server.url}/api/v1/auth/register", json=registration_body(name))
                response.raise_for_status()
                registered[name] = response.json()
            for name in LOGIN_USERS:  # warm every code path
                await login(http, server.url, name)
            token = registered["alice"]["access_token"]
            return {
                "baseline": await phase(http, server.url, logins, None),
                "reference: account reads": await phase(
                    http, server.url, logins, (token, None, False, in_flight)
                ),
                "wrong keys": await phase(
                    http, server.url, logins, (token, password_body("alice", WRONG_KEY), False, in_flight)
                ),
                "valid, many addresses": await phase(
                    http,
                    server.url,
                    logins,
                    (token, password_body("alice", material("alice").auth_key), True, in_flight),
                ),
            }
    finally:
        server.stop()


def export_revision(revision: str, into: Path) -> Path:
    """``src/`` of ``revision`` in ``into`` (git archive: reads the repository only)."""
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=REPO, capture_output=True, check=True, timeout=120
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=120)
    return into / "src"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=40, help="logins measured per phase (default 40)")
    parser.add_argument(
        "--in-flight", type=int, default=64, help="password changes kept in flight (default 64)"
    )
    parser.add_argument("--compare-with", metavar="REV", help="also measure this revision's server")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a SECURECHAT_* setting for this tree's server, e.g. password_changes_per_minute=1000000",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="securechat-bench-storm-"))
    try:
        overrides = dict(f"SECURECHAT_{item.upper()}".split("=", 1) for item in args.set)
        servers: list[tuple[str, Path | None, dict[str, str]]] = []
        if args.compare_with:
            old = work / "old"
            old.mkdir()
            servers.append((f"before ({args.compare_with})", export_revision(args.compare_with, old), {}))
        label = "after (this tree" + "".join(f", {item}" for item in args.set) + ")"
        servers.append((label, None, overrides))
        results = {
            label: asyncio.run(run_server(label, src, work, args.logins, args.in_flight, settings))
            for label, src, settings in servers
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": git_revision(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "logins_per_phase": args.logins,
        "in_flight": args.in_flight,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"# Password-change storm: {args.in_flight} in flight, {args.logins} logins per phase, "
        f"{report['machine']}, {report['revision']}, {report['date']}"
    )
    print()
    print("| server | phase | login median | p90 | max | logins failed | storm answers (status: count) |")
    print("|---|---|---:|---:|---:|---|---|")
    for label, phases in results.items():
        for name, r in phases.items():
            storm_text = ", ".join(f"{k}: {v}" for k, v in r["storm_statuses"].items()) or "-"
            failed = ", ".join(f"{k}: {v}" for k, v in r["logins_failed"].items()) or "0"
            print(
                f"| {label} | {name} | {r['login_median_ms']} ms | {r['login_p90_ms']} ms | "
                f"{r['login_max_ms']} ms | {failed} | {storm_text} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
