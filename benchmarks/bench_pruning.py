"""Pruning benchmark: how fast expired rate-limit records go, and what a prune round does
to the writes requests make meanwhile, with bounded batches and with one big delete
(issue 12, item 10).

Run from the repository root::

    python benchmarks/bench_pruning.py                         # SQLite, 200,000 expired rows
    python benchmarks/bench_pruning.py --rows 50000 --postgres postgresql://postgres@127.0.0.1:5432/test

For each batch size in ``--batches`` (the last, 0, means one unbounded delete, as a prune
without batches would do) a fresh database gets ``--rows`` expired rate events for as
many addresses and 1,000 live ones; then ``services.pruning.prune`` runs while a writer
records a rate event every 5 ms (one short write transaction each, as a rate-limited
request does). Reported: the round's time and rows per second, and the writer's median
and maximum latency during the round. On PostgreSQL a throwaway database is made through
the given one (as tests/conftest.py does) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, insert, select

from securechat.server.services.pruning import prune
from securechat.server.settings import Settings
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import rate_events


def now_ms() -> int:
    return int(time.time() * 1000)


async def fill(database: Database, rows: int) -> None:
    now = now_ms()
    chunk = 20_000
    for start in range(0, rows, chunk):
        async with database.write() as conn:
            await conn.execute(
                insert(rate_events),
                [
                    {
                        "action": "prelogin",
                        "subject": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                        "at": now - 120_000,
                    }
                    for n in range(start, min(rows, start + chunk))
                ],
            )
    async with database.write() as conn:
        await conn.execute(
            insert(rate_events),
            [{"action": "prelogin", "subject": f"live-{n}", "at": now} for n in range(1000)],
        )


async def writer(database: Database, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        async with database.write() as conn:
            await conn.execute(insert(rate_events).values(action="bench", subject="writer", at=now_ms()))
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.005)


async def one_run(url: str, rows: int, batch: int) -> dict[str, float]:
    database = Database(url)
    try:
        await migrate(database)
        await fill(database, rows)
        settings = Settings(prune_batch_rows=batch or rows + 10_000)
        stop = asyncio.Event()
        latencies: list[float] = []
        writing = asyncio.create_task(writer(database, stop, latencies))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        pruned = await prune(database, settings)
        elapsed = time.perf_counter() - started
        stop.set()
        await writing
        async with database.read() as conn:
            left = int((await conn.execute(select(func.count()).select_from(rate_events))).scalar_one())
        return {
            "pruned": pruned["rate_events"],
            "left": left,
            "seconds": elapsed,
            "rows_per_s": pruned["rate_events"] / elapsed,
            "write_median_ms": statistics.median(latencies),
            "write_max_ms": max(latencies),
        }
    finally:
        await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batches", default="1000,10000,0", help="batch sizes; 0 = one unbounded delete")
    parser.add_argument("--postgres", help="a PostgreSQL URL to make throwaway databases through")
    args = parser.parse_args()
    print(
        f"{'database':10} {'batch':>9} {'pruned':>8} {'s':>7} {'rows/s':>9} {'write p50 ms':>13} {'write max ms':>13}"
    )
    for batch in [int(b) for b in args.batches.split(",")]:
        for kind in ["sqlite", *(["postgresql"] if args.postgres else [])]:
            if kind == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    result = await one_run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.rows, batch)
            else:
                result = await on_postgres(args.postgres, args.rows, batch)
            print(
                f"{kind:10} {batch or 'all':>9} {result['pruned']:>8} {result['seconds']:>7.2f} "
                f"{result['rows_per_s']:>9.0f} {result['write_median_ms']:>13.1f} {result['write_max_ms']:>13.1f}",
                flush=True,
            )
    print(f"python {sys.version.split()[0]}", file=sys.stderr)


async def on_postgres(base_url: str, rows: int, batch: int) -> dict[str, float]:
    import asyncpg

    name = f"securechat_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = base_url.rpartition("/")
    try:
        return await one_run(
            f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1), rows, batch
        )
    finally:
        admin = await asyncpg.connect(base_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
