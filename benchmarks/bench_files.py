"""File-transfer benchmark: memory and speed of a large encrypted upload and download.

Run from the repository root::

    python benchmarks/bench_files.py                 # 100 MiB, both chunk stores
    python benchmarks/bench_files.py --mib 20        # a smaller file
    python benchmarks/bench_files.py --json

For each chunk store (the data directory, the database; both on SQLite) a real server
process is started with a fresh data dir. Two users of the Python client library
register; one encrypts and uploads a file of random bytes (``send_file``), the other
downloads, decrypts and checks it (``get_file``). A thread samples the server's resident
memory (RSS, from /proc through psutil) every 10 ms; the result is the peak during each
transfer minus the RSS just before it. The client's own peak RSS growth is measured the
same way. Times are wall clock on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from revision import git_revision

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # for tests.conftest.start_server, as bench_browser.py uses it

from tests.conftest import start_server  # noqa: E402

from securechat.client.messenger import Messenger  # noqa: E402

MIB = 1024 * 1024
PASSWORDS = {"alice": "correct horse battery staple", "bob": "tr0ub4dor&3-but-longer"}


class PeakSampler:
    """Samples a process's RSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


async def measured(server_pid: int, action: Callable[[], Awaitable[Any]]) -> tuple[float, int, int, int]:
    """Seconds, server RSS before, server peak growth, client peak growth."""
    server_rss = psutil.Process(server_pid).memory_info().rss
    client_rss = psutil.Process().memory_info().rss
    with PeakSampler(server_pid) as server, PeakSampler(os.getpid()) as client:
        started = time.perf_counter()
        await action()
        seconds = time.perf_counter() - started
    return seconds, server_rss, server.peak - server_rss, client.peak - client_rss


async def run_store(store: str, source: Path, work: Path) -> dict[str, Any]:
    data_dir = work / f"data-{store}"
    server = start_server(data_dir, work / f"server-{store}.log", extra_env={"SECURECHAT_FILE_STORE": store})
    process, url = server.process, server.url
    try:
        alice = Messenger(work / f"alice-{store}", url)
        bob = Messenger(work / f"bob-{store}", url)
        await alice.register("alice", PASSWORDS["alice"])
        await bob.register("bob", PASSWORDS["bob"])
        # One small transfer first, so both sides have every code path loaded.
        warm = work / "warm.bin"
        warm.write_bytes(os.urandom(2 * MIB))
        await alice.send_file("bob", warm)
        await bob.sync_inbox()
        result: dict[str, Any] = {}
        up = await measured(process.pid, lambda: alice.send_file("bob", source))
        await bob.sync_inbox()
        file_id = bob.stored_messages()[-1]["file"]["id"]
        out = work / f"out-{store}"
        out.mkdir()
        down = await measured(process.pid, lambda: bob.get_file(file_id, out))
        (saved,) = list(out.iterdir())
        if hashlib.sha256(saved.read_bytes()).digest() != hashlib.sha256(source.read_bytes()).digest():
            raise RuntimeError("downloaded file differs")
        size = source.stat().st_size
        for name, (seconds, rss_before, server_growth, client_growth) in (("upload", up), ("download", down)):
            result[name] = {
                "seconds": round(seconds, 2),
                "mib_per_second": round(size / MIB / seconds, 1),
                "server_rss_before_mib": round(rss_before / MIB, 1),
                "server_peak_growth_mib": round(server_growth / MIB, 1),
                "client_peak_growth_mib": round(client_growth / MIB, 1),
            }
        await alice.close()
        await bob.close()
        return result
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=100, help="file size in MiB (default 100)")
    parser.add_argument("--stores", default="directory,database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="securechat-bench-files-"))
    try:
        source = work / "payload.bin"
        with source.open("wb") as handle:
            for _ in range(args.mib):
                handle.write(os.urandom(MIB))
        results = {store: asyncio.run(run_store(store, source, work)) for store in args.stores.split(",")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": git_revision(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "file_mib": args.mib,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"# File transfer: {args.mib} MiB, {report['machine']}, {report['revision']}, {report['date']}")
    print()
    print(
        "| store | direction | time | MiB/s | server RSS before | server peak growth | client peak growth |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for store, result in results.items():
        for direction in ("upload", "download"):
            r = result[direction]
            print(
                f"| {store} | {direction} | {r['seconds']} s | {r['mib_per_second']} | "
                f"{r['server_rss_before_mib']} MiB | {r['server_peak_growth_mib']} MiB | "
                f"{r['client_peak_growth_mib']} MiB |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
