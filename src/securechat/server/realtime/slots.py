"""How many inbox WebSockets this instance holds, in all, per user and per address; and
one log line per address and minute, however often a cap refuses it.

The cap in all guards this process's file descriptors and memory, so it is per instance
by nature. The caps per user and per address guard against one account or address
holding too much of the deployment: with Redis configured (several instances) they are
also counted across instances (``shared_slots.SharedCounts``), and each instance still
counts its own, which is what holds while Redis does not answer.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .shared_slots import SharedCounts

logger = logging.getLogger(__name__)

# One IPv6 subscriber usually gets a /64: counting single addresses would let one
# client open as many connections as it has addresses.
IPV6_PREFIX = 64


def address_key(host: str) -> str:
    """The key a client address is counted under: an IPv4 address (also when written as
    IPv4-mapped IPv6), an IPv6 /64, or the text itself if it is no IP address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class ConnectionSlots:
    def __init__(
        self, max_total: int, max_per_user: int, max_per_address: int, shared: SharedCounts | None = None
    ) -> None:
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        self.total = 0
        self.per_user: collections.Counter[int] = collections.Counter()
        self.per_address: collections.Counter[str] = collections.Counter()
        self.log = RefusalLog(logger)
        self.shared = shared
        # Sockets claimed while Redis did not answer, per shared key: they hold no lease.
        self._unshared: collections.Counter[str] = collections.Counter()

    async def acquire_user(self, user_id: int) -> bool:
        """``claim_user``, and across instances if they share Redis."""
        if not self.claim_user(user_id):
            return False
        try:
            shared = await self._acquire_shared(f"user:{user_id}", self.max_per_user)
        except BaseException:
            # Cancelled (the client left, the server stops) while Redis was asked: the
            # local count must not keep a socket that never opened.
            self.release_user(user_id)
            raise
        if not shared:
            self.release_user(user_id)
            return False
        return True

    async def free_user(self, user_id: int) -> None:
        self.release_user(user_id)
        await self._free_shared(f"user:{user_id}")

    async def acquire_address(self, host: str) -> bool:
        """``claim_address``, and across instances if they share Redis."""
        if not self.claim_address(host):
            return False
        key = address_key(host)
        try:
            shared = await self._acquire_shared(f"address:{key}", self.max_per_address)
        except BaseException:
            self.release_address(host)  # as in acquire_user
            raise
        if not shared:
            self.release_address(host)
            self.log.refused(
                key,
                "refused a WebSocket from %s: the deployment holds %d (SECURECHAT_WS_MAX_PER_ADDRESS)",
                key,
                self.max_per_address,
            )
            return False
        return True

    async def free_address(self, host: str) -> None:
        self.release_address(host)
        await self._free_shared(f"address:{address_key(host)}")

    async def _acquire_shared(self, key: str, cap: int) -> bool:
        # A claim cancelled after Redis took it holds a lease this instance does not know
        # of and never renews: it stops counting within a lease (shared_slots.LEASE_MS).
        if self.shared is None:
            return True
        claimed = await self.shared.claim(key, cap)
        if claimed is None:
            # Redis is unwell: this instance's own count (checked already) decides.
            self._unshared[key] += 1
            return True
        return claimed

    async def _free_shared(self, key: str) -> None:
        if self.shared is None:
            return
        if self._unshared[key] > 0:
            self._unshared[key] -= 1
            if not self._unshared[key]:
                del self._unshared[key]
            return
        await self.shared.release(key)

    def open(self) -> bool:
        if self.total >= self.max_total:
            return False
        self.total += 1
        return True

    def close(self) -> None:
        self.total -= 1

    def claim_user(self, user_id: int) -> bool:
        if self.per_user[user_id] >= self.max_per_user:
            return False
        self.per_user[user_id] += 1
        return True

    def release_user(self, user_id: int) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]

    def claim_address(self, host: str) -> bool:
        """Count one more socket from ``host`` (see ``address_key``), unless it holds its
        cap (then logged, a line a minute at most)."""
        key = address_key(host)
        if self.per_address[key] >= self.max_per_address:
            self.log.refused(
                key,
                "refused a WebSocket from %s: it holds %d (SECURECHAT_WS_MAX_PER_ADDRESS)",
                key,
                self.max_per_address,
            )
            return False
        self.per_address[key] += 1
        return True

    def release_address(self, host: str) -> None:
        key = address_key(host)
        self.per_address[key] -= 1
        if self.per_address[key] <= 0:
            del self.per_address[key]


@dataclass
class _Logged:
    at: float
    unlogged: int = 0


class RefusalLog:
    """Logs a refusal at once, then at most one line per key and window, which says how
    many refusals went unlogged since the line before: a flood of connections from one
    address makes a line a minute, not a line a connection.

    Many addresses make at most ``max_lines`` lines a window in all; the refusals past
    them are counted in one line at the start of the next window. So the log, and what
    is remembered here (the keys logged within two windows), stay bounded.
    """

    def __init__(
        self,
        logger: logging.Logger,
        window_seconds: float = 60.0,
        *,
        max_lines: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.window_seconds = window_seconds
        self.max_lines = max_lines
        self.clock = clock
        self._logged: dict[str, _Logged] = {}
        self._window_start = -math.inf
        self._lines = 0
        self._over_budget = 0

    def refused(self, key: str, message: str, *args: object) -> bool:
        """Note one refusal under ``key``; log ``message % args`` unless one was logged
        within the window. Returns whether a line was written."""
        now = self.clock()
        if now - self._window_start >= self.window_seconds:
            if self._over_budget:
                self.logger.warning(
                    "%d more refusals were not logged in the last %g s (too many addresses)",
                    self._over_budget,
                    self.window_seconds,
                )
            self._window_start, self._lines, self._over_budget = now, 0, 0
            # Kept for one more window, for the count of a key's unlogged refusals.
            self._logged = {k: v for k, v in self._logged.items() if now - v.at < 2 * self.window_seconds}
        logged = self._logged.get(key)
        if logged is not None and now - logged.at < self.window_seconds:
            logged.unlogged += 1
            return False
        if self._lines >= self.max_lines:
            self._over_budget += 1
            return False
        self._lines += 1
        self._logged[key] = _Logged(now)
        if logged is not None and logged.unlogged:
            self.logger.warning(message + " (%d more since the last such line)", *args, logged.unlogged)
        else:
            self.logger.warning(message, *args)
        return True
