"""Expired intrusion-detection and rate-limit records, deleted on a schedule.

Rate-limit events, login attempts and blocks are keyed by address (or account), and the
requests that read them delete only their own key's old rows. Without this task the
tables would keep a row for every address ever seen. Every instance runs it, every
``prune_interval_seconds``, in transactions of at most ``prune_batch_rows`` rows, so no
prune holds a write lock for long, whatever has piled up.

Several instances prune side by side instead of electing one: a delete of rows that are
gone is a no-op, and on PostgreSQL each batch skips rows another transaction holds
(storage/pruning.py), so instances never wait for one another. The cost is a few
indexed queries per instance and interval when there is nothing to do.

What is kept is what a check can still read:

- rate events: the longest rate-limit window (services/ratelimit.py);
- login attempts: twice the intrusion-detection window (as login failures prune);
- blocks: until they are over *and* older than the repeat window, since a block counts
  as a strike that doubles the next one for ``ids_repeat_window_seconds`` after it began;
- device challenges (15.16): until they expire or their session ends, whichever is
  first. A request drops only its own account's expired ones, so an account that stops
  asking, or a revoked session, would otherwise leave its rows forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table

from ..settings import Settings
from ..storage import device_auth as challenges
from ..storage import pruning as store
from ..storage.database import Database
from ..storage.tables import auth_attempts, blocks, rate_events
from .context import now_ms
from .ratelimit import LONGEST_WINDOW_MS

logger = logging.getLogger(__name__)


def expired_conditions(settings: Settings, now: int) -> dict[Table, ColumnElement[bool]]:
    """For each table, which of its rows no check reads any more at ``now`` (ms)."""
    ids_window_ms = settings.ids_window_seconds * 1000
    strike_window_ms = max(settings.ids_repeat_window_seconds, settings.ids_window_seconds) * 1000
    return {
        rate_events: rate_events.c.at < now - LONGEST_WINDOW_MS,
        auth_attempts: auth_attempts.c.at < now - 2 * ids_window_ms,
        blocks: (blocks.c.until < now) & (blocks.c.created_at < now - strike_window_ms),
    }


async def prune(database: Database, settings: Settings) -> dict[str, int]:
    """One round: every table, batch by batch until a batch comes back short."""
    pruned: dict[str, int] = {}
    for table, expired in expired_conditions(settings, now_ms()).items():
        total = 0
        while True:
            async with database.write() as conn:
                deleted = await store.delete_batch(conn, table, expired, settings.prune_batch_rows)
            total += deleted
            if deleted < settings.prune_batch_rows:
                break
            await asyncio.sleep(0)  # let requests in between batches
        pruned[table.name] = total
    pruned["device_challenges"] = await _prune_challenges(database, settings, now_ms())
    return pruned


async def _prune_challenges(database: Database, settings: Settings, now: int) -> int:
    # Keyed by nonce hash, not an id: batched by its own statement (storage/device_auth.py).
    total = 0
    while True:
        async with database.write() as conn:
            deleted = await challenges.delete_dead_challenges(conn, now, settings.prune_batch_rows)
        total += deleted
        if deleted < settings.prune_batch_rows:
            return total
        await asyncio.sleep(0)


@dataclass
class Pruner:
    """The background task: started and stopped with the app (app.py)."""

    database: Database
    settings: Settings
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="securechat-pruner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                pruned = await prune(self.database, self.settings)
            except Exception:  # a database hiccup must not end pruning for good
                logger.exception("pruning expired records failed; trying again next round")
            else:
                if any(pruned.values()):
                    logger.debug("pruned expired records: %s", pruned)
            await asyncio.sleep(self.settings.prune_interval_seconds)
