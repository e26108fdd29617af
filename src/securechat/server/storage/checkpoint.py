"""Checkpoints of SQLite's write-ahead log, taken off the writer's path.

With SQLite's defaults the connection whose commit takes the log past 1,000 pages copies
them back into the database file itself, then syncs it: under a steady stream of
messages that stalled the group-commit writer for several milliseconds every tenth of a
second or so, which was most of the delivery latency's tail. Here a thread with its own
connection copies pages back (a passive checkpoint, which never blocks the writer) every
``BUSY_INTERVAL_SECONDS`` while the log grows. The writers keep an automatic checkpoint
at ``AUTOCHECKPOINT_PAGES``: by the time it fires, nearly everything is copied already,
so it is short, and it is what lets SQLite start the log again from its beginning (a
log that is never restarted would grow without bound under continuous writes).

Each server instance runs one; two on one file are harmless (SQLite lets one checkpoint
run at a time, the other is told "busy" and tries again later).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Pages in the log after which a writer's commit checkpoints (SQLite's default: 1,000).
AUTOCHECKPOINT_PAGES = 4_000
BUSY_INTERVAL_SECONDS = 0.05
IDLE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class CheckpointResult:
    """What ``PRAGMA wal_checkpoint`` reports: whether another checkpoint or a writer
    held it off, the pages in the log, and how many of them are in the database file."""

    busy: bool
    log_pages: int
    checkpointed_pages: int


class WalCheckpointer:
    def __init__(
        self,
        path: str,
        configure: Callable[[sqlite3.Connection], Any],
        *,
        busy_interval: float = BUSY_INTERVAL_SECONDS,
        idle_interval: float = IDLE_INTERVAL_SECONDS,
    ) -> None:
        self._path = path
        self._configure = configure
        self._busy_interval = busy_interval
        self._idle_interval = idle_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # For tests and diagnostics: how many passes ran, and what the last one found.
        self.checkpoints = 0
        self.last_result: CheckpointResult | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            # Without this thread the writers' own checkpoint still keeps the log in bounds.
            logger.warning("WAL checkpoint thread could not open the database", exc_info=True)
            return
        try:
            self._configure(connection)
            interval = self._idle_interval
            previous: CheckpointResult | None = None
            while not self._stop.wait(interval):
                try:
                    result = checkpoint(connection)
                except sqlite3.Error:
                    # An I/O error now may pass; the writers' own checkpoint still runs.
                    logger.warning("WAL checkpoint failed", exc_info=True)
                    interval = self._idle_interval
                    continue
                self.checkpoints += 1
                self.last_result = result
                # The log changed since the last look (or another checkpoint was running):
                # writes are coming, look again soon. Unchanged: idle, look less often.
                interval = self._busy_interval if result.busy or result != previous else self._idle_interval
                previous = result
        finally:
            connection.close()


def checkpoint(connection: sqlite3.Connection) -> CheckpointResult:
    """One passive checkpoint: copy what it can without waiting for any lock."""
    busy, log_pages, checkpointed = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return CheckpointResult(bool(busy), int(log_pages), int(checkpointed))
