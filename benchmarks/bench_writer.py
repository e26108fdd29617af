"""The group-commit writer alone: CPU per message for batches of a given size.

No sockets and no event-loop contention: a ``MessageWriter`` on a fresh SQLite
database (WAL, synchronous=FULL, as the server runs it) gets rounds of ``--batch``
sends spread over 50 direct conversations, each round followed by the receivers'
acknowledgements (which mark the messages delivered and add a receipt per sender), the
steady-state pattern of ``bench_delivery.py``. It prints, per batch size, the CPU time
of the writer's transactions (on its thread) and of the whole process per message.

``--via sqlalchemy`` runs the same queries through SQLAlchemy connections from a pool
(``Database.run_batch``) instead of the writer's plain ``sqlite3`` connection, to show
what that path costs. With ``PYTHONPATH`` pointing at another source tree it measures
that tree's writer (one from before the driver queries uses ``run_batch`` whatever
``--via`` says)::

    python benchmarks/bench_writer.py
    python benchmarks/bench_writer.py --via sqlalchemy
    PYTHONPATH=../old/src python benchmarks/bench_writer.py
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

import securechat
from securechat.protocol.envelope import Envelope, Header, WrappedKey
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from securechat.server.realtime.broker import InProcessBroker
from securechat.server.services.principal import Principal
from securechat.server.services.writer import MessageWriter
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import users

PAIRS = 50
# The JSON of a sealed RSA-2048 + Ed25519 key bundle, as clients store it.
KEY_BUNDLE_CHARS = 1_800


class TimedDatabase(Database):
    """Counts the batch transactions, and reads the CPU time of the thread they run on."""

    def __init__(self, url: str, via: str) -> None:
        super().__init__(url)
        self.via = via
        self.batches = 0

    async def run_write_batch(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        self.batches += 1
        if self.via == "sqlalchemy":
            return await super().run_batch(function, *args, **kwargs)
        return await super().run_write_batch(function, *args, **kwargs)

    async def run_batch(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        # Counted too: a source tree from before run_write_batch sends the writer here.
        self.batches += 1
        return await super().run_batch(function, *args, **kwargs)

    async def batch_thread_cpu(self) -> float:
        """CPU seconds of the batch thread so far: queries, BEGIN and COMMIT (WAL writes
        and the fsync's kernel time), whichever path runs them."""
        assert self._batch_thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._batch_thread, time.thread_time)


def envelope_for(sender: Principal, recipient: Principal) -> tuple[Envelope, str, bytes]:
    """An envelope of the usual size (1 KiB text, two RSA-2048 recipients); the writer
    never looks inside, so random bytes stand in for ciphertext and keys."""
    conversation = direct_conversation_id(sender.username, recipient.username)
    header = Header(1, MessageId(str(uuid.uuid4())), ConversationId(conversation), sender.username, 0)
    keys = tuple(
        sorted(
            (WrappedKey(p.username, os.urandom(256)) for p in (sender, recipient)),
            key=lambda key: key.recipient,
        )
    )
    envelope = Envelope(header, os.urandom(12), os.urandom(1040), keys, os.urandom(64))
    text = envelope.to_json()
    return envelope, text, hashlib.sha256(text.encode()).digest()


async def measure(batch: int, rounds: int, via: str, workdir: Path) -> dict[str, float]:
    database = TimedDatabase(f"sqlite+aiosqlite:///{workdir / f'writer-{batch}.db'}", via)
    await migrate(database)
    async with database.write() as conn:
        for number in range(2 * PAIRS):
            await conn.execute(
                insert(users).values(
                    username=f"user{number:03d}",
                    created_at=0,
                    # Sizes as the server stores them: RSA-2048 and Ed25519 public keys, a
                    # signature, an argon2id hash and the sealed private-key bundle.
                    auth_hash="$argon2id$" + "x" * 87,
                    kdf_salt=os.urandom(16),
                    kdf_iterations=600_000,
                    signing_key=os.urandom(44),
                    encryption_key=os.urandom(294),
                    encryption_key_signature=os.urandom(64),
                    key_bundle="x" * KEY_BUNDLE_CHARS,
                    keys_updated_at=0,
                )
            )
    principals = [Principal(n + 1, Username(f"user{n:03d}"), "bench", False) for n in range(2 * PAIRS)]
    writer = MessageWriter(database, InProcessBroker())
    writer.start()

    async def one_round(number: int) -> None:
        pairs = [(number * batch + k) % PAIRS for k in range(batch)]
        sends = [
            writer.submit_send(principals[2 * p], *envelope_for(principals[2 * p], principals[2 * p + 1]))
            for p in pairs
        ]
        await asyncio.gather(*sends)
        await asyncio.gather(*(writer.submit_ack(principals[2 * p + 1], 2**40) for p in pairs))

    try:
        # The first message of each pair creates its conversation; warm up past that.
        for number in range(max(3, 2 * PAIRS // batch + 1)):
            await one_round(number)
        database.batches = 0
        writer_cpu = await database.batch_thread_cpu()
        process_cpu, wall = time.process_time(), time.perf_counter()
        for number in range(rounds):
            await one_round(number)
        process_cpu, wall = time.process_time() - process_cpu, time.perf_counter() - wall
        writer_cpu = await database.batch_thread_cpu() - writer_cpu
    finally:
        await writer.stop()
        await database.dispose()
    messages = batch * rounds
    return {
        "batch": batch,
        "messages": messages,
        "transactions": database.batches,
        "writer_cpu_us": writer_cpu / messages * 1e6,
        "process_cpu_us": process_cpu / messages * 1e6,
        "wall_us": wall / messages * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,4,16,64,256", help="batch sizes, comma-separated")
    parser.add_argument("--messages", type=int, default=4096, help="messages per batch size")
    parser.add_argument("--via", choices=("driver", "sqlalchemy"), default="driver")
    args = parser.parse_args()
    sizes = [int(size) for size in args.batches.split(",")]
    print(f"SecureChat writer benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"host: nproc={os.cpu_count()}; Python {platform.python_version()}; {platform.platform(terse=True)}"
    )
    via = args.via if hasattr(Database, "run_write_batch") else "the tree's own (before run_write_batch)"
    print(f"securechat from {Path(securechat.__file__).parent}")
    print(
        f"queries via: {via}; SQLite WAL, synchronous=FULL; {PAIRS} direct conversations; "
        f"user rows of the stored size (key bundle {KEY_BUNDLE_CHARS:,} chars)"
    )
    print("each message: one send transaction share, one acknowledgement transaction share (receipt)")
    print()
    print(
        f"{'batch':>6} {'messages':>9} {'txns':>6} {'writer CPU/msg':>15} {'process CPU/msg':>16} {'wall/msg':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="securechat-writer-") as workdir:
        for size in sizes:
            rounds = max(1, args.messages // size)
            result = asyncio.run(measure(size, rounds, args.via, Path(workdir)))
            print(
                f"{result['batch']:>6} {result['messages']:>9,} {result['transactions']:>6,}"
                f" {result['writer_cpu_us']:>12,.0f} us {result['process_cpu_us']:>13,.0f} us"
                f" {result['wall_us']:>7,.0f} us"
            )
    print()
    print("writer CPU = CPU time (user + kernel) of the thread the batch transactions run on: queries,")
    print("row building, BEGIN and COMMIT (WAL writes, fsync; waiting for the disk is not CPU) / messages.")
    print("process CPU adds the event loop (futures, the envelopes this script makes, hand-offs).")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
